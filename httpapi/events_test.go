package httpapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// features returns id's features in the fake store at testNow.
func features(t *testing.T, s *Server, store *fakeStore, id string) map[string]string {
	t.Helper()
	store.mu.Lock()
	rec := store.recs[id]
	store.mu.Unlock()
	schema := s.svc.Catalog().Schema
	f := rec.Features(schema, testNow, nil)
	out := make(map[string]string)
	for i, feat := range schema.Features() {
		out[feat.Name] = f[i].String()
	}
	return out
}

func TestEvents(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, nil)
	tests := []struct {
		name     string
		body     string
		accepted int
		ignored  int // events whose type nothing reads
	}{
		{"batch", `{"events":[
			{"event_id":"e1","customer_id":"c-1","type":"purchase","channel":"store","ts":"2026-11-22T09:00:00Z","properties":{"amount":120.5}},
			{"customer_id":"c-1","type":"purchase","properties":{"amount":10}},
			{"customer_id":"c-2","type":"cart_add","ts":"2026-11-22T09:00:00.123+01:00"},
			{"customer_id":"c-2","type":"page.view-2_x","properties":null}]}`, 4, 1},
		{"single event", `{"customer_id":"c-3","type":"product_view","properties":{"category":"shoes","extra":{"deep":[1,2]}}}`, 1, 0},
		{"nulls are absent", `{"events":[{"customer_id":"c-3","type":"cart_add","event_id":null,"channel":null,"ts":null,"properties":null}]}`, 1, 0},
		{"outcomes", `{"events":[
			{"customer_id":"c-4","type":"impression","offer_id":"vip-lounge","channel":"web","decision_id":"d-1"},
			{"customer_id":"c-4","type":"click","offer_id":"vip-lounge","channel":"web"},
			{"customer_id":"c-4","type":"conversion","offer_id":"vip-lounge","channel":"app","properties":{"value":12.5}},
			{"customer_id":"c-4","type":"dismiss","offer_id":"cart-reminder","channel":"web","decision_id":null},
			{"customer_id":"c-4","type":"conversion","channel":"call_center"}]}`, 5, 0},
		{"misspelt types", `{"events":[
			{"customer_id":"c-5","type":"cart-add"},
			{"customer_id":"c-5","type":"cart_add"},
			{"customer_id":"c-5","type":"cart-add","event_id":"e-5"},
			{"customer_id":"c-5","type":"purchases"}]}`, 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(s, "POST", "/v1/events", tt.body)
			if r.status != 202 {
				t.Fatalf("status: got %d, want 202 (body %s)", r.status, r.body)
			}
			if want := fmt.Sprintf(`{"accepted":%d,"ignored":%d}`+"\n", tt.accepted, tt.ignored); r.body != want {
				t.Errorf("body: got %q, want %q", r.body, want)
			}
		})
	}
	for id, want := range map[string]map[string]string{
		"c-1": {"purchases_30d": "2", "spend_90d": "130.5", "last_purchase_at": "2026-11-22T10:00:00Z"},
		"c-2": {"cart_items": "1"},
		"c-3": {"last_category": `"shoes"`, "cart_items": "1"},
	} {
		got := features(t, s, store, id)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s.%s: got %s, want %s", id, k, got[k], v)
			}
		}
	}
}

