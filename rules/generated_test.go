package rules

import (
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

// TestFastMatchesVMGenerated extends the differential test to generated
// catalogs and populations: the workload of the benchmarks and of bench/
// must give the same answers on the specialised evaluator as on expr's VM.
func TestFastMatchesVMGenerated(t *testing.T) {
	for _, seed := range []uint64{0, 1, 2} {
		data := catalogtest.Generate(catalogtest.Options{Seed: seed})
		fast, err := Load("generated.yaml", data)
		if err != nil {
			t.Fatal(err)
		}
		l := &loader{file: "generated.yaml", noFast: true}
		slow := l.load(data)
		if len(l.errs) > 0 {
			t.Fatal(l.errs)
		}
		rulesFast, rulesSlow := generatedRules(fast), generatedRules(slow)
		onFast := 0
		for _, r := range rulesFast {
			if r.Fast() {
				onFast++
			}
		}
		if onFast != len(rulesFast) {
			t.Errorf("seed %d: %d of %d rules on the fast path, want all: generated rules use only the shapes it compiles", seed, onFast, len(rulesFast))
		}
		p := catalogtest.Population{Seed: seed}
		var ef, es Env
		for i, vec := range p.Vectors(fast.Schema, 500) {
			ef.Reset(fast)
			es.Reset(slow)
			for _, e := range []*Env{&ef, &es} {
				e.Customer, e.Now = vec, catalogtest.Epoch
				e.Channel = catalogtest.Channels[i%len(catalogtest.Channels)]
				e.Placement = catalogtest.Placements[i%len(catalogtest.Placements)]
			}
			for j := range fast.Segments {
				if in, _ := fast.Segments[j].Rule.Eval(&ef); in {
					ef.AddSegment(fast.Segments[j])
					es.AddSegment(slow.Segments[j])
				}
			}
			for j, r := range rulesFast {
				got, gerr := r.Eval(&ef)
				want, werr := rulesSlow[j].Eval(&es)
				if got != want || gerr != nil || werr != nil {
					t.Fatalf("seed %d, customer %d: rule %q: fast = %v, %v; vm = %v, %v", seed, i, r.Source, got, gerr, want, werr)
				}
			}
		}
	}
}

// generatedRules lists every rule of c and the conjuncts explanations use.
func generatedRules(c *Catalog) []*Rule {
	var rs []*Rule
	add := func(r *Rule) {
		if r != nil {
			rs = append(rs, r)
			rs = append(rs, r.conjuncts...)
		}
	}
	for _, s := range c.Segments {
		add(s.Rule)
	}
	for _, o := range c.Offers {
		add(o.Eligible)
	}
	return rs
}
