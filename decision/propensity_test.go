package decision_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// Two offers of equal value whose posteriors are Beta(2, 1) and
// Beta(1, 1): under Thompson sampling with a limit of 1, a is chosen when
// its draw beats b's, with probability ∫ 2x·x dx = 2/3 exactly.
const exactPropensity = `
channels: [web]
offers:
  - {id: a, channels: [web], value: 10, prior: {rate: 0.6666666666666666, strength: 3}, content: {web: {h: a}}}
  - {id: b, channels: [web], value: 10, prior: {rate: 0.5, strength: 2}, content: {web: {h: b}}}
`

// TestSelectionEstimatesExactPropensity checks the Monte Carlo estimate
// against the exact probability: each decision's estimate within five
// binomial standard errors, and the mean over many decisions (whose
// error shrinks with their number) within four of its own.
func TestSelectionEstimatesExactPropensity(t *testing.T) {
	c, err := rules.Load("exact.yaml", []byte(exactPropensity))
	if err != nil {
		t.Fatal(err)
	}
	const k, n = 32, 400
	exact := map[string]float64{"a": 2.0 / 3, "b": 1.0 / 3}
	var e decision.Engine
	sum := map[string]float64{}
	seen := map[string]int{}
	for i := range n {
		var res decision.Result
		req := decision.Request{CustomerID: "c", Channel: "web", Now: time.Unix(0, 0), Seed: uint64(i), PropensitySamples: k}
		if err := e.Decide(c, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Offers) != 1 {
			t.Fatalf("decision %d chose %d offers, want 1", i, len(res.Offers))
		}
		ch := res.Offers[0]
		p := exact[ch.Offer.ID]
		se := math.Sqrt(p * (1 - p) / k)
		if math.Abs(ch.Selection-p) > 5*se {
			t.Errorf("decision %d: offer %s selection %.3f, exact %.3f ± %.3f", i, ch.Offer.ID, ch.Selection, p, se)
		}
		sum[ch.Offer.ID] += ch.Selection
		seen[ch.Offer.ID]++
	}
	for id, p := range exact {
		if seen[id] == 0 {
			t.Fatalf("offer %s never chosen in %d decisions", id, n)
		}
		mean := sum[id] / float64(seen[id])
		se := math.Sqrt(p*(1-p)/k) / math.Sqrt(float64(seen[id]))
		if math.Abs(mean-p) > 4*se {
			t.Errorf("offer %s: mean selection %.4f over %d decisions, exact %.4f ± %.4f", id, mean, seen[id], p, se)
		}
	}
	// The decision's own draws are untouched: the same seed without
	// propensities chooses the same offers.
	for i := range 50 {
		var with, without decision.Result
		req := decision.Request{CustomerID: "c", Channel: "web", Now: time.Unix(0, 0), Seed: uint64(i), PropensitySamples: k}
		if err := e.Decide(c, nil, &req, &with); err != nil {
			t.Fatal(err)
		}
		req.PropensitySamples = 0
		if err := e.Decide(c, nil, &req, &without); err != nil {
			t.Fatal(err)
		}
		if with.Offers[0].Offer != without.Offers[0].Offer || with.Offers[0].Score != without.Offers[0].Score {
			t.Errorf("seed %d: with propensities %s (%.4f), without %s (%.4f)", i, with.Offers[0].Offer.ID, with.Offers[0].Score, without.Offers[0].Offer.ID, without.Offers[0].Score)
		}
		if without.Offers[0].Selection != 0 {
			t.Errorf("seed %d: selection %v without propensities asked, want 0", i, without.Offers[0].Selection)
		}
	}
}

// TestSelectionWithoutExploration: a greedy or static decision chooses
// the same offers on every draw, each with propensity 1; a limit that
// takes every candidate gives each propensity 1 under Thompson sampling
// too.
func TestSelectionWithoutExploration(t *testing.T) {
	tests := []struct {
		name, extra string
		limit       int
	}{
		{"greedy", "learning: {explore: greedy}\n", 1},
		{"static", "arbitration: static\n", 1},
		{"every candidate", "", 2},
	}
	for _, tt := range tests {
		c, err := rules.Load("x.yaml", []byte(exactPropensity+tt.extra))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var e decision.Engine
		var res decision.Result
		req := decision.Request{CustomerID: "c", Channel: "web", Now: time.Unix(0, 0), Seed: 9, Limit: tt.limit, PropensitySamples: 16}
		if err := e.Decide(c, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		for _, ch := range res.Offers {
			if ch.Selection != 1 {
				t.Errorf("%s: offer %s selection %v, want 1", tt.name, ch.Offer.ID, ch.Selection)
			}
		}
	}
}

// TestSelectionRedrawsAsScoring: the re-draws' fast path (no score
// expression: a draw times value and weight from constants prepared
// once) estimates exactly what scoring each re-draw again does, which
// the same catalog with its default score spelled as an expression
// takes.
func TestSelectionRedrawsAsScoring(t *testing.T) {
	src := catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20})
	fast, err := rules.Load("fast.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := rules.Load("slow.yaml", append(slices.Clone(src), "\narbitration: \"propensity * value * weight\"\n"...))
	if err != nil {
		t.Fatal(err)
	}
	if slow.Arbitration.Score == nil {
		t.Fatal("the slow catalog has no score expression")
	}
	vecs := catalogtest.Population{}.Vectors(fast.Schema, 200)
	var e decision.Engine
	estimated := 0
	for i, f := range vecs {
		for _, limit := range []int{1, 3} {
			req := decision.Request{CustomerID: "c", Channel: "web", Limit: limit, Now: catalogtest.Epoch, Seed: uint64(i), PropensitySamples: 32}
			var a, b decision.Result
			if err := e.Decide(fast, f, &req, &a); err != nil {
				t.Fatal(err)
			}
			if err := e.Decide(slow, f, &req, &b); err != nil {
				t.Fatal(err)
			}
			if len(a.Offers) != len(b.Offers) {
				t.Fatalf("customer %d: %d offers, %d with the expression", i, len(a.Offers), len(b.Offers))
			}
			for j := range a.Offers {
				x, y := a.Offers[j], b.Offers[j]
				if x.Offer.ID != y.Offer.ID || x.Selection != y.Selection {
					t.Errorf("customer %d limit %d: offer %d %s selection %v, with the expression %s %v", i, limit, j, x.Offer.ID, x.Selection, y.Offer.ID, y.Selection)
				}
				if x.Selection > 0 && x.Selection < 1 {
					estimated++
				}
			}
		}
	}
	if estimated < 50 {
		t.Errorf("only %d offers with a selection strictly between 0 and 1: the test compares little", estimated)
	}
}
