package catalogtest_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

func TestGenerateLoads(t *testing.T) {
	tests := []struct {
		opts                   catalogtest.Options
		wantOffers, wantSegmts int
	}{
		{catalogtest.Options{}, 100, 20},
		{catalogtest.Options{Seed: 1}, 100, 20},
		{catalogtest.Options{Offers: 5, Segments: 1, Seed: 2}, 5, 1},
		{catalogtest.Options{Offers: 400, Segments: 60, Seed: 3}, 400, 60},
	}
	for _, tt := range tests {
		c, err := rules.Load("generated.yaml", catalogtest.Generate(tt.opts))
		if err != nil {
			t.Fatalf("Generate(%+v) does not load:\n%v", tt.opts, err)
		}
		if got := len(c.Offers); got != tt.wantOffers {
			t.Errorf("Generate(%+v): %d offers, want %d", tt.opts, got, tt.wantOffers)
		}
		if got := len(c.Segments); got != tt.wantSegmts {
			t.Errorf("Generate(%+v): %d segments, want %d", tt.opts, got, tt.wantSegmts)
		}
		if got, want := c.ChannelNames(), catalogtest.Channels; !cmp.Equal(got, want) {
			t.Errorf("Generate(%+v): channels %v, want %v", tt.opts, got, want)
		}
		for _, ch := range c.Channels {
			if c.Fallback(ch) == nil {
				t.Errorf("Generate(%+v): no defaults for %s", tt.opts, ch.Name)
			}
			if tt.wantOffers >= 100 && len(c.OffersFor(ch)) == 0 {
				t.Errorf("Generate(%+v): no offers for %s", tt.opts, ch.Name)
			}
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a := catalogtest.Generate(catalogtest.Options{Seed: 42})
	b := catalogtest.Generate(catalogtest.Options{Seed: 42})
	if !bytes.Equal(a, b) {
		t.Error("two catalogs generated with seed 42 differ")
	}
	if c := catalogtest.Generate(catalogtest.Options{Seed: 43}); bytes.Equal(a, c) {
		t.Error("catalogs generated with seeds 42 and 43 are equal")
	}
}

func TestPopulationDeterministic(t *testing.T) {
	p := catalogtest.Population{Seed: 7}
	for _, i := range []int{0, 1, 999, 123456} {
		a, b := p.Customer(i), p.Customer(i)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("Customer(%d) twice (-first +second):\n%s", i, diff)
		}
		if got, want := a.ID, "c-"+strconv.Itoa(i); got != want {
			t.Errorf("Customer(%d).ID = %q, want %q", i, got, want)
		}
		for j := 1; j < len(a.Events); j++ {
			if a.Events[j].Time.Before(a.Events[j-1].Time) {
				t.Errorf("Customer(%d): events not oldest first", i)
			}
		}
		for _, ev := range a.Events {
			if ev.Time.After(catalogtest.Epoch) || ev.CustomerID != a.ID {
				t.Errorf("Customer(%d): event %+v is in the future or not theirs", i, ev)
			}
		}
	}
	if cmp.Equal(p.Customer(5), catalogtest.Population{Seed: 8}.Customer(5)) {
		t.Error("customer 5 of seeds 7 and 8 are equal")
	}
}

// TestPopulationFitsRetail checks that a Population speaks the retail
// example's schema: every attribute is declared with its type and every
// event passes the schema's checks, as the API would require.
func TestPopulationFitsRetail(t *testing.T) {
	c, err := rules.LoadFile("../../examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := catalogtest.Population{}
	for i := range 200 {
		cust := p.Customer(i)
		for name, v := range cust.Attrs {
			f, ok := c.Schema.Lookup(name)
			if !ok || f.From != nil || f.Type != v.Kind {
				t.Fatalf("customer %d: attribute %s (%s) is not a %s profile feature of the retail catalog", i, name, v, v.Kind)
			}
		}
		for _, ev := range cust.Events {
			if !c.Schema.Affects(ev.Type) {
				t.Errorf("customer %d: event type %q feeds no retail feature", i, ev.Type)
			}
			if err := c.Schema.CheckEvent(&ev); err != nil {
				t.Errorf("customer %d: event %+v: %v", i, ev, err)
			}
		}
	}
}

// TestSpread keeps the workload honest: on a generated catalog, every
// segment must hold some customers of a Population and miss others, and
// most offers must be chosen for someone, or a benchmark would measure
// rules that short-circuit the same way every time.
func TestSpread(t *testing.T) {
	for _, seed := range []uint64{0, 1, 2} {
		c, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Seed: seed}))
		if err != nil {
			t.Fatal(err)
		}
		const n = 2000
		vecs := catalogtest.Population{Seed: seed}.Vectors(c.Schema, n)
		inSegment := map[string]int{}
		chosen := map[string]bool{}
		var eng decision.Engine
		var res decision.Result
		totalEligible := 0
		for i, v := range vecs {
			for _, ch := range c.Channels {
				req := &decision.Request{Channel: ch.Name, Placement: catalogtest.Placements[i%3], Limit: decision.MaxLimit, Now: catalogtest.Epoch}
				if err := eng.Decide(c, v, req, &res); err != nil {
					t.Fatal(err)
				}
				for _, o := range res.Offers {
					chosen[o.Offer.ID] = true
				}
				totalEligible += len(res.Offers)
			}
			for _, s := range res.Segments {
				inSegment[s]++
			}
		}
		for _, s := range c.Segments {
			if k := inSegment[s.Name]; k == 0 || k == n {
				t.Errorf("seed %d: segment %s holds %d of %d customers: `%s`", seed, s.Name, k, n, s.Rule.Source)
			}
		}
		if share := float64(len(chosen)) / float64(len(c.Offers)); share < 0.7 {
			t.Errorf("seed %d: %d of %d offers chosen for anyone, want at least 70%%", seed, len(chosen), len(c.Offers))
		}
		t.Logf("seed %d: %d of %d offers chosen for someone; %.1f eligible offers per decision", seed, len(chosen), len(c.Offers), float64(totalEligible)/float64(n*len(c.Channels)))
		t.Logf("seed %d: segment sizes %v", seed, inSegment)
	}
}

