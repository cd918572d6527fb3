package rules

// Event declarations and the where filters of derived features: the
// property types of an event type (events:), and the expression that
// selects the events feeding a feature (from.where), type-checked against
// them, held to the limits of every catalog expression (safety.go) and
// compiled once. featurestore runs the filter through its EventFilter
// interface and knows nothing of expr.

import (
	"fmt"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// propertyTypes are the types an event property may be declared with:
// what JSON gives a where expression as it is, with no conversion.
const propertyTypes = "number, string or bool"

// eventDecl is an event type declared under events:.
type eventDecl struct {
	props map[string]featurestore.Type
	// where compiles the where expressions of features fed by the event
	// type; made on first use.
	where *compiler
}

// events reads the events: section, the declared property types of
// event types, before the features that read them.
func (l *loader) events(n *yaml.Node) {
	l.eventDecls = map[string]*eventDecl{}
	for _, kv := range l.pairs(n, "", "events") {
		typ := kv[0].Value
		obj := fmt.Sprintf("event %q", typ)
		if !eventTypeRE.MatchString(typ) {
			l.errorf(kv[0], obj, "", "%q is not an event type (^[a-z][a-z0-9_.-]{0,63}$)", typ)
			continue
		}
		if l.eventDecls[typ] != nil {
			l.errorf(kv[0], obj, "", "declared twice")
			continue
		}
		d := &eventDecl{props: map[string]featurestore.Type{}}
		l.eventDecls[typ] = d
		f := l.fields(kv[1], obj, "properties", "description")
		for _, p := range l.pairs(f["properties"], obj, "properties") {
			name := p[0].Value
			field := "properties." + name
			switch {
			case !identRE.MatchString(name):
				l.errorf(p[0], obj, field, "name must be letters, digits and underscores, not starting with a digit")
				continue
			case name == featurestore.FieldChannel:
				l.errorf(p[0], obj, field, "channel is the event's own channel (read as channel in where, and as field: channel), not a property")
				continue
			case d.props[name] != 0:
				l.errorf(p[0], obj, field, "declared twice")
				continue
			}
			tn, ok := l.str(p[1], obj, field)
			if !ok {
				continue
			}
			t, ok := featurestore.ParseType(tn)
			if !ok || (t != featurestore.TypeNumber && t != featurestore.TypeString && t != featurestore.TypeBool) {
				l.errorf(p[1], obj, field, "%q is not one of %s", tn, propertyTypes)
				continue
			}
			d.props[name] = t
		}
	}
}

// declareEvents records the declared property types in s, which checks
// events against them.
func (l *loader) declareEvents(s *featurestore.Schema) {
	for typ, d := range l.eventDecls {
		if err := s.DeclareProperties(typ, d.props); err != nil {
			l.errorf(nil, "", "events", "%v", err) // reported above with a position
		}
	}
}

// checkField reports a field an aggregation reads that its event declares
// with another type than the op reads it as.
func (l *loader) checkField(n *yaml.Node, obj string, a *featurestore.Aggregation, reads featurestore.Type) bool {
	d := l.eventDecls[a.Event]
	if d == nil || a.Field == "" {
		return true
	}
	t, ok := d.props[a.Field]
	if !ok || t == reads {
		return true
	}
	l.errorf(n, obj, "from.field", "%s reads %q as a %s, but %s events declare it a %s", a.Op, a.Field, reads, a.Event, t)
	return false
}

// where compiles the where expression of a feature fed by events of type
// event, read from n.
func (l *loader) where(n *yaml.Node, obj, event string) featurestore.EventFilter {
	src, ok := l.str(n, obj, "from.where")
	if !ok {
		return nil
	}
	d := l.eventDecls[event]
	if d == nil {
		d = &eventDecl{props: map[string]featurestore.Type{}} // every property is unknown
		l.eventDecls[event] = d
	}
	if d.where == nil {
		d.where = whereCompiler(d.props)
	}
	r, eerr := d.where.compileRule(src)
	if eerr != nil {
		if name, ok := strings.CutPrefix(eerr.msg, "unknown field "); ok {
			eerr.msg = fmt.Sprintf("%s events declare no property %s (declare it under events: %s: properties:)", event, name, event)
		}
		l.exprError(n, obj, "from.where", src, eerr)
		return nil
	}
	return &eventFilter{src: src, program: r.program}
}

// whereCompiler returns the compiler of the where expressions of an
// event type whose properties are props: the environment is the event's
// properties, as event.<name>, and its channel, as channel. Rules of
// the catalog (segments, offers) see none of it, and a where sees no
// customer, context, segments or clock: it judges the event alone.
func whereCompiler(props map[string]featurestore.Type) *compiler {
	event := types.Map{}
	for name, t := range props {
		event[name] = typeOf(t)
	}
	env := types.Map{"event": event, "channel": types.String}
	c := &compiler{env: env, segments: map[string]int{}, noFast: true}
	c.cfg = config([]expr.Option{expr.Env(env), expr.AsBool(), expr.MaxNodes(MaxExprNodes)})
	return c
}

// eventFilter is a compiled where: the featurestore.EventFilter of an
// aggregation.
type eventFilter struct {
	src     string
	program *vm.Program
}

// filterRun is what one evaluation of a where needs, pooled: expr's VM
// and the environment it reads.
type filterRun struct {
	vm  vm.VM
	env map[string]any
}

var filterRuns = sync.Pool{New: func() any { return &filterRun{env: make(map[string]any, 2)} }}

// Match reports whether the where holds for ev. A runtime error (a
// property absent or null where a number is compared) makes it false, as
// it makes a rule false.
func (f *eventFilter) Match(ev *featurestore.Event) bool {
	r := filterRuns.Get().(*filterRun)
	r.env["event"] = ev.Properties
	r.env["channel"] = ev.Channel
	out, err := r.vm.Run(f.program, r.env)
	clear(r.env) // keep no event alive in the pool
	filterRuns.Put(r)
	b, _ := out.(bool)
	return err == nil && b
}

func (f *eventFilter) String() string { return f.src }
