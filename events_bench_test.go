package nextbest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// BenchmarkApplyEventsExposed: a batch of 100 events of 50 customers, all
// assigned to the catalog's experiment and exposed by a decision, half of
// the events conversions: what crediting conversions to the customers'
// exposures (their records and their cohort cells) adds to the events'
// write. Through the cache over the in-memory test store, so the
// service's own work is what is measured.
func BenchmarkApplyEventsExposed(b *testing.B) {
	s, _ := newTestService(b, true, func(o *Options) { o.Stats = &fakeStats{} })
	cat := s.catalog.Load()
	var events []featurestore.Event
	for i := range 50 {
		id := fmt.Sprintf("bench-%d", i)
		var d Decision
		if err := s.Decide(context.Background(), &Request{CustomerID: id, Channel: "web", Limit: 1}, &d); err != nil {
			b.Fatal(err)
		}
		events = append(events,
			featurestore.Event{CustomerID: id, Type: "conversion", OfferID: "winback-20", Channel: "web", Time: testNow.Add(time.Minute)},
			featurestore.Event{CustomerID: id, Type: "impression", OfferID: "winback-20", Channel: "web", Time: testNow.Add(time.Minute)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ApplyEvents(cat, events, testNow.Add(time.Minute), false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyEventsModel: a batch of 100 outcome events (impressions
// and conversions of 50 customers) on the example catalog by counts
// alone and with a learning model of 12 terms, each outcome crediting
// the model's sums too (78 cells an impression, 12 a conversion, fewer
// where a term is 0): what the model adds to the events' write.
func BenchmarkApplyEventsModel(b *testing.B) {
	for _, model := range []bool{false, true} {
		name := "counts"
		if model {
			name = "model"
		}
		b.Run(name, func(b *testing.B) {
			stats := &fakeStats{}
			s, _ := newTestService(b, true, func(o *Options) {
				if model {
					o.Catalog.Store(modelRetail(b))
				}
				o.Stats = stats
			})
			cat := s.catalog.Load()
			var events []featurestore.Event
			for i := range 50 {
				id := fmt.Sprintf("bench-%d", i)
				events = append(events,
					featurestore.Event{CustomerID: id, Type: "impression", OfferID: "winback-20", Channel: "web", Time: testNow.Add(time.Minute)},
					featurestore.Event{CustomerID: id, Type: "conversion", OfferID: "winback-20", Channel: "web", Time: testNow.Add(time.Minute)})
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ApplyEvents(cat, events, testNow.Add(time.Minute), false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
