package rules

// Channels, and the per-channel creative content of offers and defaults,
// converted to JSON once at load.

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"
)

func (l *loader) channels(c *Catalog, n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "", "channels", "must be a list of channel names or {name: ..., decision_is_impression: ...}")
		return
	}
	for _, e := range n.Content {
		ch := &Channel{}
		nameNode := e
		var f map[string]*yaml.Node
		if e.Kind == yaml.MappingNode {
			f = l.fields(e, "channel", channelFields...)
			nameNode = f["name"]
			if nameNode == nil {
				l.errorf(e, "channel", "name", "is required")
				continue
			}
			ch.DecisionIsImpression = l.boolean(f["decision_is_impression"], "channel", "decision_is_impression")
		}
		name, ok := l.str(nameNode, "", "channels")
		if !ok {
			continue
		}
		if !identRE.MatchString(name) {
			l.errorf(nameNode, fmt.Sprintf("channel %q", name), "name", "must be letters, digits and underscores")
			continue
		}
		if _, dup := c.channels[name]; dup {
			l.errorf(nameNode, fmt.Sprintf("channel %q", name), "", "declared twice")
			continue
		}
		ch.Name, ch.Index = name, len(c.Channels)
		c.Channels = append(c.Channels, ch)
		c.channels[name] = ch
		if f != nil {
			// The policy reads features and segments: compiled once
			// they are declared (channelPolicies).
			l.policyNodes = append(l.policyNodes, policyNodes{ch: ch, fields: f})
		}
	}
	c.defaults = make([]*Content, len(c.Channels))
}

func (l *loader) defaults(c *Catalog, n *yaml.Node) {
	for _, kv := range l.pairs(n, "", "defaults") {
		name := kv[0].Value
		ch, known := c.channels[name]
		if !known {
			l.errorf(kv[0], "defaults", name, "channel %q is not one of %s", name, strings.Join(c.ChannelNames(), ", "))
			continue
		}
		c.defaults[ch.Index] = l.content(kv[1], "defaults", name)
	}
}

// content converts a creative mapping to JSON once, at load.
func (l *loader) content(n *yaml.Node, obj, field string) *Content {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, obj, field, "must be a mapping of creative fields")
		return nil
	}
	var raw any
	if err := n.Decode(&raw); err != nil {
		l.errorf(n, obj, field, "%v", err)
		return nil
	}
	v, err := jsonable(raw)
	if err != nil {
		l.errorf(n, obj, field, "%v", err)
		return nil
	}
	m, _ := v.(map[string]any)
	// Encode in the author's key order (a creative's fields read best as
	// written); fall back to encoding/json's sorted order for YAML merge
	// keys, whose resolution the node tree does not spell out.
	b, ok := orderedJSON(nil, n, 0)
	if !ok {
		if b, err = json.Marshal(m); err != nil {
			l.errorf(n, obj, field, "%v", err)
			return nil
		}
	}
	return &Content{JSON: b, Value: m}
}

// orderedJSON appends n as JSON, keeping mapping keys in file order. It
// reports false for shapes it leaves to encoding/json.
func orderedJSON(dst []byte, n *yaml.Node, depth int) ([]byte, bool) {
	if depth > 64 {
		return nil, false
	}
	switch n.Kind {
	case yaml.AliasNode:
		return orderedJSON(dst, n.Alias, depth+1)
	case yaml.MappingNode:
		dst = append(dst, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return nil, false
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			kb, _ := json.Marshal(k.Value)
			dst = append(append(dst, kb...), ':')
			var ok bool
			if dst, ok = orderedJSON(dst, n.Content[i+1], depth+1); !ok {
				return nil, false
			}
		}
		return append(dst, '}'), true
	case yaml.SequenceNode:
		dst = append(dst, '[')
		for i, e := range n.Content {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = orderedJSON(dst, e, depth+1); !ok {
				return nil, false
			}
		}
		return append(dst, ']'), true
	case yaml.ScalarNode:
		var x any
		if err := n.Decode(&x); err != nil {
			return nil, false
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, false
		}
		return append(dst, b...), true
	}
	return nil, false
}

// jsonable converts YAML-decoded values to ones encoding/json accepts:
// every mapping key must be a string.
func jsonable(x any) (any, error) {
	switch v := x.(type) {
	case map[string]any:
		for k, e := range v {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		for i, e := range v {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v is not a finite number", v)
		}
	}
	return x, nil
}
