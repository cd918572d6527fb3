package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	exprcompiler "github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/nextbest/nextbest/featurestore"
)

// MaxExprNodes bounds the size of one expression, so a hostile or runaway
// catalog is rejected when it is loaded.
const MaxExprNodes = 2000

// Env is the per-request input of every rule: the customer's features, the
// request and the segments the customer is in. A decision fills one Env
// and evaluates every rule against it; an Env is not safe for concurrent
// use and is meant to be pooled. It remembers, for the decision, the
// answer of each condition of the offers' rules (conditions.go): set its
// fields after Reset and before the first evaluation; AddSegment forgets
// the answers, which may read the segments.
type Env struct {
	Customer  featurestore.Vector
	Context   map[string]any
	Channel   string
	Placement string
	Now       time.Time
	Segments  []string // segments the customer is in, filled as they are evaluated
	// The offer being scored, for arbitration expressions.
	Propensity, Value, Weight float64

	schema    *featurestore.Schema
	inSegment []bool // by Segment.Index
	vmEnv     map[string]any
	customer  map[string]any
	vm        vm.VM
	built     bool

	// The catalog's conditions and what this decision found of each
	// (conditions.go); condsUsed when any is known.
	conds     *conditions
	condState []uint8
	condsUsed bool
	// Screen's scratch: a bit per offer of the channel, and its result.
	seen      []uint64
	screened  []*Offer
	positions []int32
	lits      []uint8 // answerAll's answers by literal
}

// Reset prepares e for a new request against catalog c, keeping its storage.
// A nil c releases every reference e holds to the last request.
func (e *Env) Reset(c *Catalog) {
	e.Customer = nil
	e.Context = nil
	e.Channel, e.Placement = "", ""
	e.Now = time.Time{}
	e.Segments = e.Segments[:0]
	e.Propensity, e.Value, e.Weight = 0, 0, 0
	e.schema = nil
	e.inSegment = e.inSegment[:0]
	if c != nil {
		e.schema = c.Schema
		for range c.Segments {
			e.inSegment = append(e.inSegment, false)
		}
	}
	e.built = false
	e.conds = nil
	e.condState = e.condState[:0]
	e.condsUsed = false
	if c != nil && c.conds != nil {
		e.conds = c.conds
		e.condState = slices.Grow(e.condState, len(c.conds.fns))[:len(c.conds.fns)]
		clear(e.condState)
	}
	clear(e.screened)
	e.screened = e.screened[:0]
	e.positions = e.positions[:0]
	if e.vmEnv != nil {
		clear(e.customer)
		e.vmEnv["context"] = nil
	}
}

// AddSegment records that the customer is in s.
func (e *Env) AddSegment(s *Segment) {
	e.Segments = append(e.Segments, s.Name)
	if s.Index < len(e.inSegment) {
		e.inSegment[s.Index] = true
	}
	if e.condsUsed {
		// A condition may read the segments: what it was is stale.
		clear(e.condState)
		e.condsUsed = false
	}
}

var emptyContext = map[string]any{}

// vmEnvironment returns the environment the expr VM runs against, built at
// most once per request.
func (e *Env) vmEnvironment() map[string]any {
	if e.built {
		e.vmEnv["segments"] = e.Segments // may have grown since
		e.setScoreVars()
		return e.vmEnv
	}
	if e.vmEnv == nil {
		e.vmEnv = make(map[string]any, 6)
		e.customer = make(map[string]any, len(e.Customer))
	}
	clear(e.customer)
	if e.schema != nil {
		for i, f := range e.schema.Features() {
			if i < len(e.Customer) {
				e.customer[f.Name] = e.Customer[i].Interface()
			}
		}
	}
	ctx := e.Context
	if ctx == nil {
		ctx = emptyContext
	}
	e.vmEnv["customer"] = e.customer
	e.vmEnv["context"] = ctx
	e.vmEnv["channel"] = e.Channel
	e.vmEnv["placement"] = e.Placement
	e.vmEnv["now"] = e.Now
	e.vmEnv["segments"] = e.Segments
	e.setScoreVars()
	e.built = true
	return e.vmEnv
}

func (e *Env) setScoreVars() {
	e.vmEnv["propensity"] = e.Propensity
	e.vmEnv["value"] = e.Value
	e.vmEnv["weight"] = e.Weight
}

