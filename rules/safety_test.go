package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

func safetySchema(t testing.TB) *featurestore.Schema {
	t.Helper()
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "lifetime_value", Type: featurestore.TypeNumber, Default: featurestore.Number(0)},
		{Name: "tier", Type: featurestore.TypeString, Default: featurestore.String("")},
		{Name: "interests", Type: featurestore.TypeList, Default: featurestore.List(nil)},
		{Name: "signup_at", Type: featurestore.TypeTime, Default: featurestore.Time(time.Time{})},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSafety pins which expressions the loader accepts and where it
// points at those it rejects. The accepted ones are the shapes a catalog
// needs; each rejected one can run away on a hostile catalog or request.
func TestSafety(t *testing.T) {
	for _, tt := range safetyTests {
		c := newCompiler(safetySchema(t))
		c.segments["vip"] = 0
		var err *exprError
		if tt.score {
			_, err = c.compileScore(tt.src)
		} else {
			_, err = c.compileRule(tt.src)
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: rejected at %d:%d: %s", tt.src, err.line, err.column, err.msg)
		case tt.want == "":
		case err == nil:
			t.Errorf("%s: accepted, want an error containing %q", tt.src, tt.want)
		case !strings.Contains(err.msg, tt.want) || err.line != tt.line || tt.column != 0 && err.column != tt.column:
			t.Errorf("%s:\ngot  %d:%d: %s\nwant %d:%d: ...%s...", tt.src, err.line, err.column, err.msg, tt.line, tt.column, tt.want)
		}
	}
}

var safetyTests = []struct {
	src          string
	score        bool   // an arbitration expression rather than a rule
	want         string // a substring of the error; empty: accepted
	line, column int
}{
	// Accepted: one pass over request data, loops over literals.
	{src: `customer.tier == "gold" && "shoes" in customer.interests`},
	{src: `any(context.items, #.category == "shoes" && #.price > 100)`},
	{src: `any(customer.interests, # == context.category)`},
	{src: `any(["shoes", "bags"], # in customer.interests)`},
	{src: `any(context.orders, any(#.lines, #.sku == "x"))`},
	{src: `count(context.items, #.price > 10) >= 2 && sum(context.items, #.price) > 100`},
	{src: `let ship = float(context.shipping); any(context.items, #.price + ship > 100)`},
	{src: `reduce(context.items, float(#acc) + float(#.qty), 0) > 3`},
	{src: `context.page in 1..100 || context.page matches "^/sale/"`},
	{src: `len(filter(map(context.items, #.sku), # startsWith "A")) > 0`},
	{src: `all(1..50, all(1..50, # > 0))`},
	{src: `"vip" in segments || len(segments) > 2`},
	{src: `days_since(customer.signup_at) < 30 && now.Hour() < 12`},
	{src: `upper(context.q) contains "SALE" && join(context.tags, ",") contains "x"`},
	{src: `string(context.q) != "" && toJSON(["a", 1]) != "" && indexOf(context.q, "x") > 0`},
	{src: `propensity * value * (context.boost ?? 1)`, score: true},
	{src: `(((((((((((((((((((((((((((((((true)))))))))))))))))))))))))))))))`},

	// Size.
	{src: strings.Repeat("(", 101) + "true" + strings.Repeat(")", 101), want: "nested more than 100 deep", line: 1, column: 101},
	{src: strings.Repeat("!", 200) + "true", want: "nested more than 100 deep", line: 1, column: 101},
	{src: strings.Repeat("(-", 60) + "1" + strings.Repeat(")", 60) + " > 0", want: "nested more than 100 deep", line: 1, column: 101},
	// Ranges.
	{src: `sum(1..1000000000) > 0`, want: "range of 1000000000 numbers (at most 10000)", line: 1, column: 5},
	{src: `len(1..context.n) > 0`, want: "a range needs integer literals as bounds", line: 1, column: 5},
	{src: `all(1..1000, all(1..1000, # > 0))`, want: "too much looping: 1002000 turns", line: 1, column: 18},
	{src: "let xs = 1..1000;\nall(xs, all(xs, all(xs, # > 0)))", want: "too much looping", line: 2, column: 9},
	// Builtins.
	{src: `repeat("x", 1000000) != ""`, want: "repeat is not allowed", line: 1, column: 1},
	{src: `len(reduce(1..30, #acc + #acc, "x")) > 0`, want: "reduce must produce a number or a bool", line: 1, column: 5},
	{src: `reduce(context.items, #acc + #.qty, 0) > 3`, want: "like float(#acc) + float(#.qty)", line: 1, column: 1},
	{src: `context.q matches context.pattern`, want: "matches needs a string literal", line: 1, column: 19},
	{src: `replace(context.q, "a", context.r) != ""`, want: "replace of request data needs a string literal as the replacement", line: 1, column: 25},
	{src: `replace(replace(replace(context.q, "", "xxxxxxxxxx"), "", "xxxxxxxxxx"), "", "xxxxxxxxxx") != ""`, want: "too costly", line: 1, column: 9},
	{src: `len(toJSON(context)) > 0`, want: "toJSON of request data is not allowed", line: 1, column: 5},
	{src: `context.q contains customer.tier`, want: "contains searches request data for request data", line: 1, column: 1},
	{src: `indexOf(context.q, customer.tier) > 0`, want: "indexOf searches request data", line: 1, column: 1},
	{src: `trim(context.q, context.cut) != ""`, want: "trim searches request data", line: 1, column: 1},
	{src: `$env.context.q contains $env["customer"].tier`, want: "contains searches request data for request data", line: 1, column: 1},
	{src: `(channel + placement == "webhome" && len(channel) < 10 ? 2 : 1) * propensity * weight * value`, score: true},
	// Quadratic: request data against request data.
	{src: `any(context.items, # in context.blocked)`, want: "`context.blocked` is read in a loop over `context.items`", line: 1, column: 25},
	{src: `all(context.a, all(context.b, true))`, want: "loop over `context.b` inside a loop over `context.a`", line: 1, column: 20},
	{src: `any(customer.interests, any(context.tags, # == "x"))`, want: "loop over `context.tags` inside a loop over `customer.interests`", line: 1, column: 29},
	{src: `any(context.lists, let x = #; any(x, any(x, true)))`, want: "loop over `x` inside a loop over `x`", line: 1, column: 42},
	{src: `any(context.items, context.a == context.b)`, want: "`context.a` is read in a loop over `context.items`", line: 1, column: 20},
	{src: `len(join(map(context.items, context.big))) > 0`, want: "map yields `context.big` for each element", line: 1, column: 29},
	{src: `any(context.items, #.price + context.shipping > 100)`, want: "`context.shipping` is read in a loop", line: 1, column: 30},
	{src: `len(groupBy(context.items, context.key)) > 0`, want: "`context.key` is read in a loop", line: 1, column: 28},
	{src: `any(split(context.s, ","), # in split(context.s, ","))`, want: "`context.s` is read in a loop over `split(context.s, \",\")`", line: 1, column: 39},
	{src: `sum(context.items, sum(context.items, 1)) * propensity`, score: true, want: "loop over `context.items` inside a loop over `context.items`", line: 1, column: 24},
	// Linear but with a constant the catalog must not be able to raise.
	{src: "let s = context.s;" + strings.Repeat(" s + s + s + s + s + s + s + s +", 5) + ` "" != ""`, want: "too costly", line: 1},
	{src: `any(context.items, any(1..200, # > 0))`, want: "too costly", line: 1, column: 24},
}

