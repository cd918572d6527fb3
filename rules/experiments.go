package rules

// Experiments: variants that change arbitration or the offers a customer
// may get, assigned without stored state (decision/experiment.go), scoped
// to channels and a segment; and the catalog's global holdout.

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Experiment splits customers between variants, deterministically: a hash
// of Salt and the customer id picks, with no stored state, the same
// variant for a customer on every channel and every node.
type Experiment struct {
	ID       string
	Salt     string
	Traffic  float64 // share of customers in the experiment, (0, 1]
	Variants []*Variant
	Index    int
	// Channels, when not nil, scopes the experiment to decisions on
	// these channels: a decision on another is not assigned.
	Channels []*Channel
	// Segment, when not nil, scopes the experiment to customers in this
	// segment when they are decided for.
	Segment *Segment
	// Global marks the catalog's global holdout (GlobalHoldout): always
	// the first experiment, and a customer in its holdout variant takes
	// part in no other.
	Global bool
}

// The global holdout is the experiment GlobalHoldout with the variants
// HoldoutVariant (Holdout) and TreatedVariant, in this order, so that
// reports compare the treated customers with the held out ones as they
// compare any variant with its experiment's first.
const (
	GlobalHoldout  = "global_holdout"
	HoldoutVariant = "holdout"
	TreatedVariant = "treated"
)

// Scoped reports whether x assigns only some decisions: those on its
// channels, for customers in its segment.
func (x *Experiment) Scoped() bool { return x.Channels != nil || x.Segment != nil }

// Covers reports whether a decision on ch, for the customer whose
// segments e holds, is in x's scope.
func (x *Experiment) Covers(ch *Channel, e *Env) bool {
	if x.Channels != nil && !slices.Contains(x.Channels, ch) {
		return false
	}
	return x.Segment == nil || (x.Segment.Index < len(e.inSegment) && e.inSegment[x.Segment.Index])
}

// OnChannel reports whether x assigns decisions on the channel called
// name: every channel unless its scope lists channels.
func (x *Experiment) OnChannel(name string) bool {
	if x.Channels == nil {
		return true
	}
	for _, ch := range x.Channels {
		if ch.Name == name {
			return true
		}
	}
	return false
}

// Variant is one arm of an experiment.
type Variant struct {
	Name   string
	Weight float64
	// Holdout variants get no offers, only the channel's fallback content.
	Holdout bool
	// Arbitration replaces the catalog's for the variant's customers; nil
	// keeps it.
	Arbitration *Arbitration
	// Offers, when not nil, restricts the variant to these offers (by
	// Offer.Index).
	Offers []bool

	label string // "experiment/variant"
}

// Label names the variant with its experiment, "experiment/variant", as
// explanations name the holdout that withheld a decision.
func (v *Variant) Label() string { return v.label }

// Allows reports whether the variant may present o.
func (v *Variant) Allows(o *Offer) bool {
	return v.Offers == nil || (o.Index < len(v.Offers) && v.Offers[o.Index])
}

// Experiment returns the experiment with the given id.
func (c *Catalog) Experiment(id string) (*Experiment, bool) {
	for _, x := range c.Experiments {
		if x.ID == id {
			return x, true
		}
	}
	return nil, false
}

// experiments reads experiments: [{id, salt, traffic, variants: [...]}].
func (l *loader) experiments(c *Catalog, comp *compiler, n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "", "experiments", "must be a list of {id, salt, traffic, variants}")
		return
	}
	seen := map[string]bool{}
	for _, en := range n.Content {
		f := l.fields(en, "experiment", "id", "salt", "traffic", "channels", "segment", "variants")
		id, obj, ok := l.objectID(en, f["id"], "experiment")
		if !ok {
			continue
		}
		if id == GlobalHoldout {
			l.errorf(f["id"], obj, "id", "is reserved for the catalog's global holdout (declare it under holdout:)")
			continue
		}
		if seen[id] {
			l.errorf(f["id"], obj, "id", "duplicate experiment id")
			continue
		}
		seen[id] = true
		x := &Experiment{ID: id, Salt: id, Traffic: 1, Index: len(c.Experiments)}
		if s, ok := l.str(f["salt"], obj, "salt"); ok {
			x.Salt = s
		}
		x.Traffic = l.number(f["traffic"], obj, "traffic", 1)
		if !(x.Traffic > 0 && x.Traffic <= 1) {
			l.errorf(f["traffic"], obj, "traffic", "must be a share of customers in (0, 1]")
		}
		x.Channels = l.scopeChannels(c, f["channels"], obj)
		x.Segment = l.scopeSegment(c, comp, f["segment"], obj)
		l.variants(c, comp, x, f["variants"], en, obj)
		for _, v := range x.Variants {
			v.label = x.ID + "/" + v.Name
		}
		c.Experiments = append(c.Experiments, x)
	}
}

// scopeChannels reads an experiment's channels: a list of the catalog's
// channels, nil when absent.
func (l *loader) scopeChannels(c *Catalog, n *yaml.Node, obj string) []*Channel {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.errorf(n, obj, "channels", "must be a list of channels, like [email, sms]")
		return nil
	}
	chs := []*Channel{}
	for _, cn := range n.Content {
		name, ok := l.str(cn, obj, "channels")
		if !ok {
			continue
		}
		ch, known := c.channels[name]
		switch {
		case !known:
			l.errorf(cn, obj, "channels", "channel %q is not one of %s", name, strings.Join(c.ChannelNames(), ", "))
		case slices.Contains(chs, ch):
			l.errorf(cn, obj, "channels", "channel %q listed twice", name)
		default:
			chs = append(chs, ch)
		}
	}
	return chs
}

