package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
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
	customers := map[string]int64{}
	gold := featurestore.Counts{}
	for k, c := range stats.cells {
		if k.Segment != "" {
			// The copies of the cells of gold customers' decisions. g1's
			// outcomes came before their first decision: in no segment.
			if k.Segment != "gold" || k.Experiment == "" && k.Offer != "" {
				t.Errorf("segment cell %+v: %+v, want none of an outcome", k, c)
			}
			if k.Experiment == "x" {
				gold.Add(c)
			}
			continue
		}
		if k.Experiment == "x" && k.Channel == "" {
			// A cohort cell: the customers exposed, each once however
			// often they decided; their conversions came before.
			if c != (featurestore.Counts{Customers: c.Customers}) {
				t.Errorf("cohort cell %+v: %+v, want customers only (every conversion preceded the exposure)", k, c)
			}
			customers[k.Variant] += c.Customers
			continue
		}
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
	if want := (featurestore.Counts{Decisions: 2}); gold != want {
		t.Errorf("gold's per-variant cells: %+v, want %+v (g1's two decisions)", gold, want)
	}
	wantCustomers := map[string]int64{}
	wantCustomers[vg]++
	wantCustomers[vn]++
	if diff := cmp.Diff(wantCustomers, customers); diff != "" {
		t.Errorf("customers exposed per variant (-want +got):\n%s", diff)
	}
}

