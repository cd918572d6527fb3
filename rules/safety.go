package rules

// Expression safety: what a catalog expression may cost, decided when the
// catalog is loaded.
//
// A catalog may be written carelessly or with hostile intent, and the
// context of a decision is whatever the client sends (up to the request
// body limit), so every expression is checked on its typed syntax tree
// before it is compiled, and one that could run away is rejected with its
// position, like any other author error. The policy:
//
//   - Size. At most MaxExprNodes nodes (expr's own limit), and at most
//     MaxExprDepth levels of brackets and prefix operators: expr's parser
//     recurses on both before it counts a node, and a deep enough
//     expression overflows the stack, which no recover can catch.
//   - Ranges. Both bounds of a..b are integer literals and the range has
//     at most MaxExprTurns numbers: a range is allocated in full.
//   - Builtins. repeat is rejected (its result can be any size). reduce
//     must produce a number or a bool: an accumulated string or list grows
//     with every step and can double each time. matches takes a string
//     literal as its pattern, compiled once at load; a pattern from the
//     request would be compiled per evaluation and run in time of the
//     product of the two lengths. replace and join of request data take a
//     literal replacement or separator, so the growth they cause is known.
//     contains, indexOf, lastIndexOf, split, replace and trim may not
//     search request data for request data (crafted, that takes time of
//     the product of the lengths), and toJSON may not print request data
//     (indented, its output can be hundreds of times its input).
//   - Loops. Data sized by the request are context values and the
//     customer's string and list features (both are client input) and
//     anything computed from them; data sized by the catalog are literals,
//     constant ranges and segments. A loop (all, any, filter, map, count,
//     sum, find..., groupBy, sortBy, reduce) over request data may not, in
//     its body, loop over, scan (in, contains, matches, +, join, ...) or
//     yield other request data than its own element `#` and what is taken
//     from it: that is how a cost grows with the square of the request.
//     Looping over a part of the element, as in
//     any(context.orders, any(#.lines, ...)), costs no more than one pass
//     over the orders and is allowed.
//   - Turns. Loops and ranges over catalog-sized data may turn at most
//     MaxExprTurns times in all, counting nested loops multiplied.
//   - Passes. Going over request data costs a pass: each loop over it,
//     each scan or copy of it, and every node evaluated in the body of a
//     loop over it, per element. An expression may cost at most
//     MaxExprPasses passes, so its evaluation time is at most linear in
//     the size of the request, with a constant the catalog cannot raise.
//
// Memory is bounded by the same arguments and, at run time, by expr's VM
// memory budget (conf.DefaultMemoryBudget when VM.MemoryBudget is zero,
// as it is in Env), which stops oversized ranges, arrays and maps that
// slip through with a runtime error that makes the rule false.
//
// What this does not bound is the request: a 1 MiB context list costs a
// pass of 1 MiB. The HTTP layer's body limit is that bound.
//
// Nor does it bound the catalog: a thousand expressions each just inside
// these limits make every decision slow. So the check also returns what
// the expression costs, in steps: the nodes one evaluation runs (a node in
// the body of a loop over catalog-sized data once per turn), plus its
// turns, plus PassSteps for each pass over request data. Options.MaxExprCost
// bounds the sum over the catalog (budget.go).

import (
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
)

const (
	// MaxExprDepth bounds the nesting of brackets and prefix operators
	// (!, -, not) in one expression.
	MaxExprDepth = 100
	// MaxExprTurns bounds the turns of the loops over catalog-sized data of
	// one expression, nested loops multiplied, and the length of a range.
	MaxExprTurns = 10_000
	// MaxExprPasses bounds how many times one evaluation may go over data
	// whose size the request decides; see the policy above.
	MaxExprPasses = 100
	// PassSteps is what a pass over request data costs, in steps: a pass
	// over a context list or string of a typical size.
	PassSteps = 16
)

