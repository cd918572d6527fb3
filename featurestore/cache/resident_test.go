package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
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

// writeHeapProfile writes the heap profile to file, for
// go tool pprof -sample_index=inuse_space.
func writeHeapProfile(b *testing.B, file string) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// rss returns the process's resident memory, after returning to the
// system what the heap has freed (so that it measures the live data and
// the collector's working space, not pages it kept from earlier).
func rss(b *testing.B) int64 {
	debug.FreeOSMemory()
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm")
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(statm), &size, &resident); err != nil {
		b.Fatal(err)
	}
	return resident * int64(os.Getpagesize())
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
	before, rssBefore := heapAfterGC(), rss(b)
	fillPopulation(b, c, s, lo, hi)
	after, rssAfter := heapAfterGC(), rss(b)
	if f := os.Getenv("NEXTBEST_HEAP_PROFILE"); f != "" {
		writeHeapProfile(b, f)
	}
	if got := c.Metrics().Entries; got != hi {
		b.Fatalf("%d customers cached, want %d", got, hi)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(after-before)/(hi-lo), "B/customer")
	b.ReportMetric(float64(rssAfter-rssBefore)/(hi-lo), "RSS-B/customer")
	b.ReportMetric(float64(c.Metrics().CostAdded)/hi, "cost/customer")
	runtime.KeepAlive(c)
}

// BenchmarkDurableEvents applies batches of 100 events, each of a random
// customer of a population of 20k, 100k or 1M already stored, through the
// cache over the embedded store, from 8 concurrent writers per
// GOMAXPROCS (as POST /v1/events requests in flight), each batch
// acknowledged once fsynced: events/s is the durable write rate. Run it
// with -cpu 1 for the rate on one core.
func BenchmarkDurableEvents(b *testing.B) {
	for _, n := range []int{20_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) { benchDurableEvents(b, n, false) })
	}
}

// BenchmarkDurableEventsTimeline is BenchmarkDurableEvents at 100k
// customers without and with the customers' timelines (issue 13, point
// 3): each event then also writes its timeline entry in the same batch,
// and each customer's entry count is read.
func BenchmarkDurableEventsTimeline(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("timeline=%v", on), func(b *testing.B) { benchDurableEvents(b, 100_000, on) })
	}
}

// benchDurableEvents measures durable events of n customers, written to
// their timelines too with journal.
func benchDurableEvents(b *testing.B, n int, journal bool) {
	s := retailSchema(b)
	dir := b.TempDir()
	now := catalogtest.Epoch
	var (
		st  *embedded.Store
		c   *cache.Cache
		err error
	)
	// Labelled, so that a profile can leave the set-up out
	// (go tool pprof -tagignore phase=setup).
	pprof.Do(context.Background(), pprof.Labels("phase", "setup"), func(context.Context) {
		st, c, err = loadPopulation(b, s, dir, n)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer c.Close()
	ctx := context.Background()
	types := []string{"product_view", "cart_add", "page_view", "purchase", "app_open"}
	var seq atomic.Int64
	var seed atomic.Uint64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 2))
		evs := make([]featurestore.Event, 100)
		for pb.Next() {
			for i := range evs {
				typ := types[rng.IntN(len(types))]
				evs[i] = featurestore.Event{
					ID: fmt.Sprintf("e-%d", seq.Add(1)), CustomerID: fmt.Sprintf("c-%d", rng.IntN(n)), Type: typ, Channel: "web",
					Time: now.Add(-time.Duration(rng.IntN(3600)) * time.Second), Properties: map[string]any{"category": "running", "amount": 12.5, "path": "/"},
				}
			}
			muts := featurestore.EventMutations(s, evs, now)
			if journal {
				muts = featurestore.JournaledEventMutations(s, evs, now, nil)
			}
			if _, err := c.Mutate(ctx, muts); err != nil {
				b.Error(err)
				return
			}
		}
	})
	events := float64(seq.Load())
	b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
	// On a shared machine the wall clock measures the neighbours too: the
	// process's CPU time per event says what one core would sustain.
	cpu := (cpuTime(b) - cpu0).Seconds()
	b.ReportMetric(cpu/events*1e6, "cpu-µs/event")
	b.ReportMetric(events/cpu, "events/cpu-s")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadPopulation stores customers c-0 to c-<n-1>, each with a couple of