// Rule is a compiled boolean expression.
type Rule struct {
	Source string // the expression as written
	Line   int    // position of the expression in the catalog file
	Column int

	program *vm.Program // nil when fast is set
	fast    boolFn      // the specialised evaluator; nil when the rule runs on the VM
	// plan is the rule over the catalog's distinct conditions conds, for
	// an offer's eligible rule on the specialised evaluator (conditions.go).
	plan  []lit
	conds *conditions
	// Conjuncts are the top-level && operands of the expression, compiled
	// on their own so an explanation can name the one that failed.
	conjuncts []*Rule
	cost      int // steps of one evaluation (safety.go)
}

// Eval evaluates r against env. A runtime error (say, comparing a context
// value of the wrong type) makes the rule false and is returned so an
// explanation can show it.
func (r *Rule) Eval(env *Env) (bool, error) {
	if r == nil {
		return true, nil
	}
	if r.plan != nil && r.conds == env.conds {
		return env.holds(r.plan), nil
	}
	if r.fast != nil {
		return r.fast(env), nil
	}
	out, err := env.vm.Run(r.program, env.vmEnvironment())
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// Explain evaluates r and, when it is false, returns the source of the
// first top-level conjunct that is false (or the whole expression when it
// has a single conjunct) and the runtime error, if one occurred.
func (r *Rule) Explain(env *Env) (ok bool, failing string, err error) {
	ok, err = r.Eval(env)
	if ok || r == nil {
		return ok, "", err
	}
	for _, c := range r.conjuncts {
		cok, cerr := c.Eval(env)
		if !cok {
			return false, c.Source, cerr
		}
	}
	return false, r.Source, err
}

var (
	sinceFns = []expr.Option{
		expr.Function("days_since", func(p ...any) (any, error) {
			return since(p, 24*time.Hour)
		}, new(func(time.Time, time.Time) float64)),
		expr.Function("hours_since", func(p ...any) (any, error) {
			return since(p, time.Hour)
		}, new(func(time.Time, time.Time) float64)),
	}
)

// since is the body of days_since and hours_since. The current time is the
// request's (now is the last, hidden argument patched in at compile time),
// so rules are deterministic under test. A zero time ("never") is a very
// long time ago, computed in seconds so it does not saturate.
func since(p []any, unit time.Duration) (any, error) {
	if len(p) != 2 {
		return nil, errors.New("want one argument")
	}
	t, _ := p[0].(time.Time)
	now, _ := p[1].(time.Time)
	return Since(now, t, unit), nil
}

// Since returns the time from t to now in units, fractional.
func Since(now, t time.Time, unit time.Duration) float64 {
	secs := float64(now.Unix()-t.Unix()) + float64(now.Nanosecond()-t.Nanosecond())/1e9
	return secs / unit.Seconds()
}

// nowPatcher appends the request time to days_since and hours_since calls,
// so the helpers read the request's clock, not the wall clock.
type nowPatcher struct{}

func (nowPatcher) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || (id.Value != "days_since" && id.Value != "hours_since") || len(call.Arguments) != 1 {
		return
	}
	call.Arguments = append(call.Arguments, &ast.IdentifierNode{Value: "now"})
}

// envType is the typed environment expressions are checked against.
func envType(s *featurestore.Schema) types.Map {
	customer := types.Map{}
	for _, f := range s.Features() {
		customer[f.Name] = typeOf(f.Type)
	}
	return types.Map{
		"customer":  customer,
		"context":   types.Map{types.Extra: types.Any},
		"channel":   types.String,
		"placement": types.String,
		"now":       types.TypeOf(time.Time{}),
		"segments":  types.TypeOf([]string(nil)),
	}
}

func typeOf(t featurestore.Type) types.Type {
	switch t {
	case featurestore.TypeNumber:
		return types.Float64
	case featurestore.TypeString:
		return types.String
	case featurestore.TypeBool:
		return types.Bool
	case featurestore.TypeTime:
		return types.TypeOf(time.Time{})
	case featurestore.TypeList:
		return types.TypeOf([]string(nil))
	}
	return types.Any
}

// exprError is a compile error of one expression, positioned within it.
type exprError struct {
	line, column int // 1-based within the expression
	msg          string
}

func toExprError(err error) exprError {
	var fe *file.Error
	if errors.As(err, &fe) {
		return exprError{line: fe.Line, column: fe.Column + 1, msg: fe.Message}
	}
	return exprError{msg: err.Error()}
}