// checkSafety returns the cost of src, whose type-checked tree is tree, in
// steps (see above), and the first way it could run away at evaluation, or
// nil. Its nesting was bounded by depthError before it was parsed.
func (c *compiler) checkSafety(src string, tree ast.Node) (int, *exprError) {
	k := &safety{src: src, segments: len(c.segments)}
	k.walk(tree, &scope{mult: 1})
	return satAdd(satAdd(k.steps, k.turns), satMul(k.passes, PassSteps)), k.err
}

// depthError bounds the nesting expr's recursive-descent parser would go
// through, from the tokens alone: each open bracket and each prefix
// operator is a level (binary operators before a bracket count too, which
// overestimates by at most a factor of two).
func depthError(src string) *exprError {
	l := lexer.New()
	l.Reset(file.NewSource(src))
	var open []int // operators pending at each open bracket
	pending, depth := 0, 0
	for {
		t, err := l.Next()
		if err != nil || t.Kind == lexer.EOF {
			return nil // a lexical error is expr.Compile's to report
		}
		switch {
		case t.Kind == lexer.Bracket && (t.Value == "(" || t.Value == "[" || t.Value == "{"):
			open = append(open, pending)
			depth += pending + 1
			pending = 0
		case t.Kind == lexer.Bracket:
			if n := len(open); n > 0 {
				depth -= open[n-1] + 1
				open = open[:n-1]
			}
			pending = 0
		case t.Kind == lexer.Operator && t.Value != "," && t.Value != ";" && t.Value != ":":
			pending++
		default:
			pending = 0
		}
		if depth+pending > MaxExprDepth {
			line, col := position(src, t.From)
			return &exprError{line: line, column: col, msg: fmt.Sprintf("nested more than %d deep (brackets and prefix operators)", MaxExprDepth)}
		}
	}
}

// val is what the checker knows of a value.
type val struct {
	big   bool       // sized by the request, not the catalog
	w     int        // when big: its size, in request sizes
	owner *loopFrame // when big: the loop over request data whose element it is part of; nil for none
	n     int        // when not big: the number of elements of a collection, -1 when unknown or not one
}

var small = val{n: -1}

func bigVal(w int, owner *loopFrame) val { return val{big: true, w: max(w, 1), owner: owner, n: -1} }

// loopFrame is a loop over request data.
type loopFrame struct {
	w    int    // size of the collection, in request sizes
	what string // the collection, for messages
}

type scope struct {
	mult int        // turns of the enclosing loops over catalog-sized data, multiplied
	loop *loopFrame // the innermost enclosing loop over request data, nil if none
	elem val        // what # is
	vars *binding   // let variables in scope
}

type binding struct {
	name string
	v    val
	next *binding
}

type safety struct {
	src      string
	segments int // segments declared so far: the longest `segments` can be
	turns    int
	passes   int
	steps    int // nodes evaluated outside loops over request data, loop turns multiplied
	err      *exprError
}

func (k *safety) fail(n ast.Node, format string, args ...any) {
	if k.err != nil {
		return
	}
	line, col := position(k.src, start(n).Location().From)
	k.err = &exprError{line: line, column: col, msg: fmt.Sprintf(format, args...)}
}

// pass charges p passes over request data to node n.
func (k *safety) pass(n ast.Node, p int) {
	k.passes = satAdd(k.passes, p)
	if k.passes > MaxExprPasses {
		k.fail(n, "too costly: evaluation could go over data the request sizes %d times or more (at most %d); shorten the loops over request data or scan it less often", k.passes, MaxExprPasses)
	}
}

// turn charges t turns of a loop over catalog-sized data at node n.
func (k *safety) turn(n ast.Node, t int, s *scope) {
	t = satMul(t, s.mult)
	if s.loop != nil {
		// Inside a loop over request data it runs once per element.
		k.pass(n, satMul(t, s.loop.w))
		return
	}
	k.turns = satAdd(k.turns, t)
	if k.turns > MaxExprTurns {
		k.fail(n, "too much looping: %d turns over lists and ranges (at most %d)", k.turns, MaxExprTurns)
	}
}