func TestStatsEndpoint(t *testing.T) {
	s, stats := statsServer(t)
	hour := featurestore.Hour(testNow)
	stats.Add(
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 200, Clicks: 20, Conversions: 5, Value: 50}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour - 1, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 100, Clicks: 10}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour - 48, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 1000}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web"}, Counts: featurestore.Counts{Decisions: 2000}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web", Experiment: "x", Variant: "control"}, Counts: featurestore.Counts{Decisions: 1000, Conversions: 100}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web", Experiment: "x", Variant: "hold"}, Counts: featurestore.Counts{Decisions: 1000, Conversions: 50}},
		featurestore.StatDelta{Key: featurestore.CohortKey("x", "control", testNow.UnixNano()), Counts: featurestore.Counts{Customers: 1000, Converters: 100, Conversions: 100, ConversionsSq: 100}},
		featurestore.StatDelta{Key: featurestore.CohortKey("x", "hold", testNow.UnixNano()), Counts: featurestore.Counts{Customers: 1000, Converters: 50, Conversions: 50, ConversionsSq: 50}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Experiment: "x", Variant: "hold", Key: featurestore.RetentionKeyPrefix + "9"}, Counts: featurestore.Counts{Converters: 50}},
	)
	r := do(s, "GET", "/v1/stats", "")
	if r.status != 200 {
		t.Fatalf("GET /v1/stats: %d %s", r.status, r.body)
	}
	type interval struct {
		Difference float64
		CI95       [2]float64
	}
	var body struct {
		RetentionDays int `json:"retention_days"`
		Unit          string
		Channels      []struct {
			Channel                string
			Decisions, Impressions int64
		}
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
				Customers              struct {
					Exposed   int64
					Retention *float64
				}
				Uplift *struct {
					ConversionRate         *interval `json:"conversion_rate"`
					ConversionsPerCustomer *interval `json:"conversions_per_customer"`
				}
			}
			Channels []struct{ Variant, Channel string }
		}
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Offers) != 1 || body.Offers[0].Impressions != 300 || body.Offers[0].Clicks != 30 || math.Abs(body.Offers[0].CTR-0.1) > 1e-12 {
		t.Errorf("offers over the last 24h: %+v, want one row with 300 impressions, 30 clicks, ctr 0.1", body.Offers)
	}
	if len(body.Channels) != 2 || body.Channels[0].Channel != "web" || body.Channels[0].Decisions != 2000 || body.Channels[0].Impressions != 300 {
		t.Errorf("channels: %+v, want web (2000 decisions, 300 impressions) and app", body.Channels)
	}
	if len(body.Experiments) != 1 || body.Experiments[0].Control != "control" || len(body.Experiments[0].Variants) != 2 {
		t.Fatalf("experiments: %+v", body.Experiments)
	}
	if body.Unit != "customer" || body.RetentionDays != 30 {
		t.Errorf("unit %q, retention_days %d: want customer and 30", body.Unit, body.RetentionDays)
	}
	hold := body.Experiments[0].Variants[1]
	// Converters: 0.05 − 0.1 (Newcombe); conversions per customer, each
	// 0 or 1, the same difference by Welch.
	if u := hold.Uplift; u == nil || u.ConversionRate == nil || math.Abs(u.ConversionRate.Difference+0.05) > 1e-12 || u.ConversionRate.CI95[1] >= 0 ||
		u.ConversionsPerCustomer == nil || math.Abs(u.ConversionsPerCustomer.Difference+0.05) > 1e-12 {
		t.Errorf("holdout uplift %+v, want -0.05 with an interval below 0", hold.Uplift)
	}
	if hold.Customers.Exposed != 1000 || hold.Customers.Retention == nil || *hold.Customers.Retention != 0.05 {
		t.Errorf("holdout customers %+v, want 1000 exposed, retention 0.05", hold.Customers)
	}
	if body.Experiments[0].Variants[0].Uplift != nil {
		t.Error("the control has an uplift over itself")
	}
	if ch := body.Experiments[0].Channels; len(ch) != 2 || ch[0].Channel != "web" {
		t.Errorf("experiment channels %+v, want control and hold on web", ch)
	}
	// retention_days and channel.
	r = do(s, "GET", "/v1/stats?retention_days=9&channel=app", "")
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.RetentionDays != 9 || len(body.Offers) != 0 || len(body.Channels) != 1 ||
		body.Experiments[0].Variants[1].Customers.Retention == nil || *body.Experiments[0].Variants[1].Customers.Retention != 0 {
		t.Errorf("retention_days=9&channel=app: %s", r.body)
	}
	for _, q := range []string{"?retention_days=0", "?retention_days=x", "?retention_days=367", "?channel=fax"} {
		if r := do(s, "GET", "/v1/stats"+q, ""); r.status != 400 || !strings.Contains(r.body, `"error"`) {
			t.Errorf("GET /v1/stats%s: %d %s, want 400", q, r.status, r.body)
		}
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

// TestStatsEndpointSegment: segment= keeps the cells of that segment,
// with channel= too, says what it filters, and refuses a name that is
// no segment of the catalog with the catalog's segments.
func TestStatsEndpointSegment(t *testing.T) {
	s, stats := statsServer(t)
	hour := featurestore.Hour(testNow)
	stats.Add(
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web"}, Counts: featurestore.Counts{Decisions: 20}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "app"}, Counts: featurestore.Counts{Decisions: 10}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Offer: "a", Channel: "web"}, Counts: featurestore.Counts{Impressions: 20, Clicks: 4}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web", Segment: "gold"}, Counts: featurestore.Counts{Decisions: 5}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "app", Segment: "gold"}, Counts: featurestore.Counts{Decisions: 2}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Offer: "a", Channel: "web", Segment: "gold"}, Counts: featurestore.Counts{Impressions: 5, Clicks: 3}},
		featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: "web", Experiment: "x", Variant: "control", Segment: "gold"}, Counts: featurestore.Counts{Decisions: 5}},
	)
	type body struct {
		Segment     string
		SegmentNote string `json:"segment_note"`
		Channels    []struct {
			Channel                        string
			Decisions, Impressions, Clicks int64
		}
		Offers      []struct{ Impressions, Clicks int64 }
		Experiments []struct {
			CustomersInSegment *bool `json:"customers_in_segment"`
			Variants           []struct{ Decisions int64 }
		}
	}
	tests := []struct {
		query    string
		channels string // "channel:decisions/impressions/clicks ..."
	}{
		{"", "web:20/20/4 app:10/0/0 "},
		{"?segment=gold", "web:5/5/3 app:2/0/0 "},
		{"?segment=gold&channel=app", "app:2/0/0 "},
		{"?channel=web&segment=gold", "web:5/5/3 "},
	}
	for _, tt := range tests {
		r := do(s, "GET", "/v1/stats"+tt.query, "")
		var b body
		if err := json.Unmarshal([]byte(r.body), &b); r.status != 200 || err != nil {
			t.Fatalf("GET /v1/stats%s: %d %s", tt.query, r.status, r.body)
		}
		got := ""
		for _, c := range b.Channels {
			got += fmt.Sprintf("%s:%d/%d/%d ", c.Channel, c.Decisions, c.Impressions, c.Clicks)
		}
		if got != tt.channels {
			t.Errorf("GET /v1/stats%s: channels %s, want %s", tt.query, got, tt.channels)
		}
		filtered := strings.Contains(tt.query, "segment=")
		if (b.Segment == "gold") != filtered || (b.SegmentNote != "") != filtered || (b.Experiments[0].CustomersInSegment != nil) != filtered {
			t.Errorf("GET /v1/stats%s: segment %q, note %q, customers_in_segment %v", tt.query, b.Segment, b.SegmentNote, b.Experiments[0].CustomersInSegment)
		}
		if filtered && *b.Experiments[0].CustomersInSegment {
			t.Errorf("GET /v1/stats%s: customers in segment for an experiment not scoped to it", tt.query)
		}
	}
	r := do(s, "GET", "/v1/stats?segment=platinum", "")
	if want := `"segment: \"platinum\" is not a segment of the catalog, one of gold"`; r.status != 400 || !strings.Contains(r.body, want) || !strings.Contains(r.body, "segment") {
		t.Errorf("GET /v1/stats?segment=platinum: %d %s, want 400 naming the segments", r.status, r.body)
	}
}
