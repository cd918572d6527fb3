package cache_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
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
