package nextbest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// learnedRetail is a learned table for every offer of the example
// catalog on every channel under every learn key, with counts that make
// the Thompson draws matter.
func learnedRetail(cat *rules.Catalog) *featurestore.LearnTable {
	r := rand.New(rand.NewPCG(1, 2))
	cells := map[featurestore.StatKey]featurestore.Counts{}
	keys := []string{""}
	for _, s := range cat.Segments {
		keys = append(keys, s.Name)
	}
	for _, o := range cat.Offers {
		for _, ch := range cat.ChannelNames() {
			for _, k := range keys {
				imp := int64(r.IntN(400))
				conv := int64(r.IntN(int(imp/5 + 1)))
				cells[featurestore.StatKey{Offer: o.ID, Channel: ch, Key: k}] = featurestore.Counts{
					Impressions: imp, Conversions: conv, Clicks: conv, Value: float64(conv) * 12.5}
			}
		}
	}
	return featurestore.NewLearnTable(cells)
}

// BenchmarkDecideLoggedHistory is BenchmarkDecideLogged for a customer
// with a contact history (12 or 200 impressions) and a learned table
// holding every cell: what replay adds to a logged decision (the
// contacts and the learned counts it read, copied and encoded) is in
// log=on.
func BenchmarkDecideLoggedHistory(b *testing.B) {
	offers := []string{"home-hero-new-arrivals", "running-shoes-launch", "outdoor-gear-bundle", "summer-clearance"}
	for _, contacts := range []int{12, 200} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("contacts=%d/log=off", contacts)
			if on {
				name = fmt.Sprintf("contacts=%d/log=on", contacts)
			}
			b.Run(name, func(b *testing.B) {
				var l *decisionlog.Log
				svc, store := newTestService(b, true, func(o *Options) {
					o.Stats = &fakeStats{learned: learnedRetail(o.Catalog.Load())}
					if !on {
						return
					}
					var err error
					if l, err = decisionlog.Open(decisionlog.Options{Dir: b.TempDir()}); err != nil {
						b.Fatal(err)
					}
					o.DecisionLog, o.DecisionLogSample = l, 1
				})
				r := store.recs["carter"]
				for i := range contacts {
					r.AddContact(featurestore.Contact{OfferID: offers[i%len(offers)], Channel: "app", Kind: featurestore.Impression,
						At: testNow.Add(-time.Duration(contacts-i) * 10 * time.Minute).UnixNano()}, 0, testNow)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				if l != nil {
					go func() { _ = l.Run(ctx); close(done) }()
				} else {
					close(done)
				}
				req := Request{CustomerID: "carter", Channel: "web", Limit: 2}
				var d Decision
				b.ReportAllocs()
				start := cpuTime()
				for b.Loop() {
					d.Reset()
					if err := svc.Decide(ctx, &req, &d); err != nil {
						b.Fatal(err)
					}
				}
				cancel()
				<-done
				b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "CPU-µs/op")
				if l != nil {
					b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
				}
			})
		}
	}
}
