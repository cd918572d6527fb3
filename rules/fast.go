package rules

import (
	"cmp"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"

	"github.com/nextbest/nextbest/featurestore"
)

// The specialised evaluator. expr's VM, fed a map[string]any, costs a few
// hundred nanoseconds per rule: building the map boxes every feature, and
// each member access is a map lookup. Marketers' rules are overwhelmingly
// comparisons, membership tests and boolean combinations over features,
// so those shapes are compiled here, from expr's type-checked AST, into a
// tree of typed closures that read the feature vector by index. Any rule
// using something else (context values, whose types are only known at run
// time, builtins other than len, regexes, ...) keeps running on expr's VM,
// so the language users write stays exactly expr. A differential test
// checks that both evaluators agree on every rule of the example catalogs.

type (
	boolFn func(*Env) bool
	numFn  func(*Env) float64
	strFn  func(*Env) string
	timeFn func(*Env) time.Time
	listFn func(*Env) []string
)

var (
	stringSliceType = reflect.TypeOf([]string(nil))
)

// fastCompiler turns a checked AST into closures. Every method reports
// false for a shape it does not handle; the rule then falls back to the VM.
type fastCompiler struct {
	schema   *featurestore.Schema
	segments map[string]int // segment name → index, for "x" in segments
	score    bool           // compiling an arbitration expression: propensity, value and weight are defined
}

func isNum(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Float64, reflect.Float32, reflect.Int, reflect.Int64, reflect.Int32:
		return true
	}
	return false
}

func isKind(t reflect.Type, k reflect.Kind) bool { return t != nil && t.Kind() == k }
func isTime(t reflect.Type) bool                 { return t == timeType }
func isList(t reflect.Type) bool                 { return t == stringSliceType }

var timeType = reflect.TypeOf(time.Time{})

// feature resolves `customer.<name>`.
func (fc *fastCompiler) feature(n ast.Node) (*featurestore.Feature, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return nil, false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "customer" {
		return nil, false
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return nil, false
	}
	return fc.schema.Lookup(p.Value)
}

func (fc *fastCompiler) boolean(n ast.Node) (boolFn, bool) {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := n.Value
		return func(*Env) bool { return v }, true
	case *ast.MemberNode:
		f, ok := fc.feature(n)
		if !ok || f.Type != featurestore.TypeBool {
			return nil, false
		}
		i := f.Index
		return func(e *Env) bool { return e.Customer[i].Int != 0 }, true
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil, false
		}
		x, ok := fc.boolean(n.Node)
		if !ok {
			return nil, false
		}
		return func(e *Env) bool { return !x(e) }, true
	case *ast.ConditionalNode:
		c, ok1 := fc.boolean(n.Cond)
		a, ok2 := fc.boolean(n.Exp1)
		b, ok3 := fc.boolean(n.Exp2)
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		return func(e *Env) bool {
			if c(e) {
				return a(e)
			}
			return b(e)
		}, true
	case *ast.BinaryNode:
		return fc.binaryBool(n)
	}
	return nil, false
}

