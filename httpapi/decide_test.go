package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/xid"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// decideResponse is the decide body as a client decodes it.
type decideResponse struct {
	DecisionID string `json:"decision_id"`
	CustomerID string `json:"customer_id"`
	Channel    string `json:"channel"`
	// CatalogVersion is null for a catalog loaded without a registry.
	CatalogVersion *string `json:"catalog_version"`
	Offers         []struct {
		ID      string
		Name    string
		Score   float64
		Content map[string]any
	} `json:"offers"`
	Fallback map[string]any `json:"fallback"`
	Degraded bool           `json:"degraded"`
	Reason   *string        `json:"reason"` // only when degraded
	Segments []string       `json:"segments"`
	Explain  []struct {
		OfferID    string `json:"offer_id"`
		Eligible   bool
		Reason     string
		Rule       string
		Error      string
		Score      float64
		Propensity float64
		Value      float64
		Weight     float64
		Sticky     bool
		Exploring  bool
	} `json:"explain"`
	Experiments []struct {
		ID      string
		Variant string
	} `json:"experiments"`
}

func decode(t *testing.T, r response) decideResponse {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status: got %d, want 200 (body %s)", r.status, r.body)
	}
	var d decideResponse
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return d
}

func offerIDs(d decideResponse) []string {
	ids := []string{}
	for _, o := range d.Offers {
		ids = append(ids, o.ID)
	}
	return ids
}

// seed stores a record for id built from attributes and events.
func seed(t *testing.T, s *Server, store *fakeStore, id string, attrs map[string]featurestore.Value, events ...featurestore.Event) {
	t.Helper()
	schema := s.svc.Catalog().Schema
	r := &featurestore.Record{}
	for k, v := range attrs {
		r.SetAttr(k, v)
	}
	for i := range events {
		ev := &events[i]
		if ev.Time.IsZero() {
			ev.Time = testNow.Add(-time.Hour)
		}
		r.Apply(schema, ev, testNow)
	}
	store.mu.Lock()
	store.recs[id] = r
	store.mu.Unlock()
}

func TestDecide(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, nil)
	seed(t, s, store, "carter", nil, featurestore.Event{Type: "cart_add"}, featurestore.Event{Type: "cart_add"})
	seed(t, s, store, "vera", map[string]featurestore.Value{"tier": featurestore.String("gold")}, featurestore.Event{Type: "cart_add"})

	tests := []struct {
		name     string
		body     string
		offers   []string
		fallback map[string]any
		content  map[string]any // of the first offer
	}{
		{"unknown customer gets the fallback", `{"customer_id":"anon-1","channel":"web"}`, []string{}, map[string]any{"headline": "Welcome back"}, nil},
		{"channel without defaults", `{"customer_id":"anon-1","channel":"call_center"}`, []string{}, nil, nil},
		{"cart on web", `{"customer_id":"carter","channel":"web"}`, []string{"cart-reminder"}, nil, map[string]any{"headline": "Your cart is waiting", "cta_url": "/cart"}},
		{"cart on app", `{"customer_id":"carter","channel":"app","limit":5}`, []string{"cart-reminder", "app-only"}, nil, map[string]any{"title": "Your cart is waiting", "deeplink": "shop://cart"}},
		{"vip on call center", `{"customer_id":"vera","channel":"call_center"}`, []string{"vip-lounge"}, nil, map[string]any{"script": "Offer lounge access"}},
		{"placement and context", `{"customer_id":"anon-1","channel":"web","placement":"checkout","context":{"page":"checkout","n":[1,{"a":null}]},"limit":3}`, []string{"checkout-upsell"}, nil, map[string]any{"headline": "Add a gift card"}},
		{"placement without context", `{"customer_id":"anon-1","channel":"web","placement":"checkout"}`, []string{}, map[string]any{"headline": "Welcome back"}, nil},
		{"nulls are absent", `{"customer_id":"carter","channel":"web","placement":null,"context":null,"limit":null,"explain":null}`, []string{"cart-reminder"}, nil, nil},
		{"escaped strings", `{"customer_id":"c\u0061rter","channel":"w\u0065b"}`, []string{"cart-reminder"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decode(t, do(s, "POST", "/v1/decide", tt.body))
			if diff := cmp.Diff(tt.offers, offerIDs(d)); diff != "" {
				t.Errorf("offers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.fallback, d.Fallback); diff != "" {
				t.Errorf("fallback (-want +got):\n%s", diff)
			}
			if tt.content != nil {
				if diff := cmp.Diff(tt.content, d.Offers[0].Content); diff != "" {
					t.Errorf("content (-want +got):\n%s", diff)
				}
			}
			if d.Degraded {
				t.Error("degraded: got true, want false")
			}
			if d.Segments != nil || d.Explain != nil {
				t.Errorf("segments and explain without explain: got %v %v", d.Segments, d.Explain)
			}
			id, err := xid.FromString(d.DecisionID)
			if err != nil || !id.Time().Equal(testNow) {
				t.Errorf("decision_id %q: %v, time %v, want an xid at %v", d.DecisionID, err, id.Time(), testNow)
			}
		})
	}
}