// read charges a scan or copy of v, the value of node n.
func (k *safety) read(n ast.Node, v val, s *scope) {
	if !v.big {
		return
	}
	if s.loop != nil && v.owner != s.loop {
		k.fail(n, "%s is read in a loop over %s: both grow with the request, so the cost would grow with its square", quote(n), s.loop.what)
		return
	}
	k.pass(n, satMul(v.w, s.mult))
}

// produce charges the building of v, the value of node n, and returns it.
func (k *safety) produce(n ast.Node, v val, s *scope) val {
	if v.big {
		k.pass(n, satMul(v.w, s.mult))
	}
	return v
}

// searches are the builtins that look for their second argument in their
// first: on crafted input, strings.Index (through its Rabin-Karp fallback)
// and strings.Trim (with a non-ASCII cutset) take time of the product of
// the two lengths.
var searches = map[string]bool{
	"indexOf": true, "lastIndexOf": true, "split": true, "splitAfter": true, "replace": true, "trim": true,
}

func (k *safety) walk(n ast.Node, s *scope) val {
	if k.err != nil || n == nil {
		return small
	}
	if s.loop != nil {
		k.pass(n, satMul(s.loop.w, s.mult))
	} else {
		k.steps = satAdd(k.steps, s.mult)
	}
	if size, ok := literal(n); ok {
		// Folded into one constant by expr: not walked node by node, so a
		// long list in `#.sku in [...]` costs one step per element.
		return val{n: size}
	}
	v := k.node(n, s)
	if isScalar(n.Type()) {
		return small // a number, bool or time is small whatever it was computed from
	}
	return v
}

func (k *safety) node(n ast.Node, s *scope) val {
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
		return small
	case *ast.IdentifierNode:
		for b := s.vars; b != nil; b = b.next {
			if b.name == n.Value {
				return b.v
			}
		}
		switch n.Value {
		case "segments":
			return val{n: k.segments}
		case "channel", "placement", "now", "propensity", "value", "weight":
			return small // ids the server checked, and scalars
		}
		return bigVal(1, nil) // context, customer, $env, and anything new
	case *ast.PointerNode:
		if n.Name == "" {
			return s.elem
		}
		return small // #index, and #acc of a reduce that makes a number or bool
	case *ast.UnaryNode:
		k.walk(n.Node, s)
		return small
	case *ast.BinaryNode:
		return k.binary(n, s)
	case *ast.ChainNode:
		return k.walk(n.Node, s)
	case *ast.MemberNode:
		obj := k.walk(n.Node, s)
		if p := k.walk(n.Property, s); p.big {
			k.read(n.Property, p, s) // hashed to look it up
		}
		return part(obj)
	case *ast.SliceNode:
		obj := k.walk(n.Node, s)
		k.walk(n.From, s)
		k.walk(n.To, s)
		return part(obj)
	case *ast.CallNode:
		return k.call(n, s)
	case *ast.BuiltinNode:
		return k.builtin(n, s)
	case *ast.ConditionalNode:
		k.walk(n.Cond, s)
		return either(k.walk(n.Exp1, s), k.walk(n.Exp2, s))
	case *ast.VariableDeclaratorNode:
		v := k.walk(n.Value, s)
		inner := *s
		inner.vars = &binding{name: n.Name, v: v, next: s.vars}
		return k.walk(n.Expr, &inner)
	case *ast.SequenceNode:
		last := small
		for _, e := range n.Nodes {
			last = k.walk(e, s)
		}
		return last
	case *ast.ArrayNode:
		vs := make([]val, len(n.Nodes))
		for i, e := range n.Nodes {
			vs[i] = k.walk(e, s)
		}
		return collection(len(vs), vs)
	case *ast.MapNode:
		var vs []val
		for _, p := range n.Pairs {
			vs = append(vs, k.walk(p, s))
		}
		return collection(len(vs), vs)
	case *ast.PairNode:
		return either(k.walk(n.Key, s), k.walk(n.Value, s))
	}
	k.fail(n, "unsupported expression form %s", quote(n))
	return small
}

