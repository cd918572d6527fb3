package embedded_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

const benchCustomers = 10000

// seeded opens a store holding benchCustomers customers with a few dozen
// events each (records of about 500 bytes).
func seeded(b *testing.B, opts embedded.Options) (*embedded.Store, *featurestore.Schema) {
	b.Helper()
	s := open(b, opts)
	schema := storetest.Schema()
	now := storetest.Now
	var muts []featurestore.Mutation
	for i := range benchCustomers {
		id := fmt.Sprintf("c-%d", i)
		var evs []featurestore.Event
		for j := range 30 {
			ts := now.Add(-time.Duration(j) * 17 * time.Hour)
			evs = append(evs,
				featurestore.Event{CustomerID: id, Type: "product_view", Time: ts, Properties: map[string]any{"category": "shoes"}},
				featurestore.Event{CustomerID: id, Type: "purchase", Time: ts, Properties: map[string]any{"amount": 12.5}})
		}
		muts = append(muts, featurestore.AttrsMutation(id, map[string]featurestore.Value{"tier": featurestore.String("gold")}))
		muts = append(muts, featurestore.EventMutations(schema, evs, now)...)
		if len(muts) >= 2000 {
			if _, err := s.Mutate(context.Background(), muts); err != nil {
				b.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	if _, err := s.Mutate(context.Background(), muts); err != nil {
		b.Fatal(err)
	}
	return s, schema
}

func BenchmarkLoad(b *testing.B) {
	s, _ := seeded(b, embedded.Options{NoSync: true})
	ctx := context.Background()
	ids := make([]string, benchCustomers)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i += 7919 // a prime stride: no two neighbours in a row
	}
}

// BenchmarkMutate applies one event to one customer per call and waits
// for its fsync: the latency of one acknowledged event.
func BenchmarkMutate(b *testing.B) {
	s, schema := seeded(b, embedded.Options{})
	ctx := context.Background()
	ev := []featurestore.Event{{CustomerID: "c-1", Type: "cart_add", Time: storetest.Now}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, ev, storetest.Now)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMutateParallel runs synced single-event mutations of distinct
// customers from many goroutines: pebble's group commit makes their
// fsyncs one, so throughput (1/ns per op) far exceeds BenchmarkMutate's.
func BenchmarkMutateParallel(b *testing.B) {
	s, schema := seeded(b, embedded.Options{})
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(32) // goroutines per CPU, like concurrent HTTP requests
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("c-%d", next.Add(1)%benchCustomers)
			ev := []featurestore.Event{{CustomerID: id, Type: "cart_add", Time: storetest.Now}}
			if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, ev, storetest.Now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