func TestDecideResponseShape(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, func(o *testOptions) { o.Catalog.Load().Version = "0123456789ab" })
	seed(t, s, store, "vera", map[string]featurestore.Value{"tier": featurestore.String("gold")})
	r := do(s, "POST", "/v1/decide", `{"customer_id":"vera","channel":"web"}`)
	d := decode(t, r)
	want := `{"decision_id":"` + d.DecisionID + `","customer_id":"vera","channel":"web","catalog_version":"0123456789ab","offers":[{"id":"vip-lounge","name":"VIP lounge \"early\" access","score":50,"content":{"headline":"Welcome to the lounge"}}],"degraded":false}` + "\n"
	if r.body != want {
		t.Errorf("body:\ngot  %s\nwant %s", r.body, want)
	}
}

func TestDecideExplain(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, nil)
	seed(t, s, store, "vera", map[string]featurestore.Value{"lifetime_value": featurestore.Number(1500)}, featurestore.Event{Type: "cart_add"})
	d := decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"vera","channel":"web","explain":true}`))
	if diff := cmp.Diff([]string{"vip"}, d.Segments); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
	type x struct {
		ID, Reason, Rule string
		Eligible         bool
	}
	var got []x
	for _, e := range d.Explain {
		got = append(got, x{e.OfferID, e.Reason, e.Rule, e.Eligible})
	}
	want := []x{
		{"cart-reminder", "not_eligible", `!("vip" in segments)`, false},
		{"vip-lounge", "chosen", "", true},
		{"checkout-upsell", "wrong_placement", "", false},
		{"app-only", "wrong_channel", "", false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("explain (-want +got):\n%s\nbody: %+v", diff, d.Explain)
	}
	if d.Explain[1].Score != 50 {
		t.Errorf("score of the chosen offer: got %v, want 50", d.Explain[1].Score)
	}

	// An anonymous visitor is in no segment: segments is [], not null.
	r := do(s, "POST", "/v1/decide", `{"customer_id":"anon","channel":"web","explain":true}`)
	if !strings.Contains(r.body, `"segments":[],"explain":[`) {
		t.Errorf("empty segments: got %s", r.body)
	}
}

func TestDecideDegraded(t *testing.T) {
	tests := []struct {
		name   string
		store  func() *fakeStore
		reason string
	}{
		{"store error", func() *fakeStore { s := newFakeStore(); s.err = errors.New("disk on fire"); return s }, "error"},
		{"store timeout", func() *fakeStore { s := newFakeStore(); s.delay = time.Minute; return s }, "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := metrics.NewSet()
			s := newTestServer(t, tt.store(), func(o *testOptions) { o.StoreTimeout = 20 * time.Millisecond; o.Metrics = set })
			start := time.Now()
			d := decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"c-1","channel":"web"}`))
			if took := time.Since(start); took > time.Second {
				t.Errorf("decision took %v, want about the store timeout", took)
			}
			if !d.Degraded || d.Reason == nil || *d.Reason != tt.reason {
				t.Errorf("degraded, reason: got %v, %v; want true, %q", d.Degraded, d.Reason, tt.reason)
			}
			if d.Fallback["headline"] != "Welcome back" {
				t.Errorf("fallback: got %v, want the web default", d.Fallback)
			}
			var m bytes.Buffer
			set.WritePrometheus(&m)
			for _, cause := range []string{"deadline", "error", "overload"} {
				want := 0
				if cause == tt.reason {
					want = 1
				}
				if line := fmt.Sprintf("nextbest_decisions_degraded_total{cause=%q} %d\n", cause, want); !strings.Contains(m.String(), line) {
					t.Errorf("metrics lack %q:\n%s", line, m.String())
				}
			}
		})
	}
}

func TestDecideUsesCache(t *testing.T) {
	store := &cachingStore{fakeStore: newFakeStore()}
	s := newTestServer(t, store, nil)
	seed(t, s, store.fakeStore, "carter", nil, featurestore.Event{Type: "cart_add"})
	d := decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"carter","channel":"web"}`))
	if diff := cmp.Diff([]string{"cart-reminder"}, offerIDs(d)); diff != "" {
		t.Errorf("offers (-want +got):\n%s", diff)
	}
	if store.hits.Load() != 1 {
		t.Errorf("cache hits: got %d, want 1", store.hits.Load())
	}
	// A miss falls through to Load.
	d = decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"anon","channel":"web"}`))
	if len(d.Offers) != 0 || d.Degraded || d.Reason != nil {
		t.Errorf("miss: got %+v", d)
	}
}

