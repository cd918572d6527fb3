package rules

// Channels, and the per-channel creative content of offers and defaults,
// converted to JSON once at load.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
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
		l.contentEscape(ch, f["content_escape"])
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
		c.defaults[ch.Index] = l.content(c, ch, kv[1], "defaults", name)
	}
}

// content converts a creative mapping to JSON once, at load, and
// compiles the templates of its strings for channel ch (template.go).
func (l *loader) content(c *Catalog, ch *Channel, n *yaml.Node, obj, field string) *Content {
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
	tb := &contentBuilder{l: l, schema: c.Schema, escape: ch.Escape, obj: obj}
	b, ok := tb.orderedJSON(nil, n, field, 0)
	switch {
	case tb.failed:
		return &Content{Value: m} // reported; the catalog will not load
	case !ok && hasTemplate(m):
		l.errorf(n, obj, field, "templates ({{ }}) in content that uses YAML merge keys (<<) are not supported: write the fields out")
		return &Content{Value: m}
	case !ok:
		if b, err = json.Marshal(m); err != nil {
			l.errorf(n, obj, field, "%v", err)
			return nil
		}
	}
	ct := &Content{JSON: b, Value: m}
	if len(tb.slots) > 0 {
		// What a decision that reads no customer answers (one shed for
		// overload): the content for the schema's defaults.
		ct.tmpl = &template{json: b, slots: tb.slots}
		ct.JSON = ct.AppendJSON(nil, c.Schema.Defaults(nil))
	}
	return ct
}

// orderedJSON appends n as JSON, keeping mapping keys in file order, and
// compiles the templates of its strings; path names n in errors. It
// reports false for shapes it leaves to encoding/json.
func (b *contentBuilder) orderedJSON(dst []byte, n *yaml.Node, path string, depth int) ([]byte, bool) {
	if depth > 64 {
		return nil, false
	}
	switch n.Kind {
	case yaml.AliasNode:
		return b.orderedJSON(dst, n.Alias, path, depth+1)
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
			if dst, ok = b.orderedJSON(dst, n.Content[i+1], path+"."+k.Value, depth+1); !ok {
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
			if dst, ok = b.orderedJSON(dst, e, path+"["+strconv.Itoa(i)+"]", depth+1); !ok {
				return nil, false
			}
		}
		return append(dst, ']'), true
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" && strings.Contains(n.Value, "{{") {
			return b.templateString(dst, n, path), true
		}
		var x any
		if err := n.Decode(&x); err != nil {
			return nil, false
		}
		js, err := json.Marshal(x)
		if err != nil {
			return nil, false
		}
		return append(dst, js...), true
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
