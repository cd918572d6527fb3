package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
)

// fakeScanner lists the fake store's customers, ordered by id, as the
// embedded store does.
type fakeScanner struct{ store *fakeStore }

func (f fakeScanner) ScanCustomers(ctx context.Context, cursor string, count int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	f.store.mu.Lock()
	ids := slices.Sorted(maps.Keys(f.store.recs))
	f.store.mu.Unlock()
	i, _ := slices.BinarySearch(ids, cursor)
	if i < len(ids) && ids[i] == cursor {
		i++
	}
	ids = ids[i:]
	if len(ids) <= count {
		return ids, "", nil
	}
	return ids[:count], ids[count-1], nil
}

// newBatchServer is newTestServer with the store's customers listed.
func newBatchServer(t testing.TB, store *fakeStore) *Server {
	t.Helper()
	set := metrics.NewSet()
	log := slog.New(slog.DiscardHandler)
	errs := NewStoreErrorLog(log)
	svc, err := nextbest.New(nextbest.Options{Catalog: loadCatalog(t, "testdata/catalog.yaml"), Store: store,
		Now: func() time.Time { return testNow }, Customers: fakeScanner{store}, Observer: Observe(set, errs)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Service: svc, Metrics: set, Logger: log, StoreErrors: errs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// batchAnswer splits a batch's answer into its decide lines and the
// summary's fields.
func batchAnswer(t *testing.T, r response) ([]string, map[string]any) {
	t.Helper()
	if r.status != 200 || string(r.header.ContentType()) != "application/x-ndjson" {
		t.Fatalf("batch: %d %s %s", r.status, r.header.ContentType(), r.body)
	}
	lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	var last struct{ Summary map[string]any }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Summary == nil {
		t.Fatalf("last line %q: not a summary (%v)", lines[len(lines)-1], err)
	}
	return lines[:len(lines)-1], last.Summary
}

func TestDecideBatchRoute(t *testing.T) {
	store := newFakeStore()
	s := newBatchServer(t, store)
	for _, id := range []string{"c-1", "c-2", "c-3", "c-4"} {
		tier := "none"
		if id == "c-2" || id == "c-4" {
			tier = "gold"
		}
		seed(t, s, store, id, map[string]featurestore.Value{"tier": featurestore.String(tier)})
	}
	// A segment: the VIPs, each answered as /v1/decide answers.
	lines, sum := batchAnswer(t, do(s, "POST", batchPath, `{"channel":"web","segment":"vip","page_size":1}`))
	if len(lines) != 2 {
		t.Fatalf("%d decisions, want the 2 VIPs: %q", len(lines), lines)
	}
	for i, l := range lines {
		// decode refuses a field a decide answer has not.
		d := decode(t, response{status: 200, body: l})
		if want := []string{"c-2", "c-4"}[i]; d.CustomerID != want || len(d.Offers) == 0 || d.Channel != "web" {
			t.Errorf("line %d: %s with %v on %s, want %s with an offer on web", i, d.CustomerID, offerIDs(d), d.Channel, want)
		}
	}
	want := map[string]any{"scanned": 4.0, "decided": 2.0, "offered": 2.0, "fallback": 0.0, "deferred": 0.0, "errors": 0.0, "duplicates": 0.0,
		"suppressed": map[string]any{"channel_ineligible": 0.0, "contact_limit": 0.0}, "done": true, "last": "c-4", "cursor": nil}
	if !equalJSON(sum, want) {
		t.Errorf("summary %v, want %v", sum, want)
	}

	// Resumable in parts: one page, then the rest after its cursor.
	_, sum = batchAnswer(t, do(s, "POST", batchPath, `{"channel":"web","segment":"vip","page_size":2,"max_pages":1}`))
	if sum["done"] != false || sum["cursor"] != "c-2" || sum["last"] != "c-2" {
		t.Fatalf("first part: summary %v, want not done, cursor c-2, last c-2", sum)
	}
	lines, sum = batchAnswer(t, do(s, "POST", batchPath, `{"channel":"web","segment":"vip","page_size":2,"cursor":"c-2","after":"c-2"}`))
	if len(lines) != 1 || !strings.Contains(lines[0], `"customer_id":"c-4"`) || sum["done"] != true {
		t.Errorf("second part: %q, summary %v; want c-4, done", lines, sum)
	}

	// A list, in its order, unknown customers from the defaults.
	lines, sum = batchAnswer(t, do(s, "POST", batchPath, `{"channel":"web","customer_ids":["c-4","nobody","c-1"],"limit":2,"context":{"page":"home"}}`))
	var ids []string
	for _, l := range lines {
		ids = append(ids, decode(t, response{status: 200, body: l}).CustomerID)
	}
	if !slices.Equal(ids, []string{"c-4", "nobody", "c-1"}) || sum["cursor"] != nil || sum["done"] != true {
		t.Errorf("list: %v, summary %v", ids, sum)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestDecideBatchRefusals(t *testing.T) {
	store := newFakeStore()
	s := newBatchServer(t, store)
	noScan := newTestServer(t, store, nil)
	tests := []struct {
		name, body string
		s          *Server
		want       string
	}{
		{"empty", ``, s, "request body is empty"},
		{"neither", `{"channel":"web"}`, s, "customer_ids, segment: exactly one of them is required"},
		{"both", `{"channel":"web","segment":"vip","customer_ids":["a"]}`, s, "exactly one of them"},
		{"unknown segment", `{"channel":"web","segment":"lost"}`, s, `segment: "lost" is not one of vip, shopper`},
		{"unknown channel", `{"channel":"emial","segment":"vip"}`, s, `channel: "emial" is not one of`},
		{"no channel", `{"segment":"vip"}`, s, "channel: is required"},
		{"customer_id", `{"channel":"web","segment":"vip","customer_id":"c-1"}`, s, "customer_id: unknown field"},
		{"ids not strings", `{"channel":"web","customer_ids":["a",2]}`, s, "customer_ids[1]: must be a string"},
		{"ids not an array", `{"channel":"web","customer_ids":"a"}`, s, "customer_ids: must be an array"},
		{"bad limit", `{"channel":"web","segment":"vip","limit":0}`, s, "limit: must be an integer from 1 to 50"},
		{"bad page size", `{"channel":"web","segment":"vip","page_size":0}`, s, "page_size: must be an integer from 1 to 10000"},
		{"bad max pages", `{"channel":"web","segment":"vip","max_pages":-1}`, s, "max_pages: must be an integer"},
		{"cursor of a list", `{"channel":"web","customer_ids":["a"],"cursor":"x"}`, s, "a list of customer_ids has none"},
		{"bad context", `{"channel":"web","segment":"vip","context":[]}`, s, "context: must be an object"},
		{"no scan", `{"channel":"web","segment":"vip"}`, noScan, "this node's store cannot list its customers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(tt.s, "POST", batchPath, tt.body)
			code, msg := errorBody(t, r)
			if r.status != 400 || code != CodeInvalidRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("%d %s %q, want 400 saying %q", r.status, code, msg, tt.want)
			}
		})
	}
}

// FuzzBatchRequest feeds bytes to the batch parser and the whole
// handler: neither may panic, a refusal is a client error, and the
// answer is JSON or NDJSON of JSON lines.
func FuzzBatchRequest(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"web","segment":"vip"}`,
		`{"channel":"web","customer_ids":["c-1","c-2"],"limit":2,"placement":"home","context":{"page":"x"}}`,
		`{"channel":"web","segment":"vip","cursor":"c-1","after":"c-1","max_pages":1,"page_size":10,"explain":true}`,
		`{"channel":"web","customer_ids":[]}`,
		`{"channel":"web","segment":null,"customer_ids":null}`,
	} {
		f.Add([]byte(seed))
	}
	s := newBatchServer(f, newFakeStore())
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := parseBatch(body, s.svc.Catalog()); err != nil {
			checkRejection(t, err)
		}
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI(batchPath)
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		s.Handler()(&ctx)
		st := ctx.Response.StatusCode()
		if st != 200 && st != 400 && st != 413 {
			t.Fatalf("status %d for %q: %s", st, body, ctx.Response.Body())
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(ctx.Response.Body()), "\n"), "\n") {
			if !json.Valid([]byte(l)) {
				t.Fatalf("answer line is not JSON: %s", l)
			}
		}
	})
}