func (k *safety) binary(n *ast.BinaryNode, s *scope) val {
	if n.Operator == ".." {
		lo, lok := intLiteral(n.Left)
		hi, hok := intLiteral(n.Right)
		if !lok || !hok {
			k.fail(n, "a range needs integer literals as bounds, like 1..10")
			return small
		}
		size := max(hi-lo+1, 0)
		if size > MaxExprTurns {
			k.fail(n, "range of %d numbers (at most %d)", size, MaxExprTurns)
			return small
		}
		k.turn(n, size, s)
		return val{n: size}
	}
	l := k.walk(n.Left, s)
	r := k.walk(n.Right, s)
	switch n.Operator {
	case "&&", "||", "and", "or", "-", "*", "/", "%", "**", "^":
		return small
	case "??":
		return either(l, r)
	case "==", "!=", "<", ">", "<=", ">=":
		// Comparing costs the shorter of the two: what is owned by the
		// current loop, or else the left.
		if l.big && r.big {
			if r.owner == s.loop {
				k.read(n.Right, r, s)
			} else {
				k.read(n.Left, l, s)
			}
		}
		return small
	case "in":
		if t := n.Right.Type(); t != nil && (t.Kind() == reflect.Map || t.Kind() == reflect.Struct) {
			k.read(n.Left, l, s) // hashed
		} else {
			k.read(n.Right, r, s) // scanned
		}
		return small
	case "matches":
		if _, ok := n.Right.(*ast.StringNode); !ok {
			k.fail(n.Right, "matches needs a string literal as its pattern: a pattern from the request would be compiled on every evaluation")
		}
		k.read(n.Left, l, s)
		return small
	case "+":
		k.read(n.Left, l, s)
		k.read(n.Right, r, s)
		if l.big || r.big {
			return k.produce(n, concat(l, r), s)
		}
		return small
	}
	if n.Operator == "contains" && l.big && r.big {
		k.fail(n, "contains searches request data for request data: it can take time of the product of their lengths")
		return small
	}
	// contains, startsWith, endsWith, and whatever expr adds: a scan.
	k.read(n.Left, l, s)
	k.read(n.Right, r, s)
	return small
}

// call handles the catalog's own functions and method calls.
func (k *safety) call(n *ast.CallNode, s *scope) val {
	recv := k.walk(n.Callee, s)
	args := make([]val, len(n.Arguments))
	for i, a := range n.Arguments {
		args[i] = k.walk(a, s)
		k.read(a, args[i], s)
	}
	if id, ok := n.Callee.(*ast.IdentifierNode); ok && (id.Value == "days_since" || id.Value == "hours_since") {
		return small
	}
	// A method (say, now.Format(layout)): its result is at most a few
	// times its inputs.
	return grown(4, append(args, recv)...)
}

// predicates are the builtins that take a closure run per element.
var predicates = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true,
	"count": true, "sum": true, "find": true, "findIndex": true, "findLast": true,
	"findLastIndex": true, "groupBy": true, "sortBy": true, "reduce": true,
}