// scopeSegment reads an experiment's segment: a segment of the catalog,
// nil when absent.
func (l *loader) scopeSegment(c *Catalog, comp *compiler, n *yaml.Node, obj string) *Segment {
	name, ok := l.str(n, obj, "segment")
	if !ok {
		return nil
	}
	for _, s := range c.Segments {
		if s.Name == name {
			return s
		}
	}
	if _, declared := comp.segments[name]; !declared {
		// A segment declared with an error has its own.
		names := make([]string, len(c.Segments))
		for i, s := range c.Segments {
			names[i] = s.Name
		}
		known := "the catalog declares none"
		if len(names) > 0 {
			known = "one of " + strings.Join(names, ", ")
		}
		l.errorf(n, obj, "segment", "segment %q is not declared (%s)", name, known)
	}
	return nil
}

// holdout reads the catalog's global holdout, holdout: {share, salt},
// into the experiment GlobalHoldout, first of c.Experiments: a share of
// customers who get no offers on any channel and take part in no
// experiment, measured against the others (treated) like any variant.
func (l *loader) holdout(c *Catalog, n *yaml.Node) {
	if n == nil {
		return
	}
	const obj = "holdout"
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "", obj, "must be {share: 0.05, salt: ...}: the share of customers held out of every offer and experiment")
		return
	}
	f := l.fields(n, obj, "share", "salt")
	x := &Experiment{ID: GlobalHoldout, Salt: GlobalHoldout, Traffic: 1, Global: true}
	if s, ok := l.str(f["salt"], obj, "salt"); ok {
		x.Salt = s
	}
	if f["share"] == nil {
		l.errorf(n, obj, "share", "is required: the share of customers held out, like 0.05")
		return
	}
	share := l.number(f["share"], obj, "share", -1)
	if share == -1 {
		return // not a number: said
	}
	if !(share > 0 && share < 1) {
		l.errorf(f["share"], obj, "share", "must be a share of customers in (0, 1), like 0.05")
		return
	}
	x.Variants = []*Variant{
		{Name: HoldoutVariant, Weight: share, Holdout: true, label: GlobalHoldout + "/" + HoldoutVariant},
		{Name: TreatedVariant, Weight: 1 - share, label: GlobalHoldout + "/" + TreatedVariant},
	}
	c.Experiments = append([]*Experiment{x}, c.Experiments...)
	for i, x := range c.Experiments {
		x.Index = i
	}
}

func (l *loader) variants(c *Catalog, comp *compiler, x *Experiment, n, parent *yaml.Node, obj string) {
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) < 2 {
		at := n
		if at == nil {
			at = parent
		}
		l.errorf(at, obj, "variants", "must be a list of at least two variants like {name: control, weight: 50}")
		return
	}
	names := map[string]bool{}
	total := 0.0
	for _, vn := range n.Content {
		f := l.fields(vn, obj, "name", "weight", "holdout", "arbitration", "offers")
		name, ok := l.str(f["name"], obj, "variants.name")
		if !ok {
			if f["name"] == nil {
				l.errorf(vn, obj, "variants.name", "is required")
			}
			continue
		}
		if !idRE.MatchString(name) || len(name) > maxIDLen {
			l.errorf(f["name"], obj, "variants.name", "must be letters, digits, and _ . : -")
			continue
		}
		if names[name] {
			l.errorf(f["name"], obj, "variants.name", "duplicate variant %q", name)
			continue
		}
		names[name] = true
		v := &Variant{Name: name, Weight: l.number(f["weight"], obj, "variants.weight", 1)}
		if !(v.Weight >= 0) || v.Weight > 1e9 {
			l.errorf(f["weight"], obj, "variants.weight", "must be a non-negative number")
			v.Weight = 0
		}
		total += v.Weight
		v.Holdout = l.boolean(f["holdout"], obj, "variants.holdout")
		v.Arbitration = l.arbitration(comp, f["arbitration"], obj, "variants.arbitration")
		if f["offers"] != nil {
			v.Offers = make([]bool, len(c.Offers))
			if f["offers"].Kind != yaml.SequenceNode {
				l.errorf(f["offers"], obj, "variants.offers", "must be a list of offer ids")
			} else {
				for _, on := range f["offers"].Content {
					id, ok := l.str(on, obj, "variants.offers")
					if !ok {
						continue
					}
					o, known := c.offers[id]
					if !known {
						l.errorf(on, obj, "variants.offers", "offer %q is not in the catalog", id)
						continue
					}
					v.Offers[o.Index] = true
				}
			}
		}
		if v.Holdout && (v.Arbitration != nil || v.Offers != nil) {
			l.errorf(vn, obj, "variants."+name, "a holdout gets no offers: arbitration and offers do not apply")
		}
		x.Variants = append(x.Variants, v)
	}
	if total <= 0 {
		l.errorf(n, obj, "variants", "weights must add up to more than 0")
	}
}
