package nextbest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// TestSegmentStats: through the service, a decision counts in the
// segments its customer is in, and its outcomes in the same ones even
// when reported after the customer left them; a later decision that
// finds other segments moves the outcomes that follow it. The report by
// segment, alone and with a channel filter, equals a direct count.
func TestSegmentStats(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			stats := &summingStats{}
			s, store := newTestService(t, cached, func(o *Options) { o.Stats, o.StatsReader = stats, stats })
			cat := s.catalog.Load()
			now := testNow
			s.now = func() time.Time { return now }
			long := testNow.AddDate(-1, 0, 0)
			for id, attrs := range map[string]map[string]featurestore.Value{
				"lapsed":     {"lifetime_value": featurestore.Number(500)},
				"vip-lapsed": {"lifetime_value": featurestore.Number(5000)},
				"nobody":     {},
			} {
				r := &featurestore.Record{}
				for k, v := range attrs {
					r.SetAttr(k, v)
				}
				if id != "nobody" {
					r.Apply(cat.Schema, &featurestore.Event{ID: id + "-p", CustomerID: id, Type: "purchase", Channel: "web", Time: long, Properties: map[string]any{"amount": 10.0}}, testNow)
				}
				store.recs[id] = r
			}
			type want struct{ decisions, impressions, clicks int64 }
			direct := map[string]map[string]*want{} // segment → channel → counts
			count := func(segs []string, ch string, f func(*want)) {
				for _, seg := range append([]string{""}, segs...) {
					if direct[seg] == nil {
						direct[seg] = map[string]*want{}
					}
					if direct[seg][ch] == nil {
						direct[seg][ch] = &want{}
					}
					f(direct[seg][ch])
				}
			}
			decide := func(id, ch string) (offer string, segs []string) {
				t.Helper()
				var d Decision
				if err := s.Decide(context.Background(), &Request{CustomerID: id, Channel: ch, Limit: 1}, &d); err != nil {
					t.Fatal(err)
				}
				segs = append([]string(nil), d.Result.Segments...)
				count(segs, ch, func(w *want) { w.decisions++ })
				if len(d.Result.Offers) == 0 {
					t.Fatalf("%s on %s: no offer", id, ch)
				}
				offer = d.Result.Offers[0].Offer.ID
				if d.Result.Channel.DecisionIsImpression {
					count(segs, ch, func(w *want) { w.impressions++ })
				}
				return offer, segs
			}
			outcome := func(id, typ, offer, ch string, segs []string) {
				t.Helper()
				now = now.Add(time.Minute)
				ev := featurestore.Event{CustomerID: id, Type: typ, OfferID: offer, Channel: ch, Time: now}
				if _, err := s.ApplyEvents(cat, []featurestore.Event{ev}, now, true); err != nil {
					t.Fatal(err)
				}
				count(segs, ch, func(w *want) {
					if typ == "impression" {
						w.impressions++
					} else {
						w.clicks++
					}
				})
			}
			for _, id := range []string{"lapsed", "vip-lapsed", "nobody"} {
				offer, segs := decide(id, "web")
				outcome(id, "impression", offer, "web", segs)
				emailOffer, emailSegs := decide(id, "email")
				// A purchase takes them out of lapsed; the clicks on what
				// they were shown while lapsed still count for it.
				now = now.Add(time.Minute)
				if _, err := s.ApplyEvents(cat, []featurestore.Event{{CustomerID: id, Type: "purchase", Channel: "web", Time: now, Properties: map[string]any{"amount": 5.0}}}, now, true); err != nil {
					t.Fatal(err)
				}
				outcome(id, "click", offer, "web", segs)
				outcome(id, "click", emailOffer, "email", emailSegs)
				// The next web decision finds them out of lapsed: its
				// outcomes count so.
				offer, later := decide(id, "web")
				if id != "nobody" && (slices.Contains(later, "lapsed") || !slices.Contains(segs, "lapsed")) {
					t.Fatalf("%s: segments %q, then %q; want lapsed, then not", id, segs, later)
				}
				outcome(id, "impression", offer, "web", later)
				outcome(id, "click", offer, "web", later)
			}
			if w := direct["lapsed"]["web"]; w == nil || w.decisions != 2 || w.clicks != 2 {
				t.Fatalf("the test counts %+v lapsed on the web, want 2 decisions and 2 clicks", w)
			}
			for _, seg := range []string{"", "lapsed", "vip", "new_customer"} {
				for _, ch := range []string{"", "web", "email"} {
					r, err := s.Report(context.Background(), ReportQuery{From: testNow, To: now, Segment: seg, Channel: ch})
					if err != nil {
						t.Fatal(err)
					}
					for _, row := range r.Channels {
						w := direct[seg][row.Channel]
						if w == nil {
							w = &want{}
						}
						if got := (want{row.Decisions, row.Impressions, row.Clicks}); got != *w {
							t.Errorf("segment %q, channel %q: row %s counts %+v, want %+v", seg, ch, row.Channel, got, *w)
						}
					}
				}
			}
		})
	}
}