func (k *safety) builtin(n *ast.BuiltinNode, s *scope) val {
	if predicates[n.Name] && len(n.Arguments) > 0 {
		return k.loop(n, s)
	}
	args := make([]val, len(n.Arguments))
	for i, a := range n.Arguments {
		args[i] = k.walk(a, s)
	}
	switch n.Name {
	case "repeat":
		k.fail(n, "repeat is not allowed: its result can be any size")
		return small
	case "type":
		return small
	case "first", "last", "get", "take":
		for i, a := range n.Arguments[1:] {
			k.read(a, args[i+1], s)
		}
		v := part(args[0])
		if n.Name == "take" && !args[0].big && args[0].n >= 0 && len(n.Arguments) == 2 {
			if t, ok := intLiteral(n.Arguments[1]); ok {
				v.n = min(args[0].n, max(t, 0))
			}
		}
		return v
	}
	if searches[n.Name] && len(args) > 1 && args[0].big && args[1].big {
		k.fail(n, "%s searches request data for request data: it can take time of the product of their lengths", n.Name)
		return small
	}
	for i, a := range n.Arguments {
		k.read(a, args[i], s)
	}
	factor := 1
	switch n.Name {
	case "toJSON":
		if len(args) > 0 && args[0].big {
			k.fail(n, "toJSON of request data is not allowed: indented, its output can be hundreds of times its input")
			return small
		}
	case "string":
		factor = 6 // \u00XX escapes
	case "fromJSON":
		factor = 8 // a value per few bytes
	case "toBase64", "upper", "lower":
		factor = 2
	case "replace", "join":
		// join(list, sep) and replace(s, old, new): sep or new may be
		// inserted between any two characters.
		last := len(n.Arguments) - 1
		if last < 1 || !args[0].big {
			break
		}
		lit, ok := n.Arguments[last].(*ast.StringNode)
		if !ok {
			what := "replacement"
			if n.Name == "join" {
				what = "separator"
			}
			k.fail(n.Arguments[last], "%s of request data needs a string literal as the %s", n.Name, what)
			return small
		}
		factor = 1 + len(lit.Value)
	}
	v := k.produce(n, grown(factor, args...), s)
	if !v.big && len(args) == 1 && (n.Name == "reverse" || n.Name == "sort" || n.Name == "uniq") {
		v.n = args[0].n
	}
	return v
}

// loop handles the builtins that run a closure per element of their first
// argument (count and sum also without one).
func (k *safety) loop(n *ast.BuiltinNode, s *scope) val {
	if n.Name == "reduce" && !isScalar(n.Type()) {
		k.fail(n, "reduce must produce a number or a bool, like float(#acc) + float(#.qty) (or use sum, count, any or all): an accumulated string or list grows at every step")
		return small
	}
	coll := k.walk(n.Arguments[0], s)
	for _, a := range n.Arguments[min(2, len(n.Arguments)):] {
		k.walk(a, s) // sortBy's order, reduce's initial value
	}
	body := &scope{mult: s.mult, loop: s.loop, elem: small, vars: s.vars}
	var frame *loopFrame
	if !coll.big && coll.n >= 0 {
		k.turn(n, coll.n, s)
		body.mult = satMul(s.mult, coll.n)
	} else {
		if !coll.big {
			coll = bigVal(1, nil) // computed, of a length the catalog does not fix
		}
		if s.loop != nil && coll.owner != s.loop {
			k.fail(n.Arguments[0], "loop over %s inside a loop over %s: both grow with the request, so the cost would grow with its square", quote(n.Arguments[0]), s.loop.what)
			return small
		}
		k.pass(n, satMul(coll.w, s.mult))
		frame = &loopFrame{w: coll.w, what: quote(n.Arguments[0])}
		body.loop = frame
		body.elem = bigVal(coll.w, frame)
	}
	if k.err != nil {
		return small
	}
	if len(n.Arguments) < 2 {
		return small // count(list), sum(list)
	}
	p, ok := n.Arguments[1].(*ast.PredicateNode)
	if !ok {
		k.walk(n.Arguments[1], s)
		return small
	}
	out := k.walk(p.Node, body)
	switch n.Name {
	case "groupBy", "sortBy":
		k.read(p.Node, out, body) // hashed or compared, per element
		return coll
	case "filter":
		return coll
	case "find", "findLast":
		return part(coll)
	case "map":
		if out.big && out.owner != body.loop {
			k.fail(p.Node, "map yields %s for each element: the result would grow with the square of the request", quote(p.Node))
			return small
		}
		if coll.big {
			return k.produce(n, bigVal(satAdd(coll.w, out.w), coll.owner), s)
		}
		if out.big {
			return k.produce(n, bigVal(satMul(coll.n, out.w), out.owner), s)
		}
		return val{n: coll.n}
	}
	return small
}

