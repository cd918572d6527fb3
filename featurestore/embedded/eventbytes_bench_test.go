package embedded

import (
	"context"
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

// BenchmarkEventBytes measures what one event with a new event id writes
// to the store (pebble's write-ahead log, the record and any dedupe entry
// with their batch overhead) for a customer who already sent 4096 events
// with ids, and the size of that customer's record, for ids of several
// lengths. Before issue 10 the ids lived in the record, so every event
// rewrote all of them; the table in docs/benchmarks.md compares both.
//
//	go test -run '^$' -bench BenchmarkEventBytes -benchtime 200x ./featurestore/embedded/
func BenchmarkEventBytes(b *testing.B) {
	const past = 4096
	schema := storetest.Schema()
	now := storetest.Now
	ctx := context.Background()
	view := func(id string) featurestore.Event {
		return featurestore.Event{ID: id, CustomerID: "c-1", Type: "product_view", Time: now, Properties: map[string]any{"category": "shoes"}}
	}
	for _, idLen := range []int{36, 128, 256} {
		b.Run(fmt.Sprintf("id=%dB", idLen), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			evs := make([]featurestore.Event, past)
			for i := range evs {
				evs[i] = view(fmt.Sprintf("%0*d", idLen, i))
			}
			if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, evs, now)); err != nil {
				b.Fatal(err)
			}
			start := s.db.Metrics().WAL.BytesIn
			n := 0
			for b.Loop() {
				ev := []featurestore.Event{view(fmt.Sprintf("%0*d", idLen, past+n))}
				if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, ev, now)); err != nil {
					b.Fatal(err)
				}
				n++
			}
			written := s.db.Metrics().WAL.BytesIn - start
			r, err := s.Load(ctx, "c-1")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(written)/float64(n), "WAL-B/event")
			b.ReportMetric(float64(len(featurestore.AppendRecord(nil, r))), "record-B")
		})
	}
}
