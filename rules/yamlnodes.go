package rules

// Typed readers of YAML nodes: each reports a value of the wrong shape at
// its position and returns a usable zero, so one load reports every error.

import (
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// pairs returns the key and value nodes of a mapping, reporting an error
// when n is not a mapping.
func (l *loader) pairs(n *yaml.Node, object, field string) [][2]*yaml.Node {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n, object, field, "must be a mapping")
		return nil
	}
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

// fields maps the keys of a mapping to their value nodes, reporting
// unknown and repeated keys.
func (l *loader) fields(n *yaml.Node, object string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for _, kv := range l.pairs(n, object, "") {
		k := kv[0].Value
		if !contains(allowed, k) {
			l.errorf(kv[0], object, k, "unknown field (want one of %s)", strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k]; dup {
			l.errorf(kv[0], object, k, "field given twice")
			continue
		}
		out[k] = kv[1]
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (l *loader) str(n *yaml.Node, object, field string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errorf(n, object, field, "must be a string")
		return "", false
	}
	return n.Value, true
}

func (l *loader) strings(n *yaml.Node, object, field string) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, object, field, "must be a list")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		if s, ok := l.str(e, object, field); ok {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) number(n *yaml.Node, object, field string, def float64) float64 {
	if n == nil {
		return def
	}
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		l.errorf(n, object, field, "must be a finite number")
		return def
	}
	return f
}

func (l *loader) boolean(n *yaml.Node, object, field string) bool {
	var b bool
	if n == nil {
		return false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		l.errorf(n, object, field, "must be true or false")
	}
	return b
}

func (l *loader) timestamp(n *yaml.Node, object, field string) time.Time {
	if n == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		l.errorf(n, object, field, "must be an RFC 3339 time like 2026-01-01T00:00:00Z")
		return time.Time{}
	}
	return t
}

// duration reads a catalog duration such as 7d or 12h.
// A missing required one is reported at parent.
func (l *loader) duration(n, parent *yaml.Node, obj, field string) time.Duration {
	s, ok := l.str(n, obj, field)
	if !ok {
		if n == nil {
			l.errorf(parent, obj, field, "is required (like 7d or 12h)")
		}
		return 0
	}
	d, err := ParseDuration(s)
	if err != nil {
		l.errorf(n, obj, field, "%v", err)
	}
	return d
}
