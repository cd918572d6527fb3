package cache_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

// warm returns a cache holding n customers.
func warm(b *testing.B, n int) (*cache.Cache, []string) {
	b.Helper()
	c := newCache(b, newMemBackend(), cache.Options{})
	ids := make([]string, n)
	var muts []featurestore.Mutation
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
		muts = append(muts, inc(ids[i]))
	}
	if _, err := c.Mutate(context.Background(), muts); err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		if _, ok := c.Cached(id); !ok {
			b.Fatalf("%s not cached", id)
		}
	}
	return c, ids
}

func BenchmarkLoadHit(b *testing.B) {
	c, ids := warm(b, 1000)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Load(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkLoadHitParallel(b *testing.B) {
	c, ids := warm(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Load(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkLoadMiss measures a miss: the backend load (in memory here),
// the insert and the wait for ristretto to apply it.
func BenchmarkLoadMiss(b *testing.B) {
	c, ids := warm(b, 1000)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		id := ids[i%len(ids)]
		c.Invalidate(id)
		if _, err := c.Load(ctx, id); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// overEmbedded returns a cache over an embedded store, unsynced so the
// figures show the write path's own cost (locks, grouping, encoding,
// pebble's memtable) rather than the disk's fsync.
func overEmbedded(b *testing.B) *cache.Cache {
	b.Helper()
	s, err := embedded.Open(embedded.Options{Dir: b.TempDir(), NoSync: true, Now: func() time.Time { return storetest.Now }})
	if err != nil {
		b.Fatal(err)
	}
	c := newCache(b, s, cache.Options{})
	b.Cleanup(func() { s.Close() })
	return c
}

// BenchmarkMutateEvent applies one event of one customer per call through
// the cache over the embedded store: the write behind POST /v1/events.
func BenchmarkMutateEvent(b *testing.B) {
	c := overEmbedded(b)
	schema := storetest.Schema()
	ctx := context.Background()
	ev := []featurestore.Event{{CustomerID: "c-1", Type: "cart_add", Time: storetest.Now}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Mutate(ctx, featurestore.EventMutations(schema, ev, storetest.Now)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMutateEventsBatch applies 100 events of 50 customers per call
// (with event ids) through the cache over the embedded store: a large
// POST /v1/events, where grouping and per-customer locking show.
func BenchmarkMutateEventsBatch(b *testing.B) {
	c := overEmbedded(b)
	schema := storetest.Schema()
	ctx := context.Background()
	evs := make([]featurestore.Event, 100)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range evs {
			n++
			evs[i] = featurestore.Event{ID: fmt.Sprintf("e-%d", n), CustomerID: fmt.Sprintf("c-%d", i%50), Type: "cart_add", Time: storetest.Now}
		}
		if _, err := c.Mutate(ctx, featurestore.EventMutations(schema, evs, storetest.Now)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMutateEventParallel applies single events of distinct
// customers from many goroutines through the cache over the embedded
// store.
func BenchmarkMutateEventParallel(b *testing.B) {
	c := overEmbedded(b)
	schema := storetest.Schema()
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := []featurestore.Event{{CustomerID: fmt.Sprintf("c-%d", next.Add(1)%1000), Type: "cart_add", Time: storetest.Now}}
			if _, err := c.Mutate(ctx, featurestore.EventMutations(schema, ev, storetest.Now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