// compiler holds the options every expression of one catalog compiles with.
type compiler struct {
	env types.Map
	// cfg is the expr configuration of every boolean rule, built once on
	// first use (after the loader has typed broken features as any) and
	// shared: building it per rule cost a 1,000-offer catalog a quarter of
	// its compile time, and every checked tree kept its own copy of the
	// typed environment.
	cfg *conf.Config
	// conds are the distinct conditions of the offers' eligible rules
	// (conditions.go); nil when no rule is planned.
	conds *conditions
	// known segments (name → index) at this point of compilation, for
	// checking and compiling `"name" in segments`.
	segments map[string]int
	// channels are the catalog's, for checking channel literals; nil
	// checks none.
	channels map[string]*Channel
	// placements are the placement literals of the last whole
	// expression compiled, for the loader to check once every offer's
	// placements are known (loader.usePlacements).
	placements []placementLit
	fast       fastCompiler
	// noFast disables the specialised evaluator (for differential tests
	// and benchmarks).
	noFast bool
}

func newCompiler(s *featurestore.Schema) *compiler {
	c := &compiler{env: envType(s), segments: map[string]int{}}
	c.fast = fastCompiler{schema: s, segments: c.segments}
	return c
}

func (c *compiler) options() []expr.Option {
	opts := []expr.Option{
		expr.Env(c.env),
		expr.AsBool(),
		expr.MaxNodes(MaxExprNodes),
		expr.Patch(nowPatcher{}),
	}
	return append(opts, sinceFns...)
}

// config builds the expr configuration opts describe, as expr.Compile does.
func config(opts []expr.Option) *conf.Config {
	cfg := conf.CreateNew()
	for _, op := range opts {
		op(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.Check()
	return cfg
}

// parsed is one expression parsed once and type-checked, with what the
// passes over the tree as written found in it.
type parsed struct {
	tree *parser.Tree // patched and type-checked, not yet optimised
	// unknownSegment is a `"name" in segments` test naming a segment not
	// declared before the expression, reported after expr's own errors.
	unknownSegment *exprError
	// conjuncts are the sources of the top-level && operands, as written.
	conjuncts []string
	// unknownChannel is a comparison of channel with a literal that is
	// not a declared channel, reported with unknownSegment.
	unknownChannel *exprError
	// placements are the literals placement is compared with.
	placements []placementLit
}

// parse takes src through the front of expr's pipeline once: the depth
// check on its tokens (expr's parser would overflow the stack first), one
// parse whose tree, as written, the segment check and the split into
// conjuncts read, then expr's patchers and type checker on that same tree.
// Everything after (the safety check and cost, the specialised evaluator,
// expr's optimiser and compiler) reads the one checked tree: see compile.
func (c *compiler) parse(src string, cfg *conf.Config) (*parsed, *exprError) {
	if e := depthError(src); e != nil {
		return nil, e
	}
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		e := toExprError(err)
		return nil, &e
	}
	p := &parsed{tree: tree, unknownSegment: c.segmentError(src, tree.Node), conjuncts: conjuncts(tree.Node)}
	p.unknownChannel, p.placements = c.literals(src, tree.Node)
	if _, err := new(checker.Checker).PatchAndCheck(tree, cfg); err != nil {
		e := toExprError(err)
		return nil, &e
	}
	return p, nil
}

// compile runs expr's optimiser and compiler on the checked tree, as
// expr.Compile does after its own parse. The optimiser rewrites the tree
// in place, so every other pass over it comes first.
func compile(tree *parser.Tree, cfg *conf.Config) (*vm.Program, *exprError) {
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				err = fe.Bind(tree.Source)
			}
			e := toExprError(err)
			return nil, &e
		}
	}
	p, err := exprcompiler.Compile(tree, cfg)
	if err != nil {
		e := toExprError(err)
		return nil, &e
	}
	return p, nil
}

// ruleConfig returns the shared configuration of boolean rules.
func (c *compiler) ruleConfig() *conf.Config {
	if c.cfg == nil {
		c.cfg = config(c.options())
	}
	return c.cfg
}

// compileRule compiles a boolean expression and its conjuncts. Errors come
// in the order an author fixes them: size and safety, then expr's own,
// then unknown segments.
func (c *compiler) compileRule(src string) (*Rule, *exprError) {
	return c.compileBool(src, false)
}