// part is a value taken from v: a field, an element, a slice.
func part(v val) val {
	if v.big {
		return v
	}
	return small
}

// collection is an array or map literal of n elements with values vs.
func collection(n int, vs []val) val {
	if v := grown(1, vs...); v.big {
		return v
	}
	return val{n: n}
}

// concat is the result of l + r on strings or lists.
func concat(l, r val) val {
	if !l.big {
		l.w = 0
	}
	if !r.big {
		r.w = 0
	}
	return bigVal(satAdd(l.w, r.w), owner(l, r))
}

// either is a value that is one of l and r.
func either(l, r val) val {
	if !l.big && !r.big {
		return small
	}
	return bigVal(max(l.w, r.w), owner(l, r))
}

// grown is a value computed from vs, at most factor times their size.
func grown(factor int, vs ...val) val {
	w := 0
	var o *loopFrame
	first := true
	for _, v := range vs {
		if !v.big {
			continue
		}
		w = satAdd(w, v.w)
		if first {
			o, first = v.owner, false
		} else if o != v.owner {
			o = nil
		}
	}
	if first {
		return small
	}
	return bigVal(satMul(w, factor), o)
}

// owner is the loop both of l and r (when big) are part of, or nil.
func owner(l, r val) *loopFrame {
	switch {
	case !l.big:
		return r.owner
	case !r.big, l.owner == r.owner:
		return l.owner
	}
	return nil
}

var locationType = reflect.TypeFor[*time.Location]()

// isScalar reports whether values of t have a fixed size.
func isScalar(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return t == timeType || t == locationType
}

// literal reports whether n is made of literals only, and its number of
// elements when it is an array or map (-1 otherwise).
func literal(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
		return -1, true
	case *ast.UnaryNode:
		_, ok := literal(n.Node)
		return -1, ok
	case *ast.ArrayNode:
		for _, e := range n.Nodes {
			if _, ok := literal(e); !ok {
				return 0, false
			}
		}
		return len(n.Nodes), true
	case *ast.MapNode:
		for _, p := range n.Pairs {
			p := p.(*ast.PairNode)
			_, kok := literal(p.Key)
			_, vok := literal(p.Value)
			if !kok || !vok {
				return 0, false
			}
		}
		return len(n.Pairs), true
	}
	return 0, false
}

// start is the leftmost node of n, where an error about n points: expr
// places a member access at its dot and an operator at its symbol.
func start(n ast.Node) ast.Node {
	switch x := n.(type) {
	case *ast.MemberNode:
		return start(x.Node)
	case *ast.ChainNode:
		return start(x.Node)
	case *ast.SliceNode:
		return start(x.Node)
	case *ast.CallNode:
		return start(x.Callee)
	case *ast.BinaryNode:
		return start(x.Left)
	}
	return n
}

// intLiteral returns the value of an integer literal, possibly negated.
func intLiteral(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if v, ok := intLiteral(n.Node); ok && n.Operator == "-" {
			return -v, true
		}
	}
	return 0, false
}

// quote shows n in a message, shortened.
func quote(n ast.Node) string {
	s := []rune(n.String())
	if len(s) > 40 {
		s = append(s[:37], '.', '.', '.')
	}
	return "`" + string(s) + "`"
}

func satAdd(a, b int) int {
	if a+b < a || a+b > 1<<40 {
		return 1 << 40
	}
	return a + b
}

func satMul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > (1<<40)/b {
		return 1 << 40
	}
	return a * b
}
