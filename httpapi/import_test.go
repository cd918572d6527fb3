package httpapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
)

func TestParseImportLine(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	cat := s.svc.Catalog()
	tests := []struct {
		name    string
		line    string
		wantErr string // "" for a line accepted
		attrs   map[string]featurestore.Value
		events  []string // types
	}{
		{"profile", `{"customer_id":"c-1","features":{"tier":"gold","lifetime_value":12}}`, "",
			map[string]featurestore.Value{"tier": featurestore.String("gold"), "lifetime_value": featurestore.Number(12)}, nil},
		{"events", `{"customer_id":"c-1","events":[{"type":"purchase","ts":"2026-11-01T10:00:00Z","properties":{"amount":40}},{"type":"cart_add","customer_id":"c-1"}]}` + "\r\n", "",
			nil, []string{"purchase", "cart_add"}},
		{"null resets a feature", `{"customer_id":"c-1","features":{"tier":null}}`, "",
			map[string]featurestore.Value{"tier": featurestore.String("none")}, nil},
		// The checks of PUT /v1/customers/{id}.
		{"unknown feature", `{"customer_id":"c-1","features":{"tierr":"gold"}}`, "features.tierr: unknown feature", nil, nil},
		{"derived feature", `{"customer_id":"c-1","features":{"cart_items":3}}`, `features.cart_items: is derived from "cart_add" events and cannot be set`, nil, nil},
		{"wrong type", `{"customer_id":"c-1","features":{"lifetime_value":"lots"}}`, "features.lifetime_value: ", nil, nil},
		{"features not an object", `{"customer_id":"c-1","features":[1]}`, "features: must be an object, got an array", nil, nil},
		// The checks of POST /v1/events.
		{"bad ts", `{"customer_id":"c-1","events":[{"type":"cart_add"},{"type":"cart_add","ts":"yesterday"}]}`, `events[1].ts: "yesterday" is not an RFC 3339 time`, nil, nil},
		{"bad type", `{"customer_id":"c-1","events":[{"type":"Cart Add"}]}`, `events[0].type: "Cart Add" must match`, nil, nil},
		{"unknown event field", `{"customer_id":"c-1","events":[{"type":"cart_add","when":1}]}`, "events[0].when: unknown field", nil, nil},
		{"event of another customer", `{"customer_id":"c-1","events":[{"type":"cart_add","customer_id":"c-2"}]}`, "events[0].customer_id: must be the line's customer_id (or left out)", nil, nil},
		{"event not an object", `{"customer_id":"c-1","events":["cart_add"]}`, "events[0]: must be an object, got a string", nil, nil},
		{"events not an array", `{"customer_id":"c-1","events":{}}`, "events: must be an array, got an object", nil, nil},
		// The line itself.
		{"no customer", `{"features":{"tier":"gold"}}`, "customer_id: is required", nil, nil},
		{"empty customer", `{"customer_id":"","features":{"tier":"gold"}}`, "customer_id: must not be empty", nil, nil},
		{"long customer", `{"customer_id":"` + strings.Repeat("x", maxIDLen+1) + `","features":{}}`, "customer_id: longer than 256 bytes", nil, nil},
		{"nothing to import", `{"customer_id":"c-1"}`, "a line sets features, events or both", nil, nil},
		{"unknown field", `{"customer_id":"c-1","profile":{}}`, "profile: unknown field; allowed: customer_id, features, events", nil, nil},
		{"malformed", `{"customer_id":"c-1",`, "malformed JSON", nil, nil},
		{"not an object", `[1,2]`, "must be a JSON object, got an array", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseImportLine([]byte(tt.line), cat, testNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				var ae *apiError
				if errors.As(err, &ae) {
					t.Errorf("error %q carries its HTTP code: the message is the field and why", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.CustomerID != "c-1" {
				t.Errorf("customer = %q, want c-1", l.CustomerID)
			}
			if diff := cmp.Diff(tt.attrs, l.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			var types []string
			for _, e := range l.Events {
				if e.CustomerID != "c-1" {
					t.Errorf("event %s of %q, want the line's customer", e.Type, e.CustomerID)
				}
				types = append(types, e.Type)
			}
			if diff := cmp.Diff(tt.events, types); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImportRoute(t *testing.T) {
	body := `{"customer_id":"c-1","features":{"tier":"gold"},"events":[{"type":"cart_add","event_id":"e-1"}]}` + "\n" +
		`{"customer_id":"c-2","features":{"tierr":"gold"}}` + "\n" +
		`{"customer_id":"c-3","events":[{"type":"click","channel":"web"}]}` + "\n" +
		`{"customer_id":"c-4","features":{"tier":"silver"}}` + "\n"
	type summary struct {
		Lines, Imported, Skipped, Events int
		Duplicates                       int `json:"duplicate_events"`
		Errors                           []struct {
			Line    int
			Message string
		}
		Error *struct{ Code, Message string }
	}
	tests := []struct {
		name   string
		query  string
		status int
		want   summary
		tiers  map[string]string // after the import; "" for no record
	}{
		{"skip", "", 200, summary{Lines: 4, Imported: 2, Skipped: 2, Events: 1, Errors: []struct {
			Line    int
			Message string
		}{
			{2, "features.tierr: unknown feature"},
			{3, "events[0].offer_id: required for a click event"},
		}}, map[string]string{"c-1": "gold", "c-2": "", "c-3": "", "c-4": "silver"}},
		{"fail", "?on_error=fail", 400, summary{Lines: 2, Imported: 1, Skipped: 1, Events: 1, Errors: []struct {
			Line    int
			Message string
		}{
			{2, "features.tierr: unknown feature"},
		}, Error: &struct{ Code, Message string }{"invalid_request", "line 2: features.tierr: unknown feature"}},
			map[string]string{"c-1": "gold", "c-2": "", "c-4": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore()
			s := newTestServer(t, store, nil)
			r := do(s, "POST", importPath+tt.query, body, "Content-Type", "application/x-ndjson")
			if r.status != tt.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tt.status)
			}
			var got summary
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			cat := s.svc.Catalog()
			tier, _ := cat.Schema.Lookup("tier")
			for id, want := range tt.tiers {
				rec := store.recs[id]
				if want == "" {
					if rec != nil {
						t.Errorf("%s: written, want nothing of its line", id)
					}
					continue
				}
				if got := rec.Features(cat.Schema, testNow, nil)[tier.Index].Str; got != want {
					t.Errorf("%s: tier %q, want %q", id, got, want)
				}
			}

			// A re-import overwrites the profiles; the event with an id
			// is not applied twice.
			if tt.query == "" {
				r = do(s, "POST", importPath, body, "Content-Type", "application/x-ndjson")
				got = summary{}
				if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != 200 || got.Imported != 2 || got.Events != 0 || got.Duplicates != 1 {
					t.Errorf("re-import: %d %s, want 200 with 2 imported, 0 events, 1 duplicate", r.status, r.body)
				}
			}
		})
	}
}

func TestImportRouteRefusals(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, func(o *testOptions) { o.MaxImportBytes = 256 })
	line := `{"customer_id":"c-1","features":{"tier":"gold"}}` + "\n"
	tests := []struct {
		name   string
		query  string
		body   string
		header []string
		status int
		code   string
	}{
		{"bad on_error", "?on_error=ignore", line, nil, 400, CodeInvalidRequest},
		{"not NDJSON", "", line, []string{"Content-Type", "text/csv"}, 415, CodeUnsupportedMediaType},
		{"over its own limit", "", strings.Repeat(line, 10), nil, 413, CodePayloadTooLarge},
		{"GET", "", "", nil, 405, CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.name == "GET" {
				method = "GET"
			}
			r := do(s, method, importPath+tt.query, tt.body, tt.header...)
			if code, msg := errorBody(t, r); r.status != tt.status || code != tt.code {
				t.Errorf("got %d %s %q, want %d %s", r.status, code, msg, tt.status, tt.code)
			}
		})
	}
	if len(store.recs) != 0 {
		t.Errorf("refused imports wrote %d customers", len(store.recs))
	}

	// The store failing: 503 with Retry-After and what was done.
	store.err = errors.New("disk on fire")
	r := do(s, "POST", importPath, line, "Content-Type", "application/x-ndjson")
	if code, _ := errorBody(t, r); r.status != 503 || code != CodeStoreUnavailable || len(r.header.Peek("Retry-After")) == 0 {
		t.Errorf("store down: %d %s, want 503 store_unavailable with Retry-After", r.status, r.body)
	}
}

// FuzzParseImportLine feeds bytes to the import's line parser: it never
// panics, refuses with a message (no HTTP code), and a line it accepts
// names one customer whose events are all of that customer and valid
// against the schema.
func FuzzParseImportLine(f *testing.F) {
	s := newTestServer(f, newFakeStore(), nil)
	cat := s.svc.Catalog()
	for _, seed := range []string{
		`{"customer_id":"c-1","features":{"tier":"gold"},"events":[{"type":"purchase","ts":"2026-11-01T10:00:00Z","properties":{"amount":40}}]}`,
		`{"customer_id":"c-1","events":[{"type":"cart_add","customer_id":"c-1","event_id":"e"}]}`,
		`{"customer_id":"c-1","features":{"tier":null,"interests":["a"],"birthday":"2000-01-01T00:00:00Z"}}`,
		`{"customer_id":"c-1"}`, `[]`, ``, "{\"customer_id\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := ParseImportLine(line, cat, testNow)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) || err.Error() == "" {
				t.Fatalf("refusal %#v is not a plain message", err)
			}
			return
		}
		if l.CustomerID == "" || len(l.CustomerID) > maxIDLen {
			t.Fatalf("accepted customer id %q", l.CustomerID)
		}
		if l.Attrs == nil && l.Events == nil {
			t.Fatalf("accepted %q with nothing to import", line)
		}
		for i := range l.Events {
			e := l.Events[i]
			if e.CustomerID != l.CustomerID {
				t.Fatalf("event %d of %q in the line of %q", i, e.CustomerID, l.CustomerID)
			}
			if err := cat.Schema.CheckEvent(&e); err != nil {
				t.Fatalf("event %d accepted but invalid: %v", i, err)
			}
			if e.Time.After(testNow.Add(maxFuture)) {
				t.Fatalf("event %d at %v, past the bound", i, e.Time)
			}
		}
		for name := range l.Attrs {
			if f, ok := cat.Schema.Lookup(name); !ok || f.From != nil {
				t.Fatalf("accepted attribute %q", name)
			}
		}
	})
}
