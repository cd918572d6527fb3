package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// fakeStats is a StatsRecorder and StatsStore in memory: every delta is
// summed at once.
type fakeStats struct {
	mu    sync.Mutex
	cells map[featurestore.StatKey]featurestore.Counts
	fail  bool
}

func newFakeStats() *fakeStats {
	return &fakeStats{cells: map[featurestore.StatKey]featurestore.Counts{}}
}

func (f *fakeStats) Add(deltas ...featurestore.StatDelta) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range deltas {
		c := f.cells[d.Key]
		c.Add(d.Counts)
		f.cells[d.Key] = c
	}
}

func (f *fakeStats) Learned() *featurestore.LearnTable {
	f.mu.Lock()
	defer f.mu.Unlock()
	return featurestore.NewLearnTable(f.cells)
}

func (f *fakeStats) AddStats(_ context.Context, deltas []featurestore.StatDelta) error {
	f.Add(deltas...)
	return nil
}

func (f *fakeStats) LearnStats(context.Context) (map[featurestore.StatKey]featurestore.Counts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[featurestore.StatKey]featurestore.Counts{}
	for k, c := range f.cells {
		if k.Hour == 0 {
			out[k] = c
		}
	}
	return out, nil
}

func (f *fakeStats) HourlyStats(_ context.Context, from, to int64) (map[featurestore.StatKey]featurestore.Counts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("store down")
	}
	out := map[featurestore.StatKey]featurestore.Counts{}
	for k, c := range f.cells {
		if k.Hour >= from && k.Hour <= to && k.Hour != 0 {
			out[k] = c
		}
	}
	return out, nil
}

const statsCatalog = `
channels: [web, app]
features: {tier: {type: string, default: none}}
segments: {gold: customer.tier == "gold"}
learning: {learn_by: segment}
experiments:
  - id: x
    salt: s
    variants: [{name: control, weight: 1}, {name: hold, weight: 1, holdout: true}]
offers:
  - {id: a, channels: [web, app], value: 10, content: {web: {h: a}, app: {t: a}}}
  - {id: b, channels: [web], value: 5, content: {web: {h: b}}}
defaults: {web: {h: hi}, app: {t: hi}}
`

func statsServer(t *testing.T) (*Server, *fakeStats) {
	t.Helper()
	c, err := rules.Load("stats.yaml", []byte(statsCatalog))
	if err != nil {
		t.Fatal(err)
	}
	var p atomic.Pointer[rules.Catalog]
	p.Store(c)
	stats := newFakeStats()
	s := newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Catalog = &p
		o.Stats = stats
		o.StatsStore = stats
	})
	return s, stats
}

// TestCreditOutcomes: outcome events land in the learning cell of the
// customer's learn key and in the hourly cells overall and per variant;
// a retried event_id counts once; decisions count per variant.
func TestCreditOutcomes(t *testing.T) {
	s, stats := statsServer(t)
	if r := do(s, "PUT", "/v1/customers/g1", `{"features":{"tier":"gold"}}`); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	for _, body := range []string{
		`{"events":[{"customer_id":"g1","type":"impression","offer_id":"a","channel":"web"},{"customer_id":"n1","type":"impression","offer_id":"a","channel":"web"}]}`,
		`{"event_id":"k1","customer_id":"g1","type":"conversion","offer_id":"a","channel":"web"}`,
		`{"event_id":"k1","customer_id":"g1","type":"conversion","offer_id":"a","channel":"web"}`,
		`{"customer_id":"n1","type":"click","offer_id":"a","channel":"web","properties":{"value":3}}`,
		`{"customer_id":"n1","type":"conversion","offer_id":"a","channel":"web","properties":{"value":3}}`,
	} {
		if r := do(s, "POST", "/v1/events", body); r.status != 202 {
			t.Fatalf("POST %s: %d %s", body, r.status, r.body)
		}
	}
	if r := do(s, "POST", "/v1/decide", `{"customer_id":"g1","channel":"app"}`); r.status != 200 {
		t.Fatalf("decide: %d %s", r.status, r.body)
	}
	variant := func(id string) string {
		d := do(s, "POST", "/v1/decide", `{"customer_id":"`+id+`","channel":"web"}`)
		var body struct{ Experiments []struct{ Variant string } }
		if err := json.Unmarshal([]byte(d.body), &body); err != nil || len(body.Experiments) != 1 {
			t.Fatalf("decide %s: %s", id, d.body)
		}
		return body.Experiments[0].Variant
	}
	vg, vn := variant("g1"), variant("n1")

	hour := featurestore.Hour(testNow)
	learn := func(key string) featurestore.Counts {
		return stats.cells[featurestore.StatKey{Offer: "a", Channel: "web", Key: key}]
	}
	if got, want := learn("gold"), (featurestore.Counts{Impressions: 1, Conversions: 1, Value: 10}); got != want {
		t.Errorf("learning cell of gold customers: %+v, want %+v (the retried conversion counted once, at the offer's value)", got, want)
	}
	if got, want := learn(""), (featurestore.Counts{Impressions: 1, Clicks: 1, Conversions: 1, Value: 3}); got != want {
		t.Errorf("learning cell of customers in no segment: %+v, want %+v", got, want)
	}
	if got, want := stats.cells[featurestore.StatKey{Hour: hour, Offer: "a", Channel: "web"}], (featurestore.Counts{Impressions: 2, Clicks: 1, Conversions: 2, Value: 13}); got != want {
		t.Errorf("hourly cell: %+v, want %+v", got, want)
	}
	perVariant := map[string]featurestore.Counts{}
	for k, c := range stats.cells {
		if k.Experiment == "x" {
			sum := perVariant[k.Variant]
			sum.Add(c)
			perVariant[k.Variant] = sum
		}
	}
	want := map[string]featurestore.Counts{}
	add := func(v string, c featurestore.Counts) {
		sum := want[v]
		sum.Add(c)
		want[v] = sum
	}
	add(vg, featurestore.Counts{Impressions: 1, Conversions: 1, Value: 10, Decisions: 2})
	add(vn, featurestore.Counts{Impressions: 1, Clicks: 1, Conversions: 1, Value: 3, Decisions: 1})
	if diff := cmp.Diff(want, perVariant); diff != "" {
		t.Errorf("per-variant cells (-want +got):\n%s", diff)
	}
}

