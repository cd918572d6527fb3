package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// testNow is the clock of every test server.
var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeStore is an in-memory RecordStore.
type fakeStore struct {
	mu      sync.Mutex
	recs    map[string]*featurestore.Record
	err     error         // returned by every call when set
	delay   time.Duration // Load waits this long, or until its deadline
	panics  bool          // Load panics
	mutates int           // calls to Mutate that applied something

	seen map[string]bool // customer + "\x00" + event id applied
}

func newFakeStore() *fakeStore { return &fakeStore{recs: make(map[string]*featurestore.Record)} }

func (s *fakeStore) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	if s.panics {
		panic("fake store panics")
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	r, ok := s.recs[id]
	if !ok {
		return nil, featurestore.ErrNotFound
	}
	return r, nil
}

func (s *fakeStore) Mutate(_ context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make([]*featurestore.Record, len(muts))
	for i, m := range muts {
		r := s.recs[m.CustomerID].Clone()
		if d := m.Dedupe; d != nil { // event ids never expire here
			d.Reset()
			for j, id := range d.IDs {
				d.Seen[j] = s.seen[m.CustomerID+"\x00"+id]
			}
		}
		m.Apply(r)
		if d := m.Dedupe; d != nil {
			if s.seen == nil {
				s.seen = map[string]bool{}
			}
			for _, id := range d.IDs {
				s.seen[m.CustomerID+"\x00"+id] = true
			}
		}
		s.recs[m.CustomerID] = r
		out[i] = r
	}
	s.mutates++
	return out, nil
}

// cachingStore adds the in-memory tier the decide handler asks first.
type cachingStore struct {
	*fakeStore
	hits atomic.Int64
}

func (s *cachingStore) Cached(id string) (featurestore.Packed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if ok {
		s.hits.Add(1)
	}
	if r == nil {
		return nil, ok
	}
	return r.Pack(), ok // under the lock, the only use of Pack
}

// MutateVisible is Mutate: the fake has no durability to wait for.
func (s *cachingStore) MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error) {
	recs, err := s.Mutate(ctx, muts)
	return recs, func() error { return nil }, err
}

func loadCatalog(t testing.TB, path string) *atomic.Pointer[rules.Catalog] {
	t.Helper()
	c, err := rules.LoadFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	var p atomic.Pointer[rules.Catalog]
	p.Store(c)
	return &p
}

// testOptions are a test server's options and its service's, so one
// edit func sets both.
type testOptions struct {
	Options // the server's

	// The service's (nextbest.Options); the service is observed with
	// Observe of the server's Metrics and StoreErrors and logs to its
	// Logger.
	Catalog       *atomic.Pointer[rules.Catalog]
	Store         nextbest.RecordStore
	Cache         nextbest.Cache
	Engine        *decision.Engine
	Now           func() time.Time
	StoreTimeout  time.Duration
	MutateTimeout time.Duration
	Stats         nextbest.StatsRecorder
	StatsStore    featurestore.StatsStore
}