func TestRecordKeepsDeclaredAttrs(t *testing.T) {
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString},
		{Name: "lifetime_value", Type: featurestore.TypeString}, // wrong type: left out
	})
	if err != nil {
		t.Fatal(err)
	}
	cust := catalogtest.Population{}.Customer(3)
	r := cust.Record(s, catalogtest.Epoch)
	if got, want := len(r.Attrs), 1; got != want {
		t.Errorf("Record kept %d attributes (%v), want %d (tier only)", got, r.Attrs, want)
	}
	if got, want := r.Attrs["tier"], cust.Attrs["tier"]; !got.Equal(want) {
		t.Errorf("tier = %v, want %v", got, want)
	}
	m := cust.AttrsJSON()
	if _, ok := m["signup_at"].(string); !ok {
		t.Errorf("AttrsJSON signup_at = %#v, want an RFC 3339 string", m["signup_at"])
	}
}

func TestSlowLoads(t *testing.T) {
	for _, n := range [][2]int{{3, 0}, {0, 3}, {2, 2}} {
		c, err := rules.Load("slow.yaml", catalogtest.Slow(n[0], n[1]))
		if err != nil {
			t.Fatalf("Slow(%d, %d) does not load:\n%v", n[0], n[1], err)
		}
		if got, want := len(c.Offers), max(n[0], 1); got != want {
			t.Errorf("Slow(%d, %d): %d offers, want %d", n[0], n[1], got, want)
		}
		if got := len(c.Segments); got != n[1] {
			t.Errorf("Slow(%d, %d): %d segments, want %d", n[0], n[1], got, n[1])
		}
	}
}