func TestStatsEndpoint(t *testing.T) {
	s, stats := statsServer(t)
	hour := featurestore.Hour(testNow)
	stats.Add(
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 200, Clicks: 20, Conversions: 5, Value: 50}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour - 1, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 100, Clicks: 10}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour - 48, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 1000}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web", Experiment: "x", Variant: "control"}, Counts: featurestore.Counts{Decisions: 1000, Conversions: 100}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web", Experiment: "x", Variant: "hold"}, Counts: featurestore.Counts{Decisions: 1000, Conversions: 50}},
	)
	r := do(s, "GET", "/v1/stats", "")
	if r.status != 200 {
		t.Fatalf("GET /v1/stats: %d %s", r.status, r.body)
	}
	var body struct {
		Offers []struct {
			OfferID                          string `json:"offer_id"`
			Channel                          string
			Impressions, Clicks, Conversions int64
			CTR                              float64
		}
		Experiments []struct {
			ID, Control string
			Variants    []struct {
				Name                   string
				ConversionsPerDecision float64 `json:"conversions_per_decision"`
				Uplift                 *struct {
					Difference float64
					CI95       [2]float64
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Offers) != 1 || body.Offers[0].Impressions != 300 || body.Offers[0].Clicks != 30 || math.Abs(body.Offers[0].CTR-0.1) > 1e-12 {
		t.Errorf("offers over the last 24h: %+v, want one row with 300 impressions, 30 clicks, ctr 0.1", body.Offers)
	}
	if len(body.Experiments) != 1 || body.Experiments[0].Control != "control" || len(body.Experiments[0].Variants) != 2 {
		t.Fatalf("experiments: %+v", body.Experiments)
	}
	hold := body.Experiments[0].Variants[1]
	// p1 = 0.05, p0 = 0.1: diff -0.05, se = sqrt(.05*.95/1000 + .1*.9/1000) = 0.011726
	if hold.Uplift == nil || math.Abs(hold.Uplift.Difference+0.05) > 1e-12 || math.Abs(hold.Uplift.CI95[0]-(-0.05-1.96*0.0117260)) > 1e-5 {
		t.Errorf("holdout uplift %+v, want -0.05 with ci95 ±0.02298", hold.Uplift)
	}
	if body.Experiments[0].Variants[0].Uplift != nil {
		t.Error("the control has an uplift over itself")
	}

	// A period that includes the older hour.
	r = do(s, "GET", "/v1/stats?from=2026-11-20T00:00:00Z&to=2026-11-23T10:00:00Z", "")
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || len(body.Offers) != 1 || body.Offers[0].Impressions != 1300 {
		t.Errorf("three days: %s", r.body)
	}
	stats.fail = true
	if r := do(s, "GET", "/v1/stats", ""); r.status != 503 {
		t.Errorf("store down: %d %s, want 503", r.status, r.body)
	}
}