// newTestServer returns a server on testdata/catalog.yaml and store;
// edit changes the options before New.
func newTestServer(t testing.TB, store nextbest.RecordStore, edit func(*testOptions)) *Server {
	t.Helper()
	opts := testOptions{
		Catalog: loadCatalog(t, "testdata/catalog.yaml"),
		Store:   store,
		Now:     func() time.Time { return testNow },
	}
	if cs, ok := store.(*cachingStore); ok {
		opts.Cache = cs
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := newServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newServer makes the service of opts and a server on it.
func newServer(opts testOptions) (*Server, error) {
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StoreErrors == nil {
		opts.StoreErrors = NewStoreErrorLog(opts.Logger)
	}
	svc, err := nextbest.New(nextbest.Options{
		Catalog:       opts.Catalog,
		Store:         opts.Store,
		Cache:         opts.Cache,
		Engine:        opts.Engine,
		Stats:         opts.Stats,
		StatsReader:   opts.StatsStore,
		Now:           opts.Now,
		StoreTimeout:  opts.StoreTimeout,
		MutateTimeout: opts.MutateTimeout,
		Logger:        opts.Logger,
		Observer:      Observe(opts.Metrics, opts.StoreErrors),
	})
	if err != nil {
		return nil, err
	}
	opts.Service = svc
	return New(opts.Options)
}

type response struct {
	status int
	body   string
	header *fasthttp.ResponseHeader
}

// do runs one request through the server's real handler.
func do(s *Server, method, uri, body string, header ...string) response {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	if body != "" {
		req.SetBodyString(body)
		req.Header.SetContentType("application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s.Handler()(&ctx)
	h := &fasthttp.ResponseHeader{}
	ctx.Response.Header.CopyTo(h)
	return response{status: ctx.Response.StatusCode(), body: string(ctx.Response.Body()), header: h}
}

// errorBody decodes a JSON error response.
func errorBody(t *testing.T, r response) (code, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e.Error.Code, e.Error.Message
}

func TestNewValidates(t *testing.T) {
	cat := loadCatalog(t, "testdata/catalog.yaml")
	tests := []struct {
		name string
		opts testOptions
		want string
	}{
		{"no catalog", testOptions{Store: newFakeStore()}, "catalog is required"},
		{"empty catalog", testOptions{Catalog: new(atomic.Pointer[rules.Catalog]), Store: newFakeStore()}, "catalog is required"},
		{"no store", testOptions{Catalog: cat}, "store is required"},
		{"negative body", testOptions{Catalog: cat, Store: newFakeStore(), Options: Options{MaxBodyBytes: -1}}, "MaxBodyBytes"},
		{"negative events", testOptions{Catalog: cat, Store: newFakeStore(), Options: Options{MaxEventsPerRequest: -1}}, "MaxEventsPerRequest"},
		{"negative timeout", testOptions{Catalog: cat, Store: newFakeStore(), StoreTimeout: -1}, "StoreTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newServer(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "service is required") {
		t.Errorf("New without a service: got %v, want an error containing %q", err, "service is required")
	}
	s, err := newServer(testOptions{Catalog: cat, Store: newFakeStore()})
	if err != nil {
		t.Fatal(err)
	}
	if s.maxBody != DefaultMaxBodyBytes || s.maxEvents != DefaultMaxEventsPerRequest {
		t.Errorf("defaults not applied: %+v", s)
	}
}

func TestRoutes(t *testing.T) {
	s := newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Ready = func(context.Context) error { return errors.New("store is opening") }
		o.MaxBodyBytes = 64
	})
	tests := []struct {
		name           string
		method, uri    string
		body           string
		header         []string
		status         int
		code, contains string
		allow          string
	}{
		{name: "healthz", method: "GET", uri: "/healthz", status: 200, contains: `"ok"`},
		{name: "readyz not ready", method: "GET", uri: "/readyz", status: 503, code: CodeNotReady, contains: "store is opening"},
		{name: "unknown route", method: "GET", uri: "/v2/decide", status: 404, code: CodeNotFound},
		{name: "decide GET", method: "GET", uri: "/v1/decide", status: 405, code: CodeMethodNotAllowed, allow: "POST"},
		{name: "events PUT", method: "PUT", uri: "/v1/events", body: "{}", status: 405, code: CodeMethodNotAllowed, allow: "POST"},
		{name: "healthz POST", method: "POST", uri: "/healthz", status: 405, code: CodeMethodNotAllowed, allow: "GET, HEAD"},
		{name: "customers POST", method: "POST", uri: "/v1/customers/c-1", body: "{}", status: 405, code: CodeMethodNotAllowed, allow: "GET, HEAD, PUT, DELETE"},
		{name: "customers no id", method: "GET", uri: "/v1/customers/", status: 400, code: CodeInvalidRequest, contains: "customer id: is required"},
		{name: "customers nested", method: "GET", uri: "/v1/customers/a/b", status: 404, code: CodeNotFound},
		{name: "customer id too long", method: "GET", uri: "/v1/customers/" + strings.Repeat("x", 257), status: 400, code: CodeInvalidRequest, contains: "longer than 256"},
		{name: "text body", method: "POST", uri: "/v1/decide", body: `{}`, header: []string{"Content-Type", "text/plain"}, status: 415, code: CodeUnsupportedMediaType},
		{name: "form body", method: "POST", uri: "/v1/events", body: `{}`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: CodeUnsupportedMediaType},
		{name: "json with charset", method: "POST", uri: "/v1/decide", body: `{}`, header: []string{"Content-Type", "application/json; charset=utf-8"}, status: 400, code: CodeInvalidRequest},
		{name: "vendor json", method: "POST", uri: "/v1/decide", body: `{}`, header: []string{"Content-Type", "application/vnd.api+json"}, status: 400, code: CodeInvalidRequest},
		{name: "decide too large", method: "POST", uri: "/v1/decide", body: `{"customer_id":"` + strings.Repeat("x", 64) + `"}`, status: 413, code: CodePayloadTooLarge, contains: "64 bytes"},
		{name: "events too large", method: "POST", uri: "/v1/events", body: strings.Repeat(" ", 65), status: 413, code: CodePayloadTooLarge},
		{name: "put too large", method: "PUT", uri: "/v1/customers/c-1", body: strings.Repeat(" ", 65), status: 413, code: CodePayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(s, tt.method, tt.uri, tt.body, tt.header...)
			if r.status != tt.status {
				t.Fatalf("status: got %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			if ct := string(r.header.ContentType()); ct != contentTypeJSON {
				t.Errorf("content type: got %q, want %q", ct, contentTypeJSON)
			}
			if tt.code != "" {
				if code, _ := errorBody(t, r); code != tt.code {
					t.Errorf("code: got %q, want %q", code, tt.code)
				}
			}
			if !strings.Contains(r.body, tt.contains) {
				t.Errorf("body: got %s, want it to contain %q", r.body, tt.contains)
			}
			if got := string(r.header.Peek("Allow")); got != tt.allow {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	for _, ready := range []func(context.Context) error{nil, func(context.Context) error { return nil }} {
		s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Ready = ready })
		if r := do(s, "GET", "/readyz", ""); r.status != 200 {
			t.Errorf("readyz: got %d %s, want 200", r.status, r.body)
		}
	}
}

// TestReadyzWarnings checks warnings are in /readyz's body and leave it
// 200; not being ready still wins.
func TestReadyzWarnings(t *testing.T) {
	tests := []struct {
		name     string
		ready    func(context.Context) error
		warnings func() []string
		status   int
		body     string
	}{
		{"none", nil, func() []string { return nil }, 200, `{"status":"ready"}` + "\n"},
		{"one", nil, func() []string { return []string{`catalog file "c.yaml" is not in force`} }, 200, `{"status":"ready","warnings":["catalog file \"c.yaml\" is not in force"]}` + "\n"},
		{"not ready", func(context.Context) error { return errors.New("store is opening") }, func() []string { return []string{"w"} }, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Ready, o.Warnings = tt.ready, tt.warnings })
			r := do(s, "GET", "/readyz", "")
			if r.status != tt.status || (tt.body != "" && string(r.body) != tt.body) {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.body)
			}
		})
	}
}

func TestPanicBecomes500(t *testing.T) {
	store := newFakeStore()
	store.panics = true
	s := newTestServer(t, store, nil)
	r := do(s, "POST", "/v1/decide", `{"customer_id":"c-1","channel":"web"}`)
	if r.status != 500 {
		t.Fatalf("status: got %d, want 500", r.status)
	}
	if code, msg := errorBody(t, r); code != CodeInternal || strings.Contains(msg, "panic") {
		t.Errorf("error: got %q %q, want internal without the cause", code, msg)
	}
}

func TestHandleError(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fasthttp.ErrBodyTooLarge, 413, CodePayloadTooLarge},
		{&fasthttp.ErrSmallBuffer{}, 431, CodeHeadersTooLarge},
		{errors.New("cannot parse request line"), 400, CodeInvalidRequest},
		{timeoutErr{}, 408, CodeRequestTimeout},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		s.HandleError(&ctx, tt.err)
		r := response{status: ctx.Response.StatusCode(), body: string(ctx.Response.Body())}
		if r.status != tt.status {
			t.Errorf("%v: status got %d, want %d", tt.err, r.status, tt.status)
		}
		if code, _ := errorBody(t, r); code != tt.code {
			t.Errorf("%v: code got %q, want %q", tt.err, code, tt.code)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestHandleExpect(t *testing.T) {
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.MaxBodyBytes = 100 })
	tests := []struct {
		name        string
		contentType string
		length      int
		want        int
	}{
		{"small JSON", "application/json", 100, fasthttp.StatusContinue},
		{"no type", "", 10, fasthttp.StatusContinue},
		{"too large", "application/json", 101, fasthttp.StatusRequestEntityTooLarge},
		{"not JSON", "text/csv", 10, fasthttp.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		if tt.contentType != "" {
			ctx.Request.Header.SetContentType(tt.contentType)
		}
		ctx.Request.Header.SetContentLength(tt.length)
		if got := s.HandleExpect(&ctx); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
		if tt.want != fasthttp.StatusContinue && !json.Valid(ctx.Response.Body()) {
			t.Errorf("%s: body %q is not JSON", tt.name, ctx.Response.Body())
		}
	}
}
