package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// retailSchema is the schema of the retail example: the example-like
// customer of the memory target (12 features, 3 of them windowed).
func retailSchema(tb testing.TB) *featurestore.Schema {
	tb.Helper()
	cat, err := rules.LoadFile("../../examples/retail/catalog.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return cat.Schema
}

// nullBackend keeps nothing: every record the cache holds is the only
// copy in the process, so the heap measures the cache alone.
type nullBackend struct{ locks *featurestore.Locks }

func (b nullBackend) Locks() *featurestore.Locks { return b.locks }

func (nullBackend) Load(context.Context, string) (*featurestore.Record, error) {
	return nil, featurestore.ErrNotFound
}

func (nullBackend) Apply(_ context.Context, muts []featurestore.Mutation, groups []featurestore.Group, _ []*featurestore.Record) ([]*featurestore.Record, func() error, error) {
	out := make([]*featurestore.Record, len(muts))
	for _, g := range groups {
		r := &featurestore.Record{}
		for _, i := range g.Muts {
			muts[i].Apply(r)
			out[i] = r
		}
	}
	return out, nil, nil
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fillPopulation caches customers [from, to) of the population with their
// attributes and event history, as PUT /v1/customers and POST /v1/events
// would leave them, and reads each once as a decision does.
func fillPopulation(tb testing.TB, c *cache.Cache, s *featurestore.Schema, from, to int) {
	tb.Helper()
	p := catalogtest.Population{}
	now := catalogtest.Epoch
	ctx := context.Background()
	var muts []featurestore.Mutation
	flush := func() {
		if _, err := c.Mutate(ctx, muts); err != nil {
			tb.Fatal(err)
		}
		muts = muts[:0]
	}
	for i := from; i < to; i++ {
		cust := p.Customer(i)
		attrs := map[string]featurestore.Value{}
		for name, v := range cust.Attrs {
			if f, ok := s.Lookup(name); ok && f.From == nil && f.Type == v.Kind {
				attrs[name] = v
			}
		}
		muts = append(muts, featurestore.AttrsMutation(cust.ID, attrs))
		muts = append(muts, featurestore.EventMutations(s, cust.Events, now)...)
		if len(muts) >= 1000 {
			flush()
		}
	}
	flush()
	for i := from; i < to; i++ {
		decideOnce(tb, c, s, fmt.Sprintf("c-%d", i), now)
	}
}

// BenchmarkResident measures the live heap a cached customer of the
// retail example costs, as the slope between 20k and 100k customers
// cached (fixed costs such as ristretto's sketch cancel out), after each
// was read once for a decision.
func BenchmarkResident(b *testing.B) {
	s := retailSchema(b)
	c, err := cache.New(nullBackend{featurestore.NewLocks()}, cache.Options{MaxCost: 4 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const lo, hi = 20_000, 100_000
	fillPopulation(b, c, s, 0, lo)
	before := heapAfterGC()
	fillPopulation(b, c, s, lo, hi)
	after := heapAfterGC()
	if got := c.Metrics().Entries; got != hi {
		b.Fatalf("%d customers cached, want %d", got, hi)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(after-before)/(hi-lo), "B/customer")
	b.ReportMetric(float64(c.Metrics().CostAdded)/hi, "cost/customer")
	runtime.KeepAlive(c)
}

// BenchmarkDurableEvents applies batches of 100 events, each of a random
// customer of a population of 20k, 100k or 1M already stored, through the
// cache over the embedded store with every batch fsynced before the next
// (one POST /v1/events at a time): events/s is the durable write rate of
// one writer.
func BenchmarkDurableEvents(b *testing.B) {
	for _, n := range []int{20_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) { benchDurableEvents(b, n) })
	}
}

func benchDurableEvents(b *testing.B, n int) {
	s := retailSchema(b)
	dir := b.TempDir()
	now := catalogtest.Epoch
	clock := func() time.Time { return now }
	// Load unsynced, then reopen synced: the load is not what is measured.
	st, err := embedded.Open(embedded.Options{Dir: dir, NoSync: true, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var muts []featurestore.Mutation
	for i := range n {
		muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%d", i), map[string]featurestore.Value{
			"tier": featurestore.String("gold"), "lifetime_value": featurestore.Number(float64(i % 997)),
		}))
		if len(muts) == 5000 || i == n-1 {
			if _, err := st.Mutate(ctx, muts); err != nil {
				b.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	st, err = embedded.Open(embedded.Options{Dir: dir, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := cache.New(st, cache.Options{MaxCost: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"product_view", "cart_add", "page_view", "purchase", "app_open"}
	evs := make([]featurestore.Event, 100)
	seq := 0
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for i := range evs {
			seq++
			typ := types[rng.IntN(len(types))]
			evs[i] = featurestore.Event{
				ID: fmt.Sprintf("e-%d", seq), CustomerID: fmt.Sprintf("c-%d", rng.IntN(n)), Type: typ, Channel: "web",
				Time: now.Add(-time.Duration(rng.IntN(3600)) * time.Second), Properties: map[string]any{"category": "running", "amount": 12.5, "path": "/"},
			}
		}
		if _, err := c.Mutate(ctx, featurestore.EventMutations(s, evs, now)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "events/s")
}

// decideOnce reads the customer's features as a decision does.
func decideOnce(tb testing.TB, c *cache.Cache, s *featurestore.Schema, id string, now time.Time) {
	p, ok := c.Cached(id)
	if !ok {
		tb.Fatalf("%s not cached", id)
	}
	var v featurestore.View
	v.Read(p, s, now)
}