// attributes, in the embedded store in dir, and returns the store, synced,
// with a cache in front of it that holds every customer, as a node that
// has served them for a while has.
func loadPopulation(b *testing.B, s *featurestore.Schema, dir string, n int) (*embedded.Store, *cache.Cache, error) {
	now := catalogtest.Epoch
	clock := func() time.Time { return now }
	// Load unsynced, then reopen synced: the load is not what is measured.
	st, err := embedded.Open(embedded.Options{Dir: dir, NoSync: true, Now: clock})
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	var muts []featurestore.Mutation
	for i := range n {
		muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%d", i), map[string]featurestore.Value{
			"tier": featurestore.String("gold"), "lifetime_value": featurestore.Number(float64(i % 997)),
		}))
		if len(muts) == 5000 || i == n-1 {
			if _, err := st.Mutate(ctx, muts); err != nil {
				return nil, nil, err
			}
			muts = muts[:0]
		}
	}
	if err := st.Close(); err != nil {
		return nil, nil, err
	}
	if st, err = embedded.Open(embedded.Options{Dir: dir, Now: clock}); err != nil {
		return nil, nil, err
	}
	c, err := cache.New(st, cache.Options{MaxCost: 4 << 30})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	for i := range n {
		if _, err := c.Load(ctx, fmt.Sprintf("c-%d", i)); err != nil {
			return nil, nil, err
		}
	}
	return st, c, nil
}

// BenchmarkPopulation10x reads customers for decisions from a cache that
// holds a tenth of them (MaxCost sized for 2,000 of 20,000 customers of
// the retail example), over a backend in memory: a hit decodes the
// packed record with a View, a miss loads it. The access pattern is
// Zipfian (s=1.1, a few customers come back often) or uniform (no reuse:
// the worst case); hit-ratio is the share of reads answered from memory.
func BenchmarkPopulation10x(b *testing.B) {
	const customers = 20_000
	s := retailSchema(b)
	p := catalogtest.Population{}
	now := catalogtest.Epoch
	backend := newMemBackend()
	for i := range customers {
		cust := p.Customer(i)
		backend.recs[cust.ID] = cust.Record(s, now)
	}
	ids := make([]string, customers)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
	}
	for _, access := range []string{"zipf", "uniform"} {
		b.Run("access="+access, func(b *testing.B) {
			c := newCache(b, backend, cache.Options{MaxCost: customers / 10 * cache.TypicalEntryCost})
			rng := rand.New(rand.NewPCG(1, 2))
			zipf := rand.NewZipf(rng, 1.1, 1, customers-1)
			next := func() string {
				if access == "zipf" {
					return ids[zipf.Uint64()]
				}
				return ids[rng.IntN(customers)]
			}
			ctx := context.Background()
			var v featurestore.View
			for range 2 * customers { // warm
				if _, err := c.Load(ctx, next()); err != nil {
					b.Fatal(err)
				}
			}
			hits0, misses0 := c.Metrics().Hits, c.Metrics().Misses
			b.ReportAllocs()
			for b.Loop() {
				id := next()
				if packed, ok := c.Cached(id); ok {
					v.Read(packed, s, now)
					continue
				}
				r, err := c.Load(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				v.ReadRecord(r, s, now)
			}
			m := c.Metrics()
			hits, misses := m.Hits-hits0, m.Misses-misses0
			b.ReportMetric(float64(hits)/float64(hits+misses), "hit-ratio")
			b.ReportMetric(float64(m.Entries), "entries")
		})
	}
}

// BenchmarkCollect measures one garbage collection with n customers of
// the retail example cached: each collection marks every cached entry,
// which is what the node's collector tuning (internal/gctune) trades
// against memory. Reported per collection: wall time and the process's
// CPU time (getrusage; the runtime's own estimate of the collector's CPU
// counts wall time of its workers and overstates it on a loaded machine).
func BenchmarkCollect(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) {
			s := retailSchema(b)
			c, err := cache.New(nullBackend{featurestore.NewLocks()}, cache.Options{MaxCost: 4 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			fillPopulation(b, c, s, 0, n)
			if got := c.Metrics().Entries; got != uint64(n) {
				b.Fatalf("%d customers cached, want %d", got, n)
			}
			runtime.GC()
			before := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
			b.ReportMetric((cpuTime(b)-before).Seconds()/float64(b.N)*1e3, "cpu-ms/op")
			runtime.KeepAlive(c)
		})
	}
}