// compileBool is compileRule; planned also plans the rule over the
// catalog's distinct conditions (conditions.go), as offers' eligible rules
// are.
func (c *compiler) compileBool(src string, planned bool) (*Rule, *exprError) {
	if strings.TrimSpace(src) == "" {
		return nil, &exprError{msg: "empty expression"}
	}
	cfg := c.ruleConfig()
	x, e := c.parse(src, cfg)
	if e != nil {
		return nil, e
	}
	cost, e := c.checkSafety(src, x.tree.Node)
	if e != nil {
		return nil, e
	}
	fast := c.compileFast(x.tree.Node)
	var plan []lit
	var parts []ast.Node // the checked conjuncts, when the rule is fast
	if fast != nil {
		if planned {
			plan = c.plan(x.tree.Node)
		}
		if parts = operands(x.tree.Node, "&&", "and", nil); len(parts) != len(x.conjuncts) {
			parts = nil
		}
	}
	// A rule on the specialised evaluator never runs on the VM, so it
	// needs no program: expr's optimiser and compiler, which only fail on
	// shapes the evaluator does not compile (an integer % 0), are spared.
	var p *vm.Program
	if fast == nil {
		if p, e = compile(x.tree, cfg); e != nil {
			return nil, e
		}
	}
	if x.unknownSegment != nil {
		return nil, x.unknownSegment
	}
	if x.unknownChannel != nil {
		return nil, x.unknownChannel
	}
	c.placements = x.placements
	r := &Rule{Source: src, program: p, fast: fast, cost: cost}
	if plan != nil {
		r.plan, r.conds = plan, c.conds
	}
	if len(x.conjuncts) > 1 {
		for i, part := range x.conjuncts {
			// A conjunct of a fast rule is the checked subtree of the
			// whole, which the evaluator compiles as it does the
			// conjunct on its own.
			if parts != nil {
				if fast := c.compileFast(parts[i]); fast != nil {
					r.conjuncts = append(r.conjuncts, &Rule{Source: part, fast: fast})
					continue
				}
			}
			// Otherwise a conjunct is a program of its own whose runtime
			// errors quote its own source, so it is parsed once from that.
			cx, e := c.parse(part, cfg)
			if e != nil {
				continue // cannot happen for a well-typed whole; explain falls back to the whole
			}
			fast := c.compileFast(cx.tree.Node)
			var cp *vm.Program
			if fast == nil {
				if cp, e = compile(cx.tree, cfg); e != nil {
					continue
				}
			}
			r.conjuncts = append(r.conjuncts, &Rule{Source: part, program: cp, fast: fast})
		}
	}
	return r, nil
}

// compileFast returns the specialised evaluator of the checked tree, or
// nil when it uses a shape the evaluator does not handle.
func (c *compiler) compileFast(tree ast.Node) boolFn {
	if c.noFast {
		return nil
	}
	fn, ok := c.fast.boolean(tree)
	if !ok {
		return nil
	}
	return fn
}

// Fast reports whether r runs on the specialised evaluator rather than
// expr's VM.
func (r *Rule) Fast() bool { return r != nil && r.fast != nil }

// segmentChecker records `"name" in segments` tests naming an unknown
// segment. expr patchers cannot fail, so the finding is read afterwards by
// segmentError.
type segmentChecker struct {
	known   map[string]int
	unknown string
	loc     file.Location
}

func (s *segmentChecker) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "in" {
		return
	}
	id, ok := b.Right.(*ast.IdentifierNode)
	if !ok || id.Value != "segments" {
		return
	}
	str, ok := b.Left.(*ast.StringNode)
	if !ok {
		return
	}
	if _, known := s.known[str.Value]; !known && s.unknown == "" {
		s.unknown = str.Value
		s.loc = b.Left.Location()
	}
}

// segmentError returns the first unknown segment tree, as written, tests
// membership of, or nil.
func (c *compiler) segmentError(src string, tree ast.Node) *exprError {
	sc := &segmentChecker{known: c.segments}
	ast.Walk(&tree, sc)
	if sc.unknown == "" {
		return nil
	}
	line, col := position(src, sc.loc.From)
	return &exprError{line: line, column: col, msg: fmt.Sprintf("unknown segment %q (segments must be declared before they are used)", sc.unknown)}
}

// position converts a rune offset within src to a 1-based line and column.
func position(src string, offset int) (line, col int) {
	line, col = 1, 1
	i := 0
	for _, r := range src {
		if i == offset {
			break
		}
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i++
	}
	return line, col
}

// conjuncts returns the sources of the top-level && (or "and") operands
// of n, a tree as written.
func conjuncts(n ast.Node) []string {
	var parts []string
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
			walk(b.Left)
			walk(b.Right)
			return
		}
		parts = append(parts, n.String())
	}
	walk(n)
	return parts
}
