package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/internal/redistest"
)

// BenchmarkLoadLatency reads customers of a few hundred bytes each from
// a loopback redis-server, from 16 goroutines per CPU through a client
// set up as nextbest serve sets it up, and reports the distribution of
// one read's latency: what the store deadline of a decision
// (--store-timeout) must cover with margin. See docs/benchmarks.md.
func BenchmarkLoadLatency(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c, err := redisstore.NewClient("redis://"+srv.Addr+"/0", redisstore.ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	s, err := redisstore.New(redisstore.Options{Client: c})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const customers = 10_000
	attrs := map[string]featurestore.Value{"tier": featurestore.String("gold"), "interests": featurestore.List([]string{"shoes", "hats", "bags", "coats"})}
	for i := 0; i < customers; i += 500 {
		var muts []featurestore.Mutation
		for j := i; j < i+500; j++ {
			muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%d", j), attrs))
		}
		if _, err := s.Mutate(ctx, muts); err != nil {
			b.Fatal(err)
		}
	}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(16) // goroutines per CPU: a busy node's concurrent cache misses
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			id := fmt.Sprintf("c-%d", rand.IntN(customers))
			start := time.Now()
			if _, err := s.Load(ctx, id); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Microsecond) }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p99.9-µs")
	b.ReportMetric(float64(all[len(all)-1])/float64(time.Microsecond), "max-µs")
}
