package nextbest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// mapBackend is a cache.Backend in memory, for benchmarks of the cache in
// front of a store.
type mapBackend struct {
	mu    sync.Mutex
	recs  map[string]*featurestore.Record
	locks *featurestore.Locks
}

func (b *mapBackend) Locks() *featurestore.Locks { return b.locks }

func (b *mapBackend) Load(_ context.Context, id string) (*featurestore.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.recs[id]
	if !ok {
		return nil, featurestore.ErrNotFound
	}
	return r.Clone(), nil
}

func (b *mapBackend) Apply(_ context.Context, muts []featurestore.Mutation, groups []featurestore.Group, _ []*featurestore.Record) ([]*featurestore.Record, func() error, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*featurestore.Record, len(muts))
	for _, g := range groups {
		r := b.recs[g.CustomerID].Clone()
		for _, i := range g.Muts {
			muts[i].Apply(r)
			out[i] = r
		}
		b.recs[g.CustomerID] = r
	}
	return out, nil, nil
}

// BenchmarkDecideCachedPopulation decides for customers drawn at random
// from 100k customers of the retail example, all cached (the real cache),
// on the web channel: the cost of a cache-hit decision when the
// customers' data does not sit in the CPU's caches.
func BenchmarkDecideCachedPopulation(b *testing.B) {
	const customers = 100_000
	cat, err := rules.LoadFile("examples/retail/catalog.yaml")
	if err != nil {
		b.Fatal(err)
	}
	s := cat.Schema
	now := catalogtest.Epoch
	c, err := cache.New(&mapBackend{recs: map[string]*featurestore.Record{}, locks: featurestore.NewLocks()}, cache.Options{MaxCost: 2 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
			if _, err := c.Mutate(context.Background(), muts); err != nil {
				b.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	var ptr atomic.Pointer[rules.Catalog]
	ptr.Store(cat)
	svc, err := New(Options{Catalog: &ptr, Store: c, Cache: c, ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, customers)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	req := Request{Channel: "web", Limit: 3, Now: now}
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
	if h := c.Metrics().HitRatio; h < 0.99 {
		b.Fatalf("hit ratio %v: the benchmark measures misses", h)
	}
}
