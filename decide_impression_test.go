package nextbest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkDecideServed decides as nextbest serve does (the embedded
// store behind the cache, outcome statistics recorded) over the
// generated catalog of 100 offers and 20 segments for 10,000 cached
// customers, per channel: web reads only, email also records the
// impressions of the offers it chose (decision_is_impression) before
// returning.
func BenchmarkDecideServed(b *testing.B) {
	const customers = 10_000
	cat, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{}))
	if err != nil {
		b.Fatal(err)
	}
	st, err := embedded.Open(embedded.Options{Dir: b.TempDir(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := cache.New(st, cache.Options{MaxCost: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s, now := cat.Schema, catalogtest.Epoch
	p := catalogtest.Population{}
	var muts []featurestore.Mutation
	for i := range customers {
		cust := p.Customer(i)
		attrs := map[string]featurestore.Value{}
		for name, v := range cust.Attrs {
			if f, ok := s.Lookup(name); ok && f.From == nil && f.Type == v.Kind {
				attrs[name] = v
			}
		}
		muts = append(muts, featurestore.AttrsMutation(cust.ID, attrs))
		muts = append(muts, featurestore.EventMutations(s, cust.Events, now)...)
		if len(muts) >= 2000 || i == customers-1 {
			if _, err := c.Mutate(ctx, muts); err != nil {
				b.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	var ptr atomic.Pointer[rules.Catalog]
	ptr.Store(cat)
	svc, err := New(Options{Catalog: &ptr, Store: c, Cache: c, Stats: outcomes.New(st, outcomes.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, customers)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
	}
	for _, channel := range []string{"web", "email"} {
		b.Run(channel, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			req := Request{Channel: channel, Limit: 3}
			var d Decision
			b.ReportAllocs()
			for b.Loop() {
				req.CustomerID = ids[rng.IntN(customers)]
				d.Reset()
				if err := svc.Decide(ctx, &req, &d); err != nil {
					b.Fatal(err)
				}
				if d.Degraded != NotDegraded {
					b.Fatalf("degraded: %v", d.Degraded)
				}
			}
		})
	}
}

// recordingStats keeps every delta it is given.
type recordingStats struct {
	mu     sync.Mutex
	deltas []featurestore.StatDelta
}

func (r *recordingStats) Add(deltas ...featurestore.StatDelta) {
	r.mu.Lock()
	r.deltas = append(r.deltas, deltas...)
	r.mu.Unlock()
}
func (r *recordingStats) Learned() *featurestore.LearnTable { return nil }

func (r *recordingStats) take() []featurestore.StatDelta {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.deltas
	r.deltas = nil
	return d
}

// TestDecideRecordsImpressions: a decision on a decision_is_impression
// channel, through the cache and the embedded store as nextbest serve
// runs them, leaves its offers in the customer's contact history at once
// (the next decision's caps count them), deduplicated under their
// ImpressionIDs (a client reporting them again, or a replay of the
// decision, counts nothing twice), and credits each impression to the
// cell the decision drew on: its learn key and experiment variants.
func TestDecideRecordsImpressions(t *testing.T) {
	cat, err := rules.LoadFile("examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := cache.New(st, cache.Options{MaxCost: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ptr atomic.Pointer[rules.Catalog]
	ptr.Store(cat)
	stats := &recordingStats{}
	svc, err := New(Options{Catalog: &ptr, Store: c, Cache: c, Stats: stats, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	impressions := func(deltas []featurestore.StatDelta) (learn map[string]string, variants map[string][]string) {
		learn, variants = map[string]string{}, map[string][]string{}
		for _, d := range deltas {
			switch {
			case d.Counts.Impressions != 1:
			case d.Key.Experiment != "":
				variants[d.Key.Offer] = append(variants[d.Key.Offer], d.Key.Experiment+"/"+d.Key.Variant)
			case d.Key.Hour == 0:
				learn[d.Key.Offer] = d.Key.Key
			}
		}
		return learn, variants
	}
	decided := 0
	for i := range 20 {
		id := fmt.Sprintf("customer-%d", i)
		req := Request{CustomerID: id, Channel: "email", Limit: 3}
		var d Decision
		if err := svc.Decide(ctx, &req, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Result.Offers) == 0 {
			continue // a holdout, or nothing eligible
		}
		decided++
		learn, variants := impressions(stats.take())
		rec, err := c.Load(ctx, id)
		if err != nil {
			t.Fatalf("%s: load: %v", id, err)
		}
		for _, o := range d.Result.Offers {
			if !slices.ContainsFunc(rec.Contacts, func(h featurestore.Contact) bool {
				return h.OfferID == o.Offer.ID && h.Channel == "email" && h.Kind == featurestore.Impression
			}) {
				t.Errorf("%s: contacts %v: want the impression of %s", id, rec.Contacts, o.Offer.ID)
			}
			if got, ok := learn[o.Offer.ID]; !ok || got != d.Result.LearnKey {
				t.Errorf("%s: impression of %s learned under %q (%v), want the decision's %q", id, o.Offer.ID, got, ok, d.Result.LearnKey)
			}
			var want []string
			for _, a := range d.Result.Assignments {
				want = append(want, a.Experiment.ID+"/"+a.Variant.Name)
			}
			if got := variants[o.Offer.ID]; !slices.Equal(got, want) {
				t.Errorf("%s: impression of %s measured for %q, want %q", id, o.Offer.ID, got, want)
			}
		}
		if got, want := len(learn), len(d.Result.Offers); got != want {
			t.Errorf("%s: %d impressions credited, want %d", id, got, want)
		}

		// The replay of the decision, and the client's report of what
		// the channel delivered: no impression counts twice.
		again := Decision{}
		req.ID, req.Now = d.ID, testNow
		if err := svc.Decide(ctx, &req, &again); err != nil {
			t.Fatal(err)
		}
		events := []featurestore.Event{{CustomerID: id, Type: "impression", OfferID: d.Result.Offers[0].Offer.ID, Channel: "email", DecisionID: d.ID.String(), Time: testNow}}
		res, err := svc.ApplyEvents(cat, events, testNow, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied != 0 {
			t.Errorf("%s: the client's report of an impression recorded: applied %d, want 0", id, res.Applied)
		}
		if learn, _ := impressions(stats.take()); len(learn) != 0 {
			t.Errorf("%s: replay and report credited impressions again: %v", id, learn)
		}
		after, err := c.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(after.Contacts), len(rec.Contacts); got != want {
			t.Errorf("%s: %d contacts after the replay and the report, want %d", id, got, want)
		}
	}
	if decided < 3 {
		t.Fatalf("%d of 20 customers decided with offers: the test checks too little", decided)
	}
}
