package rules

// Contact rules: frequency caps (per offer and per group), suppression
// after an outcome, the catalog-wide contact policy, and how long contact
// history is kept to serve them all.

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// caps reads an offer's frequency caps: [{max: 3, within: 7d, channel: sms}].
func (l *loader) caps(c *Catalog, n *yaml.Node, obj string) []Cap {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, obj, "caps", "must be a list like [{max: 3, within: 7d}]")
		return nil
	}
	var caps []Cap
	for _, e := range n.Content {
		f := l.fields(e, obj, "max", "within", "channel")
		cp := Cap{Max: int(l.number(f["max"], obj, "caps.max", 0))}
		if f["max"] == nil {
			l.errorf(e, obj, "caps.max", "is required (a whole number of impressions, at least 1)")
		} else if cp.Max < 1 || float64(cp.Max) != l.number(f["max"], obj, "caps.max", 0) {
			l.errorf(f["max"], obj, "caps.max", "must be a whole number of impressions, at least 1")
		}
		cp.Within = l.duration(f["within"], e, obj, "caps.within")
		if name, ok := l.str(f["channel"], obj, "caps.channel"); ok {
			ch, known := c.channels[name]
			if !known {
				l.errorf(f["channel"], obj, "caps.channel", "channel %q is not one of %s", name, strings.Join(c.ChannelNames(), ", "))
			}
			cp.Channel = ch
		}
		caps = append(caps, cp)
	}
	return caps
}

// groups reads groups: {cards: {caps: [{max: 2, within: 7d}]}}.
func (l *loader) groups(c *Catalog, n *yaml.Node) {
	c.Groups = map[string]*Group{}
	for _, kv := range l.pairs(n, "", "groups") {
		name := kv[0].Value
		obj := fmt.Sprintf("group %q", name)
		if !idRE.MatchString(name) || len(name) > maxIDLen {
			l.errorf(kv[0], obj, "", "must be letters, digits, and _ . : -")
			continue
		}
		f := l.fields(kv[1], obj, "caps")
		c.Groups[name] = &Group{Name: name, Caps: l.caps(c, f["caps"], obj)}
	}
}

// suppress reads suppress_after: {conversion: 30d, dismiss: 3d}.
func (l *loader) suppress(n *yaml.Node, obj string) []Suppression {
	var out []Suppression
	for _, kv := range l.pairs(n, obj, "suppress_after") {
		kind, ok := featurestore.ParseOutcome(kv[0].Value)
		if !ok {
			l.errorf(kv[0], obj, "suppress_after."+kv[0].Value, "is not an outcome (impression, click, conversion or dismiss)")
			continue
		}
		out = append(out, Suppression{Kind: kind, For: l.duration(kv[1], kv[0], obj, "suppress_after."+kv[0].Value)})
	}
	return out
}

// contactPolicy reads contact_policy: {max_offers: 5, within: 1d}.
func (l *loader) contactPolicy(n *yaml.Node) ContactPolicy {
	if n == nil {
		return ContactPolicy{}
	}
	f := l.fields(n, "contact_policy", "max_offers", "within")
	p := ContactPolicy{MaxOffers: int(l.number(f["max_offers"], "contact_policy", "max_offers", 0))}
	switch {
	case f["max_offers"] == nil:
		l.errorf(n, "contact_policy", "max_offers", "is required (a whole number of impressions, at least 1)")
	case p.MaxOffers < 1 || float64(p.MaxOffers) != l.number(f["max_offers"], "contact_policy", "max_offers", 0):
		l.errorf(f["max_offers"], "contact_policy", "max_offers", "must be a whole number of impressions, at least 1")
	}
	p.Within = l.duration(f["within"], n, "contact_policy", "within")
	return p
}

// contactRetention is how long contact history is kept: the longest
// look-back of any contact rule of c, at least 30 days.
func contactRetention(c *Catalog) time.Duration {
	return max(30*24*time.Hour, contactLookback(c))
}

// contactLookback is the longest look-back of any contact rule of c:
// the contact policy, the channels' contact limits, the offers' and
// groups' caps, suppressions and stickiness. These are every rule that
// reads contact history (decision's policy.go, channel.go and
// stickyOffer), and each reads only contacts within its window: no rule
// reads unbounded history.
func contactLookback(c *Catalog) time.Duration {
	d := c.Policy.Within
	for _, ch := range c.Channels {
		d = max(d, ch.ContactLimit.Within)
	}
	for _, o := range c.Offers {
		for _, cp := range o.Caps {
			d = max(d, cp.Within)
		}
		for _, s := range o.Suppress {
			d = max(d, s.For)
		}
		d = max(d, o.Sticky)
	}
	for _, g := range c.Groups {
		for _, cp := range g.Caps {
			d = max(d, cp.Within)
		}
	}
	return d
}
