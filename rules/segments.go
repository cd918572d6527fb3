package rules

// Segments, and the boolean rules segments and offers are written in.

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// rule reads an expression and compiles it, reporting errors at their
// position in the file.
func (l *loader) rule(comp *compiler, n *yaml.Node, obj, field string) *Rule {
	return l.boolRule(comp, n, obj, field, false)
}

// boolRule is rule; planned plans it over the catalog's distinct
// conditions, as an offer's eligible rule is.
func (l *loader) boolRule(comp *compiler, n *yaml.Node, obj, field string, planned bool) *Rule {
	src, ok := l.str(n, obj, field)
	if !ok {
		return nil
	}
	r, eerr := comp.compileBool(src, planned)
	if eerr != nil {
		l.exprError(n, obj, field, src, eerr)
		return nil
	}
	l.usePlacements(comp, n, obj, field, src)
	r.Line, r.Column = n.Line, n.Column
	return r
}

func (l *loader) segments(c *Catalog, comp *compiler, n *yaml.Node) {
	for _, kv := range l.pairs(n, "", "segments") {
		name := kv[0].Value
		obj := fmt.Sprintf("segment %q", name)
		if !idRE.MatchString(name) || len(name) > maxIDLen {
			l.errorf(kv[0], obj, "", "name must be letters, digits, and _ . : -")
			continue
		}
		if _, dup := comp.segments[name]; dup {
			l.errorf(kv[0], obj, "", "declared twice")
			continue
		}
		s := &Segment{Name: name, Index: len(c.Segments)}
		ruleNode := kv[1]
		if kv[1].Kind == yaml.MappingNode {
			f := l.fields(kv[1], obj, "rule", "description")
			s.Description, _ = l.str(f["description"], obj, "description")
			ruleNode = f["rule"]
			if ruleNode == nil {
				l.errorf(kv[1], obj, "rule", "is required")
				continue
			}
		}
		s.Rule = l.rule(comp, ruleNode, obj, "rule")
		comp.segments[name] = s.Index // later segments and offers may use it
		if s.Rule != nil {
			c.Segments = append(c.Segments, s)
		}
	}
}
