package rules

// The feature schema: profile attributes and features aggregated from
// events. What an aggregation op accepts is featurestore's to say.

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// eventTypeRE is the syntax of an event type, as POST /v1/events accepts it.
var eventTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

func (l *loader) features(n *yaml.Node) *featurestore.Schema {
	var defs []featurestore.Feature
	seen := map[string]bool{}
	for _, kv := range l.pairs(n, "", "features") {
		name := kv[0].Value
		obj := fmt.Sprintf("feature %q", name)
		if !identRE.MatchString(name) {
			l.errorf(kv[0], obj, "", "name must be letters, digits and underscores, not starting with a digit")
			continue
		}
		if seen[name] {
			l.errorf(kv[0], obj, "", "declared twice")
			continue
		}
		seen[name] = true
		nerr := len(l.errs)
		f := l.fields(kv[1], obj, "type", "default", "from", "description")
		broken := func() { l.broken = append(l.broken, name) }
		tn, ok := l.str(f["type"], obj, "type")
		if !ok {
			if f["type"] == nil {
				l.errorf(kv[1], obj, "type", "is required (number, string, bool, time or list)")
			}
			broken()
			continue
		}
		typ, ok := featurestore.ParseType(tn)
		if !ok {
			l.errorf(f["type"], obj, "type", "%q is not one of number, string, bool, time, list", tn)
			broken()
			continue
		}
		def := featurestore.Feature{Name: name, Type: typ}
		if dn := f["default"]; dn != nil {
			var x any
			if err := dn.Decode(&x); err != nil {
				l.errorf(dn, obj, "default", "%v", err)
			} else if v, err := featurestore.Coerce(typ, x); err != nil {
				l.errorf(dn, obj, "default", "%v", err)
			} else {
				def.Default = v
			}
		}
		if fn := f["from"]; fn != nil {
			def.From = l.aggregation(fn, obj, typ)
		}
		if len(l.errs) > nerr {
			broken()
			continue
		}
		defs = append(defs, def)
	}
	s, err := featurestore.NewSchema(defs)
	if err != nil {
		// Every case NewSchema rejects has been reported above with a position.
		l.errorf(n, "", "features", "%v", err)
		return nil
	}
	return s
}

func (l *loader) aggregation(n *yaml.Node, obj string, typ featurestore.Type) *featurestore.Aggregation {
	f := l.fields(n, obj, "event", "op", "field", "window", "reset_on", "where")
	a := &featurestore.Aggregation{}
	ok := true
	if ev, has := l.str(f["event"], obj, "from.event"); has {
		a.Event = ev
		if !eventTypeRE.MatchString(ev) {
			l.errorf(f["event"], obj, "from.event", "%q is not an event type (^[a-z][a-z0-9_.-]{0,63}$): no event could feed it", ev)
			ok = false
		}
	} else {
		l.errorf(n, obj, "from.event", "is required")
		ok = false
	}
	opName, has := l.str(f["op"], obj, "from.op")
	if !has {
		l.errorf(n, obj, "from.op", "is required (%s)", opList(" or "))
		return nil
	}
	op, valid := featurestore.ParseOp(opName)
	if !valid {
		l.errorf(f["op"], obj, "from.op", "%q is not one of %s", opName, opList(", "))
		return nil
	}
	a.Op = op
	a.Field, _ = l.str(f["field"], obj, "from.field")
	if w, has := l.str(f["window"], obj, "from.window"); has {
		d, err := ParseDuration(w)
		if err != nil {
			l.errorf(f["window"], obj, "from.window", "%v", err)
			ok = false
		}
		a.Window = d
	}
	a.ResetOn = l.strings(f["reset_on"], obj, "from.reset_on")
	for i, ev := range a.ResetOn {
		if !eventTypeRE.MatchString(ev) && i < len(f["reset_on"].Content) {
			l.errorf(f["reset_on"].Content[i], obj, "from.reset_on", "%q is not an event type (^[a-z][a-z0-9_.-]{0,63}$)", ev)
			ok = false
		}
	}
	if oe := op.Check(typ, a.Field); oe != nil {
		// What an op accepts is featurestore's to say; this places it.
		at := f[oe.Attr]
		if oe.Problem == featurestore.OpNeedsField {
			at = n // no usable field: point at the aggregation
		}
		l.errorf(at, obj, "from."+oe.Attr, "%s", oe.Detail())
		ok = false
	} else if !l.checkField(f["field"], obj, a, op.Reads(typ)) {
		ok = false
	}
	if wn := f["where"]; wn != nil && a.Event != "" {
		if a.Where = l.where(wn, obj, a.Event); a.Where == nil {
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return a
}

// opList names every aggregation op, the last two joined by last: "count,
// sum, last, last_time, top or distinct".
func opList(last string) string {
	names := featurestore.OpNames()
	n := len(names)
	return strings.Join(names[:n-1], ", ") + last + names[n-1]
}
