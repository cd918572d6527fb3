package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// LoadFile reads and compiles the catalog at path. A catalog with
// problems returns Errors holding every one of them.
func LoadFile(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(path, data)
}

// Load compiles the YAML catalog in data; name is the file name errors
// carry. A catalog with problems returns Errors holding every one of them,
// in file order. It is Compile with the default Options.
func Load(name string, data []byte) (*Catalog, error) {
	return Compile(name, data, Options{})
}

// Compile is Load within the budget of opts (budget.go): a catalog over
// one of its limits returns Errors that name the limit, by how much it is
// over, and the flag that raises it.
func Compile(name string, data []byte, opts Options) (*Catalog, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &loader{file: name, opts: opts}
	c := l.load(data)
	if len(l.errs) > 0 {
		slices.SortStableFunc(l.errs, func(a, b *Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, l.errs
	}
	return c, nil
}

// eventTypeRE is the syntax of an event type, as POST /v1/events accepts it.
var eventTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

var (
	identRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	idRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	yamlErrRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// maxIDLen bounds ids and names, which travel in every response.
const maxIDLen = 128

type loader struct {
	file   string
	lines  []string // the file's lines, to place errors inside multi-line rules
	errs   Errors
	broken []string // features declared with errors; typed any so rules using them do not pile up errors
	noFast bool     // compile every rule for expr's VM only (tests)
	opts   Options  // the budget, with defaults applied
}

func (l *loader) errorf(n *yaml.Node, object, field, format string, args ...any) {
	e := &Error{File: l.file, Object: object, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

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

func (l *loader) load(data []byte) *Catalog {
	l.lines = strings.Split(string(data), "\n")
	for i, line := range l.lines {
		l.lines[i] = strings.TrimSuffix(line, "\r")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.errs = append(l.errs, l.syntaxError(data, err))
		return nil
	}
	if len(doc.Content) == 0 {
		l.errorf(nil, "", "", "empty catalog")
		return nil
	}
	root := l.fields(doc.Content[0], "", "channels", "features", "segments", "offers", "defaults", "contact_policy", "learning", "arbitration", "experiments", "sticky", "groups")
	c := &Catalog{File: l.file, channels: map[string]*Channel{}, offers: map[string]*Offer{}}
	if l.overCounts(root) {
		return nil
	}
	l.channels(c, root["channels"])
	switch {
	case root["channels"] == nil:
		l.errorf(doc.Content[0], "", "channels", "at least one channel is required")
	case len(c.Channels) == 0 && root["channels"].Kind == yaml.SequenceNode && len(root["channels"].Content) == 0:
		l.errorf(root["channels"], "", "channels", "at least one channel is required")
	}
	schema := l.features(root["features"])
	if schema == nil {
		return nil
	}
	c.Schema = schema
	c.Policy = l.contactPolicy(root["contact_policy"])
	c.Learning = l.learning(c, root["learning"])
	c.Sticky = l.sticky(root["sticky"], "")
	l.groups(c, root["groups"])
	comp := newCompiler(schema)
	comp.noFast = l.noFast
	if cust, ok := comp.env["customer"].(types.Map); ok {
		for _, name := range l.broken {
			cust[name] = types.Any
		}
	}
	l.segments(c, comp, root["segments"])
	l.offers(c, comp, root["offers"])
	l.defaults(c, root["defaults"])
	if a := l.arbitration(comp, root["arbitration"], "", "arbitration"); a != nil {
		c.Arbitration = *a
	}
	l.experiments(c, comp, root["experiments"])
	schema.ContactRetention = contactRetention(c)
	c.byChannel = make([][]*Offer, len(c.Channels))
	for _, o := range c.Offers {
		c.maxSticky = max(c.maxSticky, o.Sticky)
		for _, ch := range o.Channels {
			c.byChannel[ch.Index] = append(c.byChannel[ch.Index], o)
		}
	}
	l.overBudget(c)
	return c
}

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
		if e.Kind == yaml.MappingNode {
			f := l.fields(e, "channel", "name", "decision_is_impression")
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
	}
	c.defaults = make([]*Content, len(c.Channels))
}

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
	f := l.fields(n, obj, "event", "op", "field", "window", "reset_on")
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
		l.errorf(n, obj, "from.op", "is required (count, sum, last or last_time)")
		return nil
	}
	op, valid := featurestore.ParseOp(opName)
	if !valid {
		l.errorf(f["op"], obj, "from.op", "%q is not one of count, sum, last, last_time", opName)
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
	switch {
	case (op == featurestore.OpCount || op == featurestore.OpSum) && typ != featurestore.TypeNumber:
		l.errorf(f["op"], obj, "from.op", "%s makes a number, but the feature's type is %s", op, typ)
		ok = false
	case op == featurestore.OpLastTime && typ != featurestore.TypeTime:
		l.errorf(f["op"], obj, "from.op", "last_time makes a time, but the feature's type is %s", typ)
		ok = false
	case (op == featurestore.OpSum || op == featurestore.OpLast) && a.Field == "":
		l.errorf(n, obj, "from.field", "op %s needs the event property to read", op)
		ok = false
	case (op == featurestore.OpCount || op == featurestore.OpLastTime) && a.Field != "":
		l.errorf(f["field"], obj, "from.field", "op %s reads no property", op)
		ok = false
	}
	if !ok {
		return nil
	}
	return a
}

// objectID reads the id of an object of kind (offer, experiment) declared
// at n: required, with the id syntax. obj names the object in errors.
func (l *loader) objectID(n, idNode *yaml.Node, kind string) (id, obj string, ok bool) {
	id, ok = l.str(idNode, kind, "id")
	if !ok {
		if idNode == nil {
			l.errorf(n, kind, "id", "is required")
		}
		return "", "", false
	}
	obj = fmt.Sprintf("%s %q", kind, id)
	if !idRE.MatchString(id) || len(id) > maxIDLen {
		l.errorf(idNode, obj, "id", "must be letters, digits, and _ . : - (at most %d)", maxIDLen)
		return "", "", false
	}
	return id, obj, true
}

// exprError reports eerr, an error of the expression src read from n, at
// its position in the file, quoting the expression on one line.
func (l *loader) exprError(n *yaml.Node, obj, field, src string, eerr *exprError) {
	line, col := n.Line, n.Column
	if eerr.line > 0 {
		line, col = l.locate(n, exprOffset(src, eerr.line, eerr.column))
	}
	quoted := strings.Join(strings.Fields(src), " ")
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Object: obj, Field: field, Msg: eerr.msg + " in `" + quoted + "`"})
}

// rule reads an expression and compiles it, reporting errors at their
// position in the file.
func (l *loader) rule(comp *compiler, n *yaml.Node, obj, field string) *Rule {
	src, ok := l.str(n, obj, field)
	if !ok {
		return nil
	}
	r, eerr := comp.compileRule(src)
	if eerr != nil {
		l.exprError(n, obj, field, src, eerr)
		return nil
	}
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
			if ct := l.content(kv[1], obj, "content."+name); ct != nil {
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
			o.Eligible = l.rule(comp, en, obj, "eligible")
		}
		o.Index = len(c.Offers)
		c.Offers = append(c.Offers, o)
		c.offers[id] = o
	}
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

// exprOffset converts a 1-based line and column within src to a byte offset.
func exprOffset(src string, line, col int) int {
	off := 0
	for i := 1; i < line; i++ {
		nl := strings.IndexByte(src[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	return off + max(col-1, 0)
}

// locate maps a byte offset within the value of scalar n to a line and
// column of the file. A multi-line value (a block scalar, or a plain or
// quoted scalar folded over lines) is the file's lines joined by a single
// character (newline or space), so walking the rows it came from finds
// the offset; escapes in double-quoted values count as one character.
func (l *loader) locate(n *yaml.Node, offset int) (line, col int) {
	type row struct {
		line, col int // where the row's text starts, 1-based
		text      string
	}
	var rows []row
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := -1
		for i := n.Line; i < len(l.lines); i++ { // n.Line is the indicator's line
			t := l.lines[i]
			trimmed := strings.TrimLeft(t, " ")
			if trimmed == "" {
				if indent >= 0 {
					rows = append(rows, row{line: i + 1, col: indent + 1})
				}
				continue
			}
			ind := len(t) - len(trimmed)
			if indent < 0 {
				indent = ind
			}
			if ind < indent {
				break
			}
			rows = append(rows, row{line: i + 1, col: indent + 1, text: t[indent:]})
		}
	default:
		if n.Line < 1 || n.Line > len(l.lines) {
			return n.Line, n.Column
		}
		start := n.Column - 1
		if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
			start++
		}
		first := l.lines[n.Line-1]
		if start > len(first) {
			return n.Line, n.Column
		}
		rows = append(rows, row{line: n.Line, col: start + 1, text: first[start:]})
		for i := n.Line; i < len(l.lines) && i < n.Line+100; i++ {
			t := l.lines[i]
			trimmed := strings.TrimLeft(t, " ")
			rows = append(rows, row{line: i + 1, col: len(t) - len(trimmed) + 1, text: trimmed})
		}
	}
	for _, r := range rows {
		width := len(r.text)
		raw := offset
		if n.Style == yaml.DoubleQuotedStyle {
			width, raw = unescapedWidth(r.text, offset)
		}
		if offset <= width {
			return r.line, r.col + raw
		}
		offset -= width + 1
	}
	return n.Line, n.Column
}

// unescapedWidth returns how many characters the double-quoted text
// decodes to, and the raw index of decoded character offset.
func unescapedWidth(text string, offset int) (width, raw int) {
	raw = -1
	for i := 0; i < len(text); i++ {
		if width == offset && raw < 0 {
			raw = i
		}
		if text[i] == '"' {
			break
		}
		if text[i] == '\\' && i+1 < len(text) {
			switch text[i+1] {
			case 'x':
				i += 3
			case 'u':
				i += 5
			case 'U':
				i += 9
			default:
				i++
			}
		}
		width++
	}
	if raw < 0 {
		raw = len(text)
	}
	return width, raw
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

// contactRetention is the longest look-back of any contact policy of c,
// at least 30 days, so history serves every cap and suppression.
func contactRetention(c *Catalog) time.Duration {
	d := 30 * 24 * time.Hour
	d = max(d, c.Policy.Within)
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
