package nextbest

import (
	"context"
	"math/rand/v2"
	"os"
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
// with a contact history (12 or 200 impressions 10 minutes apart, or
// 200 over the 30 days a record keeps them, of which the catalog's
// rules read the last 7 days) and a learned table holding every cell:
// what replay adds to a logged decision (the contacts and the learned
// counts it read, copied and encoded) is in log=on.
func BenchmarkDecideLoggedHistory(b *testing.B) {
	offers := []string{"home-hero-new-arrivals", "running-shoes-launch", "outdoor-gear-bundle", "summer-clearance"}
	for _, h := range []struct {
		name     string
		contacts int
		every    time.Duration
	}{
		{"contacts=12", 12, 10 * time.Minute},
		{"contacts=200", 200, 10 * time.Minute},
		{"contacts=200-over-30d", 200, 30 * 24 * time.Hour / 200},
	} {
		contacts := h.contacts
		for _, on := range []bool{false, true} {
			name := h.name + "/log=off"
			if on {
				name = h.name + "/log=on"
			}
			b.Run(name, func(b *testing.B) {
				var (
					l   *decisionlog.Log
					dir = b.TempDir()
				)
				svc, store := newTestService(b, true, func(o *Options) {
					o.Stats = &fakeStats{learned: learnedRetail(o.Catalog.Load())}
					if !on {
						return
					}
					var err error
					if l, err = decisionlog.Open(decisionlog.Options{Dir: dir}); err != nil {
						b.Fatal(err)
					}
					o.DecisionLog, o.DecisionLogSample = l, 1
				})
				r := store.recs["carter"]
				for i := range contacts {
					r.AddContact(featurestore.Contact{OfferID: offers[i%len(offers)], Channel: "app", Kind: featurestore.Impression,
						At: testNow.Add(-time.Duration(contacts-i) * h.every).UnixNano()}, 0, testNow)
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
					b.ReportMetric(float64(dirSize(b, dir))/float64(max(l.Written(), 1)), "log-B/entry")
				}
			})
		}
	}
}

// dirSize is the size of the files in dir.
func dirSize(b *testing.B, dir string) int64 {
	des, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
