package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

// withExperiments adds n experiments to a generated catalog.
func withExperiments(n int) []byte {
	b := catalogtest.Generate(catalogtest.Options{Offers: 5, Segments: 1})
	b = append(b, "experiments:\n"...)
	for i := range n {
		b = fmt.Appendf(b, "  - {id: x%d, variants: [{name: a, weight: 1}, {name: b, weight: 1}]}\n", i)
	}
	return b
}

// TestBudget pins the whole-catalog limits: each over-budget catalog is
// refused with the limit, by how much it is over and the flag that raises
// it, and raising the limit accepts it.
func TestBudget(t *testing.T) {
	retail, err := os.ReadFile("../examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  []byte
		opts Options
		want string // the message of the one error; empty: accepted
	}{
		{"1,500 offers", catalogtest.Generate(catalogtest.Options{Offers: 1500}), Options{},
			"offers: catalog has 1500 offers, 500 over the limit of 1000 (raise with --max-offers)"},
		{"1,500 segments", catalogtest.Generate(catalogtest.Options{Segments: 1500}), Options{},
			"segments: catalog has 1500 segments, 1000 over the limit of 500 (raise with --max-segments)"},
		{"51 experiments", withExperiments(51), Options{},
			"experiments: catalog has 51 experiments, 1 over the limit of 50 (raise with --max-experiments)"},
		{"50 experiments", withExperiments(50), Options{}, ""},
		{"11 offers, limit 10", catalogtest.Generate(catalogtest.Options{Offers: 11}), Options{MaxOffers: 10},
			"catalog has 11 offers, 1 over the limit of 10 (raise with --max-offers)"},
		{"11 offers, limit raised to 11", catalogtest.Generate(catalogtest.Options{Offers: 11}), Options{MaxOffers: 11}, ""},
		{"slow rules", catalogtest.Slow(9, 0), Options{},
			`total expression cost 225018 steps, 25018 over the budget of 200000 (raise with --max-expr-cost); costliest: offer "o-0" eligible (line 7) 25002, offer "o-1" eligible (line 11) 25002, offer "o-2" eligible (line 15) 25002`},
		{"slow segments", catalogtest.Slow(0, 9), Options{},
			`total expression cost 225018 steps, 25018 over the budget of 200000 (raise with --max-expr-cost); costliest: segment "s0" (line 5) 25002`},
		{"slow rules, budget raised", catalogtest.Slow(9, 0), Options{MaxExprCost: 225018}, ""},
		{"arbitration counts once per offer", append(catalogtest.Generate(catalogtest.Options{Offers: 100}), "arbitration: 'propensity * value * sum(1..1000)'\n"...), Options{},
			"costliest: arbitration (line "},
		{"content", retail, Options{MaxContentBytes: 1000}, "content: content is "},
		{"retail", retail, Options{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile("catalog.yaml", tt.src, tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.ExprCost() > DefaultMaxExprCost && tt.opts.MaxExprCost == 0 {
					t.Errorf("cost %d over the default budget, yet accepted", c.ExprCost())
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one error containing %q", err, tt.want)
			}
			if got := errs[0].Error(); !strings.Contains(got, tt.want) {
				t.Errorf("got  %s\nwant ...%s...", got, tt.want)
			}
		})
	}
}

// TestBudgetOptions checks that a negative limit is an error, not a
// catalog problem.
func TestBudgetOptions(t *testing.T) {
	_, err := Compile("catalog.yaml", catalogtest.Generate(catalogtest.Options{Offers: 1}), Options{MaxOffers: -1, MaxExprCost: -2})
	var errs Errors
	if err == nil || errors.As(err, &errs) {
		t.Fatalf("got %v, want an options error", err)
	}
	for _, want := range []string{"MaxOffers is -1", "MaxExprCost is -2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestKnownCatalogsWithinBudget checks that the catalogs we ship and test
// with are well inside the default budget: a quarter of each limit.
func TestKnownCatalogsWithinBudget(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../examples/retail/catalog.yaml")
	for _, f := range files {
		c, err := LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.ExprCost() > DefaultMaxExprCost/4 || len(c.Offers) > DefaultMaxOffers/4 || len(c.Segments) > DefaultMaxSegments/4 {
			t.Errorf("%s: cost %d, %d offers, %d segments: too close to the default budget", f, c.ExprCost(), len(c.Offers), len(c.Segments))
		}
	}
}

// TestExprCost pins the cost model: a node a step, loops over catalog
// data once per turn, PassSteps a pass over request data.
func TestExprCost(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want int
	}{
		{`customer.lifetime_value > 1`, 5}, // >, the member, customer, its key, 1
		{`"vip" in segments`, 3},
		// any and the range, 100 turns of each, the body's three nodes per turn.
		{`any(1..100, # < 0)`, 2 + 100 + 100 + 3*100},
		// any and context.items (three nodes), then a pass for the loop and
		// one per node of the body (>, the member, #, its key, 100).
		{`any(context.items, #.price > 100)`, 4 + 6*PassSteps},
	} {
		c := newCompiler(safetySchema(t))
		c.segments["vip"] = 0
		r, err := c.compileRule(tt.src)
		if err != nil {
			t.Fatalf("%s: %s", tt.src, err.msg)
		}
		if r.cost != tt.want {
			t.Errorf("%s: cost %d, want %d", tt.src, r.cost, tt.want)
		}
	}
}
