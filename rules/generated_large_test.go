package rules

import (
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

// TestScreenMatchesVMGenerated is the differential test of planned rules
// and the offer index (conditions.go) at the sizes they are for: on
// generated catalogs of 1,000 to 5,000 offers, for every channel and a
// spread of customers, Screen must return exactly the channel's offers
// whose eligible rule expr's VM finds true, in declaration order, and
// every rule and conjunct must answer as on the VM.
func TestScreenMatchesVMGenerated(t *testing.T) {
	for _, tc := range []struct {
		offers, segments, customers int
		seed                        uint64
	}{
		{1000, 50, 40, 3},
		{5000, 20, 10, 4},
	} {
		t.Run(fmt.Sprint(tc.offers), func(t *testing.T) {
			data := catalogtest.Generate(catalogtest.Options{Offers: tc.offers, Segments: tc.segments, Seed: tc.seed})
			fast, err := Compile("generated.yaml", data, Options{MaxOffers: tc.offers})
			if err != nil {
				t.Fatal(err)
			}
			opts, err := Options{MaxOffers: tc.offers}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			l := &loader{file: "generated.yaml", noFast: true, opts: opts}
			slow := l.load(data)
			if len(l.errs) > 0 {
				t.Fatal(l.errs)
			}
			planned := 0
			for _, o := range fast.Offers {
				if o.Eligible != nil && o.Eligible.plan != nil {
					planned++
				}
			}
			if planned != len(fast.Offers) {
				t.Errorf("%d of %d eligible rules planned, want all: generated rules use only the shapes the specialised evaluator compiles", planned, len(fast.Offers))
			}
			rulesFast, rulesSlow := generatedRules(fast), generatedRules(slow)
			var ef, es Env
			screened := 0
			for i, vec := range (catalogtest.Population{Seed: tc.seed}).Vectors(fast.Schema, tc.customers) {
				for chi, ch := range fast.Channels {
					ef.Reset(fast)
					es.Reset(slow)
					for _, e := range []*Env{&ef, &es} {
						e.Customer, e.Now, e.Channel = vec, catalogtest.Epoch, ch.Name
						e.Placement = catalogtest.Placements[(i+chi)%len(catalogtest.Placements)]
					}
					for j := range fast.Segments {
						if in, _ := fast.Segments[j].Rule.Eval(&ef); in {
							ef.AddSegment(fast.Segments[j])
							es.AddSegment(slow.Segments[j])
						}
					}
					var want []string
					for _, o := range slow.OffersFor(slow.Channels[chi]) {
						if ok, err := o.Eligible.Eval(&es); ok || err != nil {
							want = append(want, o.ID)
						}
					}
					var got []string
					for _, o := range fast.Screen(ch, &ef) {
						got = append(got, o.ID)
					}
					screened += len(got)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("customer %d, %s: Screen = %v\nwant the offers eligible on the VM: %v", i, ch.Name, got, want)
					}
					for j, r := range rulesFast {
						got, gerr := r.Eval(&ef)
						want, werr := rulesSlow[j].Eval(&es)
						if got != want || gerr != nil || werr != nil {
							t.Fatalf("customer %d: rule %q: planned = %v, %v; vm = %v, %v", i, r.Source, got, gerr, want, werr)
						}
					}
				}
			}
			t.Logf("%d conditions; %.1f offers screened per decision", len(fast.conds.fns), float64(screened)/float64(tc.customers*len(fast.Channels)))
		})
	}
}