func (fc *fastCompiler) binaryBool(n *ast.BinaryNode) (boolFn, bool) {
	lt, rt := n.Left.Type(), n.Right.Type()
	switch n.Operator {
	case "&&", "and", "||", "or":
		l, ok1 := fc.boolean(n.Left)
		r, ok2 := fc.boolean(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		if n.Operator == "&&" || n.Operator == "and" {
			return func(e *Env) bool { return l(e) && r(e) }, true
		}
		return func(e *Env) bool { return l(e) || r(e) }, true
	case "in":
		return fc.in(n)
	case "contains", "startsWith", "endsWith":
		l, ok1 := fc.str(n.Left)
		r, ok2 := fc.str(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch n.Operator {
		case "contains":
			return func(e *Env) bool { return strings.Contains(l(e), r(e)) }, true
		case "startsWith":
			return func(e *Env) bool { return strings.HasPrefix(l(e), r(e)) }, true
		default:
			return func(e *Env) bool { return strings.HasSuffix(l(e), r(e)) }, true
		}
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return nil, false
	}
	op := n.Operator
	if op == "==" || op == "!=" {
		if fn, ok := contextEquals(n.Left, n.Right, op == "=="); ok {
			return fn, true
		}
		if fn, ok := contextEquals(n.Right, n.Left, op == "=="); ok {
			return fn, true
		}
	}
	switch {
	case isNum(lt) && isNum(rt):
		// A constant on one side is the common shape (customer.x > 30):
		// specialise it to save a closure call.
		l, ok1 := fc.num(n.Left)
		if c, isConst := numConst(n.Right); isConst && ok1 {
			return numCompareConst(op, l, c), true
		}
		r, ok2 := fc.num(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		return ordCompare(op, l, r), true
	case isKind(lt, reflect.String) && isKind(rt, reflect.String):
		l, ok1 := fc.str(n.Left)
		r, ok2 := fc.str(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		if s, isConst := n.Right.(*ast.StringNode); isConst && (op == "==" || op == "!=") {
			c := s.Value
			if op == "==" {
				return func(e *Env) bool { return l(e) == c }, true
			}
			return func(e *Env) bool { return l(e) != c }, true
		}
		return ordCompare(op, l, r), true
	case isKind(lt, reflect.Bool) && isKind(rt, reflect.Bool) && (op == "==" || op == "!="):
		l, ok1 := fc.boolean(n.Left)
		r, ok2 := fc.boolean(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		if op == "==" {
			return func(e *Env) bool { return l(e) == r(e) }, true
		}
		return func(e *Env) bool { return l(e) != r(e) }, true
	case isTime(lt) && isTime(rt):
		l, ok1 := fc.time(n.Left)
		r, ok2 := fc.time(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		return timeCompare(op, l, r), true
	}
	return nil, false
}

func numConst(n ast.Node) (float64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return float64(n.Value), true
	case *ast.FloatNode:
		return n.Value, true
	}
	return 0, false
}

func numCompareConst(op string, l numFn, c float64) boolFn {
	switch op {
	case "==":
		return func(e *Env) bool { return l(e) == c }
	case "!=":
		return func(e *Env) bool { return l(e) != c }
	case "<":
		return func(e *Env) bool { return l(e) < c }
	case "<=":
		return func(e *Env) bool { return l(e) <= c }
	case ">":
		return func(e *Env) bool { return l(e) > c }
	default:
		return func(e *Env) bool { return l(e) >= c }
	}
}

// ordCompare compiles a comparison of two ordered operands (numbers or
// strings).
func ordCompare[T cmp.Ordered](op string, l, r func(*Env) T) boolFn {
	switch op {
	case "==":
		return func(e *Env) bool { return l(e) == r(e) }
	case "!=":
		return func(e *Env) bool { return l(e) != r(e) }
	case "<":
		return func(e *Env) bool { return l(e) < r(e) }
	case "<=":
		return func(e *Env) bool { return l(e) <= r(e) }
	case ">":
		return func(e *Env) bool { return l(e) > r(e) }
	default:
		return func(e *Env) bool { return l(e) >= r(e) }
	}
}

func timeCompare(op string, l, r timeFn) boolFn {
	switch op {
	case "==":
		return func(e *Env) bool { return l(e).Equal(r(e)) }
	case "!=":
		return func(e *Env) bool { return !l(e).Equal(r(e)) }
	case "<":
		return func(e *Env) bool { return l(e).Before(r(e)) }
	case "<=":
		return func(e *Env) bool { return !l(e).After(r(e)) }
	case ">":
		return func(e *Env) bool { return l(e).After(r(e)) }
	default:
		return func(e *Env) bool { return !l(e).Before(r(e)) }
	}
}

// in compiles membership: a string in a list feature, in segments, or in
// an array literal of strings.
func (fc *fastCompiler) in(n *ast.BinaryNode) (boolFn, bool) {
	// "name" in segments: a bit test.
	if id, ok := n.Right.(*ast.IdentifierNode); ok && id.Value == "segments" {
		if s, ok := n.Left.(*ast.StringNode); ok {
			idx, known := fc.segments[s.Value]
			if !known {
				return nil, false
			}
			return func(e *Env) bool { return idx < len(e.inSegment) && e.inSegment[idx] }, true
		}
		l, ok := fc.str(n.Left)
		if !ok {
			return nil, false
		}
		return func(e *Env) bool { return containsString(e.Segments, l(e)) }, true
	}
	if arr, ok := n.Right.(*ast.ArrayNode); ok {
		set := make([]string, 0, len(arr.Nodes))
		for _, el := range arr.Nodes {
			s, ok := el.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			set = append(set, s.Value)
		}
		l, ok := fc.str(n.Left)
		if !ok || !isKind(n.Left.Type(), reflect.String) {
			return nil, false
		}
		return func(e *Env) bool { return containsString(set, l(e)) }, true
	}
	if !isList(n.Right.Type()) || !isKind(n.Left.Type(), reflect.String) {
		return nil, false
	}
	r, ok1 := fc.list(n.Right)
	if s, isConst := n.Left.(*ast.StringNode); isConst && ok1 {
		c := s.Value
		return func(e *Env) bool { return containsString(r(e), c) }, true
	}
	l, ok2 := fc.str(n.Left)
	if !ok1 || !ok2 {
		return nil, false
	}
	return func(e *Env) bool { return containsString(r(e), l(e)) }, true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (fc *fastCompiler) num(n ast.Node) (numFn, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if !fc.score {
			return nil, false
		}
		switch n.Value {
		case "propensity":
			return func(e *Env) float64 { return e.Propensity }, true
		case "value":
			return func(e *Env) float64 { return e.Value }, true
		case "weight":
			return func(e *Env) float64 { return e.Weight }, true
		}
	case *ast.IntegerNode:
		v := float64(n.Value)
		return func(*Env) float64 { return v }, true
	case *ast.FloatNode:
		v := n.Value
		return func(*Env) float64 { return v }, true
	case *ast.MemberNode:
		f, ok := fc.feature(n)
		if !ok || f.Type != featurestore.TypeNumber {
			return nil, false
		}
		i := f.Index
		return func(e *Env) float64 { return e.Customer[i].Num }, true
	case *ast.UnaryNode:
		x, ok := fc.num(n.Node)
		if !ok {
			return nil, false
		}
		switch n.Operator {
		case "-":
			return func(e *Env) float64 { return -x(e) }, true
		case "+":
			return x, true
		}
	case *ast.BinaryNode:
		if !isNum(n.Left.Type()) || !isNum(n.Right.Type()) {
			return nil, false
		}
		l, ok1 := fc.num(n.Left)
		r, ok2 := fc.num(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch n.Operator {
		case "+":
			return func(e *Env) float64 { return l(e) + r(e) }, true
		case "-":
			return func(e *Env) float64 { return l(e) - r(e) }, true
		case "*":
			return func(e *Env) float64 { return l(e) * r(e) }, true
		case "/":
			return func(e *Env) float64 { return l(e) / r(e) }, true
		case "**", "^":
			return func(e *Env) float64 { return math.Pow(l(e), r(e)) }, true
		}
	case *ast.ConditionalNode:
		c, ok1 := fc.boolean(n.Cond)
		a, ok2 := fc.num(n.Exp1)
		b, ok3 := fc.num(n.Exp2)
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		return func(e *Env) float64 {
			if c(e) {
				return a(e)
			}
			return b(e)
		}, true
	case *ast.BuiltinNode:
		switch n.Name {
		case "min", "max", "abs":
			return fc.numBuiltin(n)
		}
		if n.Name != "len" || len(n.Arguments) != 1 {
			return nil, false
		}
		if l, ok := fc.list(n.Arguments[0]); ok && isList(n.Arguments[0].Type()) {
			return func(e *Env) float64 { return float64(len(l(e))) }, true
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || len(n.Arguments) != 2 {
			return nil, false
		}
		var unit time.Duration
		switch id.Value {
		case "days_since":
			unit = 24 * time.Hour
		case "hours_since":
			unit = time.Hour
		default:
			return nil, false
		}
		t, ok1 := fc.time(n.Arguments[0])
		ref, ok2 := fc.time(n.Arguments[1])
		if !ok1 || !ok2 {
			return nil, false
		}
		return func(e *Env) float64 { return Since(ref(e), t(e), unit) }, true
	}
	return nil, false
}

// numBuiltin compiles min and max of two numbers and abs of one, the
// builtins a learning model's terms use to cap a feature
// (BenchmarkDecideModel: a decision's terms on the VM cost 19
// allocations).
func (fc *fastCompiler) numBuiltin(n *ast.BuiltinNode) (numFn, bool) {
	args := make([]numFn, len(n.Arguments))
	for i, a := range n.Arguments {
		if !isNum(a.Type()) {
			return nil, false
		}
		f, ok := fc.num(a)
		if !ok {
			return nil, false
		}
		args[i] = f
	}
	switch {
	case n.Name == "abs" && len(args) == 1:
		x := args[0]
		return func(e *Env) float64 { return math.Abs(x(e)) }, true
	case n.Name == "min" && len(args) == 2:
		a, b := args[0], args[1]
		return func(e *Env) float64 {
			x, y := a(e), b(e)
			if y < x {
				return y
			}
			return x
		}, true
	case n.Name == "max" && len(args) == 2:
		a, b := args[0], args[1]
		return func(e *Env) float64 {
			x, y := a(e), b(e)
			if y > x {
				return y
			}
			return x
		}, true
	}
	return nil, false
}

func (fc *fastCompiler) str(n ast.Node) (strFn, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		v := n.Value
		return func(*Env) string { return v }, true
	case *ast.IdentifierNode:
		switch n.Value {
		case "channel":
			return func(e *Env) string { return e.Channel }, true
		case "placement":
			return func(e *Env) string { return e.Placement }, true
		}
	case *ast.MemberNode:
		f, ok := fc.feature(n)
		if !ok || f.Type != featurestore.TypeString {
			return nil, false
		}
		i := f.Index
		return func(e *Env) string { return e.Customer[i].Str }, true
	}
	return nil, false
}

func (fc *fastCompiler) time(n ast.Node) (timeFn, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if n.Value == "now" {
			return func(e *Env) time.Time { return e.Now }, true
		}
	case *ast.MemberNode:
		f, ok := fc.feature(n)
		if !ok || f.Type != featurestore.TypeTime {
			return nil, false
		}
		i := f.Index
		return func(e *Env) time.Time { return e.Customer[i].AsTime() }, true
	}
	return nil, false
}

func (fc *fastCompiler) list(n ast.Node) (listFn, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if n.Value == "segments" {
			return func(e *Env) []string { return e.Segments }, true
		}
	case *ast.MemberNode:
		f, ok := fc.feature(n)
		if !ok || f.Type != featurestore.TypeList {
			return nil, false
		}
		i := f.Index
		return func(e *Env) []string { return e.Customer[i].List }, true
	}
	return nil, false
}

// contextEquals compiles `context.key == constant` (or !=). The context's
// values are only typed at run time, but equality never fails in expr: a
// value of another type, or a missing key, is simply not equal. Numbers
// compare by value, as expr's runtime.Equal does.
func contextEquals(member, constant ast.Node, eq bool) (boolFn, bool) {
	m, ok := member.(*ast.MemberNode)
	if !ok || m.Method {
		return nil, false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "context" {
		return nil, false
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return nil, false
	}
	key := p.Value
	var match func(any) bool
	switch c := constant.(type) {
	case *ast.StringNode:
		v := c.Value
		match = func(x any) bool { s, ok := x.(string); return ok && s == v }
	case *ast.BoolNode:
		v := c.Value
		match = func(x any) bool { b, ok := x.(bool); return ok && b == v }
	case *ast.IntegerNode, *ast.FloatNode:
		v, _ := numConst(c)
		match = func(x any) bool { f, ok := anyNumber(x); return ok && f == v }
	default:
		return nil, false
	}
	return func(e *Env) bool { return match(e.Context[key]) == eq }, true
}

func anyNumber(x any) (float64, bool) {
	switch n := x.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}
