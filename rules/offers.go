package rules

// Offers.

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

var offerFields = []string{"id", "name", "description", "channels", "placements", "eligible", "value", "weight", "group", "caps", "suppress_after", "prior", "sticky", "start", "end", "content", "tags"}

func (l *loader) offers(c *Catalog, comp *compiler, n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "", "offers", "must be a list")
		return
	}
	firstAt := map[string]int{}
	for _, on := range n.Content {
		f := l.fields(on, offerObject(on), offerFields...)
		id, obj, ok := l.objectID(on, f["id"], "offer")
		if !ok {
			continue
		}
		if line, dup := firstAt[id]; dup {
			l.errorf(f["id"], obj, "id", "duplicate offer id (first declared at line %d)", line)
			continue
		}
		firstAt[id] = f["id"].Line
		o := &Offer{ID: id, Name: id, Weight: 1, Value: 1, content: make([]*Content, len(c.Channels))}
		if name, ok := l.str(f["name"], obj, "name"); ok {
			o.Name = name
		}
		o.Description, _ = l.str(f["description"], obj, "description")
		o.Placements = l.strings(f["placements"], obj, "placements")
		o.Tags = l.strings(f["tags"], obj, "tags")
		o.Caps = l.caps(c, f["caps"], obj)
		o.Suppress = l.suppress(f["suppress_after"], obj)
		o.Prior = c.Learning.Prior
		if f["prior"] != nil {
			o.Prior = l.prior(f["prior"], c.Learning.Prior, obj, "prior")
		}
		o.Sticky = c.Sticky
		if f["sticky"] != nil {
			o.Sticky = l.sticky(f["sticky"], obj)
		}
		if g, ok := l.str(f["group"], obj, "group"); ok {
			if !idRE.MatchString(g) || len(g) > maxIDLen {
				l.errorf(f["group"], obj, "group", "must be letters, digits, and _ . : -")
			}
			o.Group = g
		}
		o.Value = l.number(f["value"], obj, "value", 1)
		o.Weight = l.number(f["weight"], obj, "weight", 1)
		if o.Weight < 0 {
			l.errorf(f["weight"], obj, "weight", "must not be negative")
		}
		o.Start = l.timestamp(f["start"], obj, "start")
		o.End = l.timestamp(f["end"], obj, "end")
		if !o.Start.IsZero() && !o.End.IsZero() && !o.End.After(o.Start) {
			l.errorf(f["end"], obj, "end", "must be after start")
		}
		if f["channels"] == nil {
			l.errorf(on, obj, "channels", "is required: the channels the offer may be presented on")
		} else if f["channels"].Kind != yaml.SequenceNode {
			l.errorf(f["channels"], obj, "channels", "must be a list")
		} else {
			for _, cn := range f["channels"].Content {
				name, ok := l.str(cn, obj, "channels")
				if !ok {
					continue
				}
				ch, known := c.channels[name]
				if !known {
					l.errorf(cn, obj, "channels", "channel %q is not one of %s", name, strings.Join(c.ChannelNames(), ", "))
					continue
				}
				if o.content[ch.Index] != nil {
					l.errorf(cn, obj, "channels", "channel %q listed twice", name)
					continue
				}
				o.Channels = append(o.Channels, ch)
				o.content[ch.Index] = &Content{} // filled below; marks "offered on"
			}
		}
		provided := make([]bool, len(c.Channels))
		for _, kv := range l.pairs(f["content"], obj, "content") {
			name := kv[0].Value
			ch, known := c.channels[name]
			if !known {
				l.errorf(kv[0], obj, "content."+name, "channel %q is not one of %s", name, strings.Join(c.ChannelNames(), ", "))
				continue
			}
			if o.content[ch.Index] == nil {
				l.errorf(kv[0], obj, "content."+name, "offer is not listed for channel %q (add it to channels)", name)
				continue
			}
			if ct := l.content(c, ch, kv[1], obj, "content."+name); ct != nil {
				o.content[ch.Index] = ct
				provided[ch.Index] = true
			}
		}
		for _, ch := range o.Channels {
			if !provided[ch.Index] {
				l.errorf(on, obj, "content."+ch.Name, "offer is listed for channel %q but has no content for it", ch.Name)
			}
		}
		if en := f["eligible"]; en != nil {
			o.Eligible = l.boolRule(comp, en, obj, "eligible", true)
		}
		o.Index = len(c.Offers)
		c.Offers = append(c.Offers, o)
		c.offers[id] = o
	}
}

// offerObject names an offer for errors found before its id is read.
func offerObject(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "id" && v.Kind == yaml.ScalarNode && v.Value != "" {
				return fmt.Sprintf("offer %q", v.Value)
			}
		}
	}
	return "offer"
}