func TestDecideInvalid(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	long := strings.Repeat("x", 257)
	tests := []struct {
		name, body, want string
	}{
		{"empty body", ``, "request body is empty"},
		{"malformed", `{"customer_id":`, "malformed JSON"},
		{"trailing garbage", `{"customer_id":"c","channel":"web"} x`, "malformed JSON"},
		{"NaN", `{"customer_id":"c","channel":"web","limit":NaN}`, "malformed JSON"},
		{"bad number", `{"customer_id":"c","channel":"web","limit":1.2.3}`, "malformed JSON"},
		{"bad escape", `{"customer_id":"c\q","channel":"web"}`, "malformed JSON"},
		{"control char", "{\"customer_id\":\"c\x01\",\"channel\":\"web\"}", "malformed JSON"},
		{"invalid UTF-8", "{\"customer_id\":\"c\xff\",\"channel\":\"web\"}", "UTF-8"},
		{"too deep", strings.Repeat("[", 1000) + strings.Repeat("]", 1000), "malformed JSON"},
		{"array body", `[{"customer_id":"c","channel":"web"}]`, "must be a JSON object, got an array"},
		{"unknown field", `{"customer_id":"c","channel":"web","customer":"x"}`, `customer: unknown field; allowed: customer_id, channel`},
		{"repeated field", `{"customer_id":"c","channel":"web","channel":"app"}`, "channel: given more than once"},
		{"missing customer id", `{"channel":"web"}`, "customer_id: is required"},
		{"empty customer id", `{"customer_id":"","channel":"web"}`, "customer_id: must not be empty"},
		{"null customer id", `{"customer_id":null,"channel":"web"}`, "customer_id: must be a string, got null"},
		{"numeric customer id", `{"customer_id":42,"channel":"web"}`, "customer_id: must be a string, got a number"},
		{"long customer id", `{"customer_id":"` + long + `","channel":"web"}`, "customer_id: longer than 256 bytes"},
		{"missing channel", `{"customer_id":"c"}`, "channel: is required"},
		{"unknown channel", `{"customer_id":"c","channel":"fax"}`, `channel: "fax" is not one of web, app, call_center`},
		{"channel case", `{"customer_id":"c","channel":"Web"}`, `channel: "Web" is not one of`},
		{"placement type", `{"customer_id":"c","channel":"web","placement":3}`, "placement: must be a string, got a number"},
		{"long placement", `{"customer_id":"c","channel":"web","placement":"` + long + `"}`, "placement: longer than 256 bytes"},
		{"context array", `{"customer_id":"c","channel":"web","context":[1]}`, "context: must be an object, got an array"},
		{"context string", `{"customer_id":"c","channel":"web","context":"x"}`, "context: must be an object, got a string"},
		{"context overflow", `{"customer_id":"c","channel":"web","context":{"x":[1e400]}}`, "context: number 1e400 is out of range"},
		{"limit zero", `{"customer_id":"c","channel":"web","limit":0}`, "limit: must be an integer from 1 to 50, got 0"},
		{"limit too big", `{"customer_id":"c","channel":"web","limit":51}`, "limit: must be an integer from 1 to 50, got 51"},
		{"limit fraction", `{"customer_id":"c","channel":"web","limit":1.5}`, "limit: must be an integer"},
		{"limit huge", `{"customer_id":"c","channel":"web","limit":1e30}`, "limit: must be an integer"},
		{"limit string", `{"customer_id":"c","channel":"web","limit":"3"}`, "limit: must be a number, got a string"},
		{"explain string", `{"customer_id":"c","channel":"web","explain":"yes"}`, "explain: must be a bool, got a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(s, "POST", "/v1/decide", tt.body)
			if r.status != 400 {
				t.Fatalf("status: got %d, want 400 (body %s)", r.status, r.body)
			}
			code, msg := errorBody(t, r)
			if code != CodeInvalidRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("error: got %q %q, want invalid_request containing %q", code, msg, tt.want)
			}
		})
	}
}

// TestDecideReload shows a request sees the catalog in force when it
// starts: a swapped pointer takes effect on the next request.
func TestDecideReload(t *testing.T) {
	var catalog *atomic.Pointer[rules.Catalog]
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { catalog = o.Catalog })
	spec := loadCatalog(t, "../rules/testdata/valid/spec.yaml")
	if r := do(s, "POST", "/v1/decide", `{"customer_id":"c","channel":"email"}`); r.status != 400 {
		t.Fatalf("email before reload: got %d, want 400", r.status)
	}
	c := spec.Load()
	c.Version = "0123456789ab" // as a registry sets it before publishing
	catalog.Store(c)
	d := decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"c","channel":"email"}`))
	if d.Channel != "email" || d.Fallback != nil {
		t.Errorf("email after reload: got %+v", d)
	}
	if d.CatalogVersion == nil || *d.CatalogVersion != c.Version {
		t.Errorf("catalog_version after reload: got %v, want %q", d.CatalogVersion, c.Version)
	}
}

func TestDecideContextLimit(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	list := strings.Repeat(`1,`, maxContextValues-2) + "1"
	ok := do(s, "POST", "/v1/decide", `{"customer_id":"c","channel":"web","context":{"l":[`+list+`]}}`)
	if ok.status != 200 {
		t.Errorf("a context of %d values: %d %s", maxContextValues, ok.status, ok.body)
	}
	r := do(s, "POST", "/v1/decide", `{"customer_id":"c","channel":"web","context":{"l":[`+list+`,1]}}`)
	if _, msg := errorBody(t, r); r.status != 400 || !strings.Contains(msg, "context: more than 1024 values") {
		t.Errorf("a context of %d values: %d %s, want 400", maxContextValues+1, r.status, r.body)
	}
}