func TestEventsInvalid(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, func(o *testOptions) { o.MaxEventsPerRequest = 3 })
	ok := `{"customer_id":"c-1","type":"purchase","properties":{"amount":1}}`
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed", `{"events":[`, 400, "malformed JSON"},
		{"not an object", `"purchase"`, 400, "must be a JSON object, got a string"},
		{"events not an array", `{"events":{}}`, 400, "events: must be an array, got an object"},
		{"events empty", `{"events":[]}`, 400, "events: must not be empty"},
		{"events and more", `{"events":[` + ok + `],"customer_id":"c"}`, 400, "customer_id: unknown field; allowed: events"},
		{"too many events", `{"events":[` + strings.Repeat(ok+",", 3) + ok + `]}`, 413, "4 events, at most 3 per request"},
		{"event not an object", `{"events":[` + ok + `,[]]}`, 400, "events[1]: must be an object, got an array"},
		{"unknown event field", `{"events":[` + ok + `,{"customer_id":"c","type":"x","amount":3}]}`, 400, "events[1].amount: unknown field; allowed: event_id, customer_id, type, channel, ts, properties, offer_id, decision_id, customer_token"},
		{"single unknown field", `{"evnts":[]}`, 400, "evnts: unknown field; allowed: events, event_id"},
		{"missing customer", `{"events":[{"type":"purchase"}]}`, 400, "events[0].customer_id: is required"},
		{"numeric customer", `{"events":[{"customer_id":7,"type":"purchase"}]}`, 400, "events[0].customer_id: must be a string, got a number"},
		{"long customer", `{"events":[{"customer_id":"` + strings.Repeat("x", 257) + `","type":"purchase"}]}`, 400, "events[0].customer_id: longer than 256 bytes"},
		{"long event id", `{"events":[{"event_id":"` + strings.Repeat("x", 257) + `","customer_id":"c","type":"purchase"}]}`, 400, "events[0].event_id: longer than 256 bytes"},
		{"event id over the dedupe bound", `{"events":[{"event_id":"` + strings.Repeat("x", 129) + `","customer_id":"c","type":"purchase"}]}`, 400, "events[0].event_id: longer than 128 bytes (an idempotency key: a UUID, a ULID or a hash fits)"},
		{"missing type", `{"events":[{"customer_id":"c"}]}`, 400, "events[0].type: is required"},
		{"type pattern", `{"events":[{"customer_id":"c","type":"Purchase"}]}`, 400, `events[0].type: "Purchase" must match`},
		{"type too long", `{"events":[{"customer_id":"c","type":"` + strings.Repeat("a", 65) + `"}]}`, 400, "events[0].type:"},
		{"channel type", `{"events":[{"customer_id":"c","type":"x","channel":1}]}`, 400, "events[0].channel: must be a string"},
		{"ts format", `{"events":[` + ok + `,` + ok + `,{"customer_id":"c","type":"x","ts":"2026-11-22 10:00"}]}`, 400, `events[2].ts: "2026-11-22 10:00" is not an RFC 3339 time`},
		{"ts number", `{"events":[{"customer_id":"c","type":"x","ts":1700000000}]}`, 400, "events[0].ts: must be a string, got a number"},
		{"ts in the future", `{"events":[{"customer_id":"c","type":"x","ts":"2026-11-23T10:00:01Z"}]}`, 400, "events[0].ts: \"2026-11-23T10:00:01Z\" is more than 24h0m0s ahead"},
		{"ts before 1970", `{"events":[{"customer_id":"c","type":"x","ts":"0001-01-01T00:00:00Z"}]}`, 400, "before 1970"},
		{"properties array", `{"events":[{"customer_id":"c","type":"x","properties":[1]}]}`, 400, "events[0].properties: must be an object, got an array"},
		{"wrong property type", `{"events":[` + ok + `,{"customer_id":"c","type":"purchase","properties":{"amount":"12"}}]}`, 400, `events[1].properties: property "amount" (feeds feature "spend_90d"): got a string, want number`},
		{"overflowing property", `{"events":[{"customer_id":"c","type":"x","properties":{"n":-1e999}}]}`, 400, "events[0].properties: number -1e999 is out of range"},
		{"single event error", `{"customer_id":"c","type":"purchase","ts":"yesterday"}`, 400, `ts: "yesterday" is not an RFC 3339 time`},
		{"outcome without offer", `{"customer_id":"c","type":"click","channel":"web"}`, 400, "offer_id: required for a click event"},
		{"outcome of an unknown offer", `{"customer_id":"c","type":"impression","offer_id":"nope","channel":"web"}`, 400, `offer_id: "nope" is not an offer of the catalog`},
		{"outcome without channel", `{"customer_id":"c","type":"impression","offer_id":"vip-lounge"}`, 400, "channel: an impression event needs the catalog channel it happened on, one of web, app, call_center"},
		{"outcome on an unknown channel", `{"customer_id":"c","type":"dismiss","offer_id":"vip-lounge","channel":"store"}`, 400, "channel: a dismiss event needs the catalog channel"},
		{"offer on a behavior event", `{"customer_id":"c","type":"purchase","offer_id":"vip-lounge"}`, 400, "offer_id: only outcome events"},
		{"offer id not a string", `{"customer_id":"c","type":"click","offer_id":3,"channel":"web"}`, 400, "offer_id: must be a string, got a number"},
		{"decision id too long", `{"customer_id":"c","type":"click","offer_id":"vip-lounge","channel":"web","decision_id":"` + strings.Repeat("d", 257) + `"}`, 400, "decision_id: longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(s, "POST", "/v1/events", tt.body)
			if r.status != tt.status {
				t.Fatalf("status: got %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			if _, msg := errorBody(t, r); !strings.Contains(msg, tt.want) {
				t.Errorf("message: got %q, want it to contain %q", msg, tt.want)
			}
		})
	}
	if store.mutates != 0 || len(store.recs) != 0 {
		t.Errorf("invalid requests changed the store: %d mutations, %d records", store.mutates, len(store.recs))
	}
}

func TestEventsStoreDown(t *testing.T) {
	store := newFakeStore()
	store.err = errors.New("disk full")
	s := newTestServer(t, store, nil)
	r := do(s, "POST", "/v1/events", `{"customer_id":"c","type":"purchase"}`)
	if r.status != 503 {
		t.Fatalf("status: got %d, want 503 (body %s)", r.status, r.body)
	}
	if code, _ := errorBody(t, r); code != CodeStoreUnavailable {
		t.Errorf("code: got %q, want %q", code, CodeStoreUnavailable)
	}
	if got := string(r.header.Peek("Retry-After")); got != "1" {
		t.Errorf("Retry-After: got %q, want 1", got)
	}
	if strings.Contains(r.body, "disk full") {
		t.Errorf("body leaks the store's error: %s", r.body)
	}
}

// TestEventsWithoutFeatures accepts events no feature reads without
// touching the store.
func TestEventsWithoutFeatures(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, nil)
	r := do(s, "POST", "/v1/events", `{"customer_id":"c","type":"email.open"}`)
	if r.status != 202 || store.mutates != 0 {
		t.Errorf("got %d %s with %d mutations, want 202 and none", r.status, r.body, store.mutates)
	}
}
