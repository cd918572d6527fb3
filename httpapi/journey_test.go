package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
)

// journalStore is a fakeStore that keeps a timeline per customer and
// deletes, as a nextbest.Journal and nextbest.Eraser.
type journalStore struct {
	*fakeStore
	timelines map[string][]featurestore.TimelineEntry
	deleted   []string
	eraseErr  error
}

func (s *journalStore) Timeline(_ context.Context, id string, limit int) ([]featurestore.TimelineEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	tl := s.timelines[id]
	if limit > 0 && len(tl) > limit {
		tl = tl[:limit]
	}
	return tl, nil
}

func (s *journalStore) EventIDs(context.Context, string) ([]string, error) { return nil, nil }

func (s *journalStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eraseErr != nil {
		return s.eraseErr
	}
	delete(s.recs, id)
	delete(s.timelines, id)
	s.deleted = append(s.deleted, id)
	return nil
}

func newJourneyServer(t *testing.T, length int) (*Server, *journalStore) {
	t.Helper()
	st := &journalStore{fakeStore: newFakeStore(), timelines: map[string][]featurestore.TimelineEntry{}}
	svc, err := nextbest.New(nextbest.Options{Catalog: loadCatalog(t, "testdata/catalog.yaml"), Store: st, Journal: st, Eraser: st,
		TimelineLength: length, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func TestCustomerTimeline(t *testing.T) {
	s, st := newJourneyServer(t, 20)
	for i := range 30 {
		st.timelines["c/1"] = append(st.timelines["c/1"], featurestore.TimelineEntry{At: testNow.Add(-time.Duration(i) * time.Minute).UnixNano(),
			Kind: featurestore.TimelineEvent, Type: "page_view", Channel: "web", Properties: map[string]any{"path": "/"}})
	}
	st.timelines["c/1"][0] = featurestore.TimelineEntry{At: testNow.UnixNano(), Kind: featurestore.TimelineEvent, Type: "impression", Channel: "email", OfferID: "o", DecisionID: "d"}
	st.timelines["c/1"][1] = featurestore.TimelineEntry{At: testNow.UnixNano(), Kind: featurestore.TimelineProfile, Type: featurestore.ProfileChange, Properties: map[string]any{"tier": "gold"}}
	tests := []struct {
		uri     string
		status  int
		entries int
	}{
		{"/v1/customers/c%2F1/timeline", 200, 20}, // the default, 50, is over the length kept
		{"/v1/customers/c%2F1/timeline?limit=3", 200, 3},
		{"/v1/customers/c%2F1/timeline?limit=20", 200, 20},
		{"/v1/customers/nobody/timeline", 200, 0},
		{"/v1/customers/c%2F1/timeline?limit=0", 400, 0},
		{"/v1/customers/c%2F1/timeline?limit=21", 400, 0},
		{"/v1/customers/c%2F1/timeline?limit=x", 400, 0},
		{"/v1/customers/c%2F1/timeline?limit=", 400, 0},
	}
	for _, tt := range tests {
		r := do(s, "GET", tt.uri, "")
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.uri, r.status, r.body, tt.status)
			continue
		}
		if tt.status != 200 {
			if code, msg := errorBody(t, r); code != CodeInvalidRequest || !strings.HasPrefix(msg, "limit: must be a whole number from 1 to 20") {
				t.Errorf("%s: %s %q", tt.uri, code, msg)
			}
			continue
		}
		var body struct {
			CustomerID string `json:"customer_id"`
			Entries    []map[string]any
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Entries) != tt.entries || body.Entries == nil {
			t.Errorf("%s: %d entries, want %d", tt.uri, len(body.Entries), tt.entries)
		}
	}
	r := do(s, "GET", "/v1/customers/c%2F1/timeline?limit=3", "")
	now, twoAgo := testNow.UTC().Format(time.RFC3339Nano), testNow.Add(-2*time.Minute).UTC().Format(time.RFC3339Nano)
	want := `{"customer_id":"c/1","entries":[` +
		`{"kind":"offer","type":"impression","at":"` + now + `","channel":"email","offer_id":"o","decision_id":"d","outcome":"impression"},` +
		`{"kind":"profile","type":"profile","at":"` + now + `","changes":{"tier":"gold"}},` +
		`{"kind":"event","type":"page_view","at":"` + twoAgo + `","channel":"web","properties":{"path":"/"}}]}` + "\n"
	if r.body != want {
		t.Errorf("body\n%s\nwant\n%s", r.body, want)
	}
	// An escaped slash in an id is the id's: this is the customer
	// "x/timeline", not a timeline.
	if r := do(s, "GET", "/v1/customers/x%2Ftimeline", ""); r.status != 200 || !strings.Contains(r.body, `"customer_id":"x/timeline"`) {
		t.Errorf("GET /v1/customers/x%%2Ftimeline: %d %s, want the customer x/timeline", r.status, r.body)
	}
	st.err = errors.New("down")
	if r := do(s, "GET", "/v1/customers/c%2F1/timeline", ""); r.status != 503 {
		t.Errorf("store down: %d %s, want 503", r.status, r.body)
	}
	off, _ := newJourneyServer(t, -1)
	if r := do(off, "GET", "/v1/customers/c/timeline", ""); r.status != 404 {
		t.Errorf("timelines off: %d %s, want 404", r.status, r.body)
	}
}

func TestCustomerDelete(t *testing.T) {
	s, st := newJourneyServer(t, 0)
	st.recs["c/1"] = &featurestore.Record{Attrs: map[string]featurestore.Value{"tier": featurestore.String("gold")}}
	for _, id := range []string{"c%2F1", "c%2F1", "never-seen"} {
		if r := do(s, "DELETE", "/v1/customers/"+id, ""); r.status != 204 || r.body != "" {
			t.Errorf("DELETE %s: %d %q, want 204 and no body", id, r.status, r.body)
		}
	}
	if r := do(s, "GET", "/v1/customers/c%2F1", ""); !strings.Contains(r.body, `"known":false`) {
		t.Errorf("GET after DELETE: %s, want an unknown customer", r.body)
	}
	if r := do(s, "GET", "/v1/customers/c%2F1/export", ""); r.status != 200 || !strings.Contains(r.body, `"known":false`) || !strings.Contains(r.body, `"timeline":[]`) {
		t.Errorf("export after DELETE: %d %s", r.status, r.body)
	}
	st.eraseErr = errors.New("down")
	if r := do(s, "DELETE", "/v1/customers/c", ""); r.status != 503 {
		t.Errorf("DELETE with the store down: %d %s, want 503", r.status, r.body)
	}
	if r := do(s, "DELETE", "/v1/customers/c%zz", ""); r.status != 400 {
		t.Errorf("DELETE of a bad id: %d %s, want 400", r.status, r.body)
	}
}

// TestCustomerIDEndingInASuffix: an id whose escaped slash makes the
// unescaped path look like a sub-route is the customer of that id: GET
// reads them, and POST (merge's method) is not allowed on a customer.
func TestCustomerIDEndingInASuffix(t *testing.T) {
	s, _ := newJourneyServer(t, 20)
	r := do(s, "POST", "/v1/customers/x%2Fmerge", `{"from":"anon-1"}`)
	if r.status != 405 {
		t.Fatalf("POST /v1/customers/x%%2Fmerge: %d %s, want 405", r.status, r.body)
	}
	r = do(s, "GET", "/v1/customers/x%2Ftimeline", "")
	if r.status != 200 || !strings.Contains(r.body, `"customer_id":"x/timeline"`) {
		t.Fatalf("GET /v1/customers/x%%2Ftimeline: %d %s, want the customer x/timeline", r.status, r.body)
	}
}

// TestExportKeyedAggregates: an export holds what op top counts (values
// and counts) and what op distinct keeps (hashes), per window bucket.
func TestExportKeyedAggregates(t *testing.T) {
	start := time.Date(2026, 12, 5, 4, 30, 0, 0, time.UTC)
	st := &featurestore.AggState{Keys: []featurestore.KeyCount{{Start: start.Unix(), Key: "outdoor", N: 3}}}
	top := aggregate(st, featurestore.OpTop)
	if len(top.Values) != 1 || top.Values[0].Value != "outdoor" || top.Values[0].Count != 3 || !top.Values[0].Start.Equal(start) || top.Hashes != nil {
		t.Errorf("top: %+v", top)
	}
	st = &featurestore.AggState{Keys: []featurestore.KeyCount{{N: 0xbeef}}}
	distinct := aggregate(st, featurestore.OpDistinct)
	if len(distinct.Hashes) != 1 || distinct.Hashes[0].Hash != "beef" || distinct.Hashes[0].Start != nil || distinct.Values != nil {
		t.Errorf("distinct: %+v", distinct)
	}
}