// hostileEnv is a request of n-element lists and n-byte strings, for
// schema safetySchema.
func hostileEnv(t testing.TB, c *compiler, n int) *Env {
	t.Helper()
	items := make([]any, n)
	tags := make([]any, n)
	for i := range items {
		items[i] = map[string]any{"price": float64(i), "category": "c", "sku": "s", "lines": []any{map[string]any{"sku": "x"}}}
		tags[i] = "t"
	}
	big := strings.Repeat("a", n)
	interests := make([]string, n)
	for i := range interests {
		interests[i] = big[:i%100]
	}
	env := &Env{}
	env.Reset(nil)
	env.schema = c.fast.schema
	env.Customer = featurestore.Vector{featurestore.Number(1), featurestore.String(big), featurestore.List(interests), featurestore.Time(time.Time{})}
	env.Context = map[string]any{"items": items, "orders": items, "tags": tags, "category": big, "q": big, "s": big, "shipping": 1.0, "page": 5}
	return env
}

// TestSafetyBoundsRequests evaluates expressions the checker accepts, each
// the costliest of its shape, against a hostile context: long lists, long
// strings. Their cost must stay linear in the request; a quadratic one
// would take minutes here.
func TestSafetyBoundsRequests(t *testing.T) {
	const n = 20_000
	for _, src := range []string{
		`any(context.items, #.category == "shoes" && #.price < 0)`,
		`any(customer.interests, # == context.category)`,
		`any(context.orders, any(#.lines, #.sku == "y"))`,
		`let ship = float(context.shipping); any(context.items, #.price + ship < 0)`,
		`len(filter(map(context.items, #.sku), # startsWith "A")) > 0`,
		`upper(context.q) contains "SALE" && join(context.tags, ",") contains "x"`,
		`any(context.items, any(1..10, # < 0))`,
		`all(1..50, all(1..50, # < 0))`,
	} {
		c := newCompiler(safetySchema(t))
		r, err := c.compileRule(src)
		if err != nil {
			t.Fatalf("%s: %s", src, err.msg)
		}
		env := hostileEnv(t, c, n)
		start := time.Now()
		if _, err := r.Eval(env); err != nil {
			t.Errorf("%s: %v", src, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v on a request of %d elements", src, d, n)
		}
	}
}

// FuzzSafety compiles arbitrary expressions: the checker must not panic,
// and an expression it accepts must evaluate against a hostile request
// in time linear in it. Seeds are the cases of TestSafety.
func FuzzSafety(f *testing.F) {
	for _, tt := range safetyTests {
		f.Add(tt.src)
	}
	const n = 10_000
	c := newCompiler(safetySchema(f))
	hostile := hostileEnv(f, c, n)
	f.Fuzz(func(t *testing.T, src string) {
		r, err := c.compileRule(src)
		if err != nil {
			return
		}
		env := *hostile
		start := time.Now()
		_, _ = r.Eval(&env) // a runtime error makes the rule false
		// Linear is some milliseconds here; quadratic, seconds.
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%s: took %v on a request of %d elements", src, d, n)
		}
	})
}
