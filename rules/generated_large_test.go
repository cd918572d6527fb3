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
// each of those rules, planned, must answer as on the VM. (Conjuncts and
// segments are held to the VM by TestFastMatchesVMGenerated.)
func TestScreenMatchesVMGenerated(t *testing.T) {
	for _, tc := range []struct {
		offers, segments, customers int
		seed                        uint64
		index                       bool // screen small channels by the index too
	}{
		{100, 20, 40, 5, true},
		{1000, 50, 20, 3, false},
		{5000, 20, 4, 4, false},
	} {
		t.Run(fmt.Sprint(tc.offers), func(t *testing.T) {
			data := catalogtest.Generate(catalogtest.Options{Offers: tc.offers, Segments: tc.segments, Seed: tc.seed})
			fast, err := Compile("generated.yaml", data, Options{MaxOffers: tc.offers})
			if err != nil {
				t.Fatal(err)
			}
			if tc.index {
				for i := range fast.screens {
					fast.screens[i].small = false
				}
			}
			slow := vmEligible(t, fast)
			planned := 0
			for _, o := range fast.Offers {
				if o.Eligible != nil && o.Eligible.plan != nil {
					planned++
				}
			}
			if planned != len(fast.Offers) {
				t.Errorf("%d of %d eligible rules planned, want all: generated rules use only the shapes the specialised evaluator compiles", planned, len(fast.Offers))
			}
			var ef, es Env
			screened := 0
			for i, vec := range (catalogtest.Population{Seed: tc.seed}).Vectors(fast.Schema, tc.customers) {
				for chi, ch := range fast.Channels {
					ef.Reset(fast)
					es.Reset(fast)
					for _, e := range []*Env{&ef, &es} {
						e.Customer, e.Now, e.Channel = vec, catalogtest.Epoch, ch.Name
						e.Placement = catalogtest.Placements[(i+chi)%len(catalogtest.Placements)]
					}
					for j := range fast.Segments {
						if in, _ := fast.Segments[j].Rule.Eval(&ef); in {
							ef.AddSegment(fast.Segments[j])
							es.AddSegment(fast.Segments[j])
						}
					}
					var want []string
					for _, o := range fast.OffersFor(ch) {
						vm, verr := slow[o.Index].Eval(&es)
						got, gerr := o.Eligible.Eval(&ef)
						if got != vm || gerr != nil || verr != nil {
							t.Fatalf("customer %d, %s: offer %s: planned = %v, %v; vm = %v, %v", i, ch.Name, o.ID, got, gerr, vm, verr)
						}
						if vm {
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
				}
			}
			t.Logf("%d conditions; %.1f offers screened per decision", len(fast.conds.fns), float64(screened)/float64(tc.customers*len(fast.Channels)))
		})
	}
}

// vmEligible compiles the eligible rule of every offer of c for expr's VM
// alone, by Offer.Index: the reference of the differential tests, without
// the cost of loading the catalog again.
func vmEligible(t *testing.T, c *Catalog) []*Rule {
	comp := newCompiler(c.Schema)
	comp.noFast = true
	for _, s := range c.Segments {
		comp.segments[s.Name] = s.Index
	}
	rs := make([]*Rule, len(c.Offers))
	for i, o := range c.Offers {
		if o.Eligible == nil {
			continue
		}
		x, e := comp.parse(o.Eligible.Source, comp.ruleConfig())
		if e != nil {
			t.Fatalf("offer %s: %s", o.ID, e.msg)
		}
		p, e := compile(x.tree, comp.ruleConfig())
		if e != nil {
			t.Fatalf("offer %s: %s", o.ID, e.msg)
		}
		rs[i] = &Rule{Source: o.Eligible.Source, program: p}
	}
	return rs
}
