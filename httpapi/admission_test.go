package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
)

// gatedStore blocks Load of the customer "slow" until release is closed,
// so a test can hold a decision in flight as long as it needs.
type gatedStore struct {
	*fakeStore
	entered chan struct{}
	release chan struct{}
}

func (s *gatedStore) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	if id == "slow" {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.fakeStore.Load(ctx, id)
}

// metricValue returns the value of the series named exactly series in
// the server's metrics, and whether it is there.
func metricValue(t *testing.T, s *Server, series string) (string, bool) {
	t.Helper()
	var b bytes.Buffer
	s.WriteMetrics(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return v, true
		}
	}
	return "", false
}

// requestCtx returns a request context as fasthttp hands it to the
// handler, read now.
func requestCtx(method, uri, body string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	if body != "" {
		req.SetBodyString(body)
		req.Header.SetContentType("application/json")
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, nil, nil)
	return ctx
}

// admissionServer returns a server whose classes each admit one request
// at a time with a short queue budget, and whose scheduler delay reads
// as delay (not the machine's, so a loaded CI host cannot shed).
func admissionServer(t *testing.T, store nextbest.RecordStore, delay time.Duration) *Server {
	t.Helper()
	one := Limit{InFlight: 1, Queue: 50 * time.Millisecond}
	s := newTestServer(t, store, func(o *testOptions) {
		o.StoreTimeout = time.Minute
		o.Admission = Admission{Decide: one, Events: one, Other: one}
	})
	s.admit.delay = new(atomic.Int64)
	s.admit.delay.Store(int64(delay))
	return s
}

// TestAdmissionSaturated fills each class's one slot with a request that
// stays in flight and checks what the next request of that class gets, that
// the other classes and the health routes are still served, the metrics,
// and that the class admits again as soon as the slot is free.
func TestAdmissionSaturated(t *testing.T) {
	fake := newFakeStore()
	store := &gatedStore{fakeStore: fake, entered: make(chan struct{}), release: make(chan struct{})}
	s := admissionServer(t, store, 0)
	seed(t, s, fake, "carter", nil, featurestore.Event{Type: "cart_add"})
	seed(t, s, fake, "slow", nil)

	// A decision held in flight in the store: the decide class is full.
	held := make(chan response)
	go func() { held <- do(s, "POST", "/v1/decide", `{"customer_id":"slow","channel":"web"}`) }()
	<-store.entered

	r := do(s, "POST", "/v1/decide", `{"customer_id":"carter","channel":"web","limit":2}`)
	if r.status != 200 {
		t.Fatalf("shed decide: status %d %s, want 200 with the fallback", r.status, r.body)
	}
	var d struct {
		CustomerID string            `json:"customer_id"`
		Channel    string            `json:"channel"`
		Offers     []json.RawMessage `json:"offers"`
		Fallback   map[string]string `json:"fallback"`
		Degraded   bool              `json:"degraded"`
		Reason     string            `json:"reason"`
	}
	if err := json.Unmarshal([]byte(r.body), &d); err != nil {
		t.Fatalf("shed decide body %s: %v", r.body, err)
	}
	if !d.Degraded || d.Reason != "overload" || len(d.Offers) != 0 || d.Fallback["headline"] != "Welcome back" || d.Channel != "web" || d.CustomerID != "carter" {
		t.Errorf("shed decide: got %s, want no offers, the web fallback, degraded for overload", r.body)
	}
	// A shed decide still validates what it answers.
	if r := do(s, "POST", "/v1/decide", `{"customer_id":"carter","channel":"fax"}`); r.status != 400 {
		t.Errorf("shed decide for an unknown channel: status %d, want 400", r.status)
	}

	// Other classes have their own slots; health checks and metrics none.
	for _, tt := range []struct{ method, uri, body string }{
		{"GET", "/healthz", ""},
		{"GET", "/readyz", ""},
		{"GET", "/metrics", ""},
		{"GET", "/v1/customers/carter", ""},
		{"POST", "/v1/events", `{"customer_id":"carter","type":"page_view"}`},
	} {
		if r := do(s, tt.method, tt.uri, tt.body); r.status >= 300 {
			t.Errorf("%s %s while decisions are saturated: status %d %s", tt.method, tt.uri, r.status, r.body)
		}
	}

	// Events and the other routes: 503 overloaded with Retry-After.
	for _, tt := range []struct {
		class       class
		method, uri string
		body        string
	}{
		{classEvents, "POST", "/v1/events", `{"customer_id":"carter","type":"page_view"}`},
		{classOther, "GET", "/v1/customers/carter", ""},
	} {
		g := &s.admit.gates[tt.class]
		g.slots <- struct{}{} // a request in flight
		r := do(s, tt.method, tt.uri, tt.body)
		if code, msg := errorBody(t, r); r.status != 503 || code != CodeOverloaded || string(r.header.Peek("Retry-After")) != "1" {
			t.Errorf("%s %s with its class full: %d %s %q (Retry-After %q), want 503 overloaded with Retry-After 1",
				tt.method, tt.uri, r.status, code, msg, r.header.Peek("Retry-After"))
		}
		<-g.slots // it finished: the next one is admitted at once
		if r := do(s, tt.method, tt.uri, tt.body); r.status >= 300 {
			t.Errorf("%s %s after its class emptied: %d %s", tt.method, tt.uri, r.status, r.body)
		}
	}

	close(store.release)
	if r := <-held; r.status != 200 || strings.Contains(r.body, `"degraded":true`) {
		t.Errorf("held decision: %d %s, want a normal decision", r.status, r.body)
	}
	if r := do(s, "POST", "/v1/decide", `{"customer_id":"carter","channel":"web"}`); r.status != 200 || strings.Contains(r.body, `"degraded":true`) {
		t.Errorf("decide after the load stopped: %d %s, want a normal decision at once", r.status, r.body)
	}

	for series, want := range map[string]string{
		`nextbest_requests_shed_total{class="decide"}`:        "2", // the fallback and the 400
		`nextbest_requests_shed_total{class="events"}`:        "1",
		`nextbest_requests_shed_total{class="other"}`:         "1",
		`nextbest_decisions_degraded_total{cause="overload"}`: "1",
		`nextbest_requests_in_flight{class="decide"}`:         "0",
	} {
		if got, ok := metricValue(t, s, series); !ok || got != want {
			t.Errorf("%s = %q (present %v), want %s", series, got, ok, want)
		}
	}
}

// syncingStore is a cached store whose writes wait for an fsync the test
// controls, as the embedded store's group commit does: MutateVisible
// applies at once (signalling applying first) and its durable func
// signals synced, then waits until fsync is closed.
type syncingStore struct {
	*cachingStore
	applying chan string   // the first customer of each write, before it is applied
	gate     chan struct{} // a write of customer "slow" is applied once this is closed
	syncing  chan struct{} // a write waits for its fsync
	fsync    chan struct{} // closed: the fsync is done
}

func (s *syncingStore) MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error) {
	s.applying <- muts[0].CustomerID
	if muts[0].CustomerID == "slow" {
		<-s.gate
	}
	recs, err := s.Mutate(ctx, muts)
	return recs, func() error {
		s.syncing <- struct{}{}
		<-s.fsync
		return nil
	}, err
}

// TestAdmissionEventsWaitingForFsync: an event request waiting for the
// fsync of its write holds no slot of the events class (one slot here),
// so the next request is admitted and its write shares the fsync instead
// of waiting at the door and being shed; neither is acknowledged before
// the fsync. A request still applying its events holds its slot: past
// the budget the next one is shed.
func TestAdmissionEventsWaitingForFsync(t *testing.T) {
	store := &syncingStore{
		cachingStore: &cachingStore{fakeStore: newFakeStore()},
		applying:     make(chan string, 4),
		gate:         make(chan struct{}),
		syncing:      make(chan struct{}),
		fsync:        make(chan struct{}),
	}
	s := newTestServer(t, store, func(o *testOptions) {
		o.Cache = store
		o.Admission = Admission{Events: Limit{InFlight: 1, Queue: 50 * time.Millisecond}}
	})
	s.admit.delay = new(atomic.Int64) // not the machine's scheduler
	g := &s.admit.gates[classEvents]

	answers := make(chan response, 2)
	for _, customer := range []string{"a", "b"} {
		go func() {
			answers <- do(s, "POST", "/v1/events", `{"customer_id":"`+customer+`","type":"cart_add"}`)
		}()
		<-store.applying
		<-store.syncing // applied; waiting for the fsync, without the slot
		if n := len(g.slots); n != 0 {
			t.Fatalf("customer %s waiting for the fsync: %d slots held, want 0", customer, n)
		}
	}
	select {
	case r := <-answers:
		t.Fatalf("answered before the fsync: %d %s", r.status, r.body)
	default:
	}
	close(store.fsync)
	for range 2 {
		if r := <-answers; r.status != 202 {
			t.Errorf("event request that waited for the shared fsync: %d %s, want 202", r.status, r.body)
		}
	}
	if got, _ := metricValue(t, s, `nextbest_requests_shed_total{class="events"}`); got != "0" {
		t.Errorf("shed while waiting for the fsync: %s, want 0", got)
	}

	// A request applying its events (CPU, the store's locks) holds the
	// slot: the next one waits for it, past its budget, and is shed.
	held := make(chan response)
	go func() { held <- do(s, "POST", "/v1/events", `{"customer_id":"slow","type":"cart_add"}`) }()
	<-store.applying
	r := do(s, "POST", "/v1/events", `{"customer_id":"c","type":"cart_add"}`)
	if code, _ := errorBody(t, r); r.status != 503 || code != CodeOverloaded {
		t.Errorf("event request while the slot's holder applies: %d %s, want 503 overloaded", r.status, r.body)
	}
	close(store.gate)
	<-store.syncing
	if r := <-held; r.status != 202 {
		t.Errorf("the slot's holder: %d %s, want 202", r.status, r.body)
	}
	if n := len(g.slots); n != 0 {
		t.Errorf("%d slots held after every request ended, want 0", n)
	}
}

// TestAdmissionQueueBudget: a request that has already waited its class's
// budget (for a CPU, by the scheduler's delay, or since it was read) is
// shed although slots are free; one that has not is served.
func TestAdmissionQueueBudget(t *testing.T) {
	fake := newFakeStore()
	tests := []struct {
		name     string
		delay    time.Duration
		wait     time.Duration // between the read and the handler
		method   string
		uri      string
		body     string
		shed     bool
		wantCode int
	}{
		{"decide, no delay", 0, 0, "POST", "/v1/decide", `{"customer_id":"carter","channel":"web"}`, false, 200},
		{"decide, scheduler delay past the budget", time.Second, 0, "POST", "/v1/decide", `{"customer_id":"carter","channel":"web"}`, true, 200},
		{"decide, read long ago", 0, 80 * time.Millisecond, "POST", "/v1/decide", `{"customer_id":"carter","channel":"web"}`, true, 200},
		{"events, scheduler delay past the budget", time.Second, 0, "POST", "/v1/events", `{"customer_id":"carter","type":"page_view"}`, true, 503},
		{"events, no delay", 0, 0, "POST", "/v1/events", `{"customer_id":"carter","type":"page_view"}`, false, 202},
		{"health is never shed", time.Second, 0, "GET", "/healthz", "", false, 200},
		{"metrics are never shed", time.Second, 0, "GET", "/metrics", "", false, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := admissionServer(t, fake, tt.delay)
			seed(t, s, fake, "carter", nil)
			ctx := requestCtx(tt.method, tt.uri, tt.body)
			time.Sleep(tt.wait)
			s.Handler()(ctx)
			status, body := ctx.Response.StatusCode(), string(ctx.Response.Body())
			shed := strings.Contains(body, `"reason":"overload"`) || strings.Contains(body, CodeOverloaded)
			if status != tt.wantCode || shed != tt.shed {
				t.Errorf("got %d %s, want %d and shed %v", status, body, tt.wantCode, tt.shed)
			}
		})
	}
}

func TestAdmissionOff(t *testing.T) {
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Admission.Off = true })
	if s.admit != nil {
		t.Fatal("admission control on with Off set")
	}
	if r := do(s, "POST", "/v1/events", `{"customer_id":"carter","type":"page_view"}`); r.status != 202 {
		t.Errorf("events without admission control: %d %s", r.status, r.body)
	}
	if _, ok := metricValue(t, s, `nextbest_requests_shed_total{class="decide"}`); ok {
		t.Error("shed counters exported with admission control off")
	}
}

func TestAdmissionDefaultsAndValidation(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	for c, want := range defaultLimits() {
		g := s.admit.gates[c]
		if cap(g.slots) != want.InFlight || g.queue != want.Queue {
			t.Errorf("%s: in flight %d, queue %v; want the defaults %d, %v", class(c), cap(g.slots), g.queue, want.InFlight, want.Queue)
		}
	}
	s = newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Admission.Events = Limit{InFlight: -1, Queue: -1}
	})
	if g := s.admit.gates[classEvents]; g.slots != nil || g.queue >= 0 {
		t.Errorf("events with negative limits: slots %v, queue %v; want no bound", g.slots, g.queue)
	}
	if r := do(s, "POST", "/v1/events", `{"customer_id":"carter","type":"page_view"}`); r.status != 202 {
		t.Errorf("events without bounds: %d %s", r.status, r.body)
	}
	_, err := newServer(testOptions{Catalog: loadCatalog(t, "testdata/catalog.yaml"), Store: newFakeStore(), Options: Options{Admission: Admission{Decide: Limit{InFlight: 1 << 30}}}})
	if err == nil || !strings.Contains(err.Error(), "Admission.Decide.InFlight") {
		t.Errorf("New with 2^30 decisions in flight: got %v, want an error naming Admission.Decide.InFlight", err)
	}
}

func TestQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.002, 0.004, 0.008}
	tests := []struct {
		name   string
		counts []uint64
		q      float64
		min    uint64
		want   time.Duration
	}{
		{"no samples", []uint64{0, 0, 0, 0}, 0.9, 0, 0},
		{"all in the first bucket", []uint64{10, 0, 0, 0}, 0.9, 0, 0},
		{"p90 in the second bucket", []uint64{5, 4, 1, 0}, 0.9, 0, time.Millisecond},
		{"p90 past the bulk", []uint64{5, 3, 1, 1}, 0.9, 0, 2 * time.Millisecond},
		{"median", []uint64{1, 1, 6, 2}, 0.5, 0, 2 * time.Millisecond},
		{"one sample in the last bucket", []uint64{0, 0, 0, 1}, 0.9, 0, 4 * time.Millisecond},
		{"too few samples to tell", []uint64{0, 0, 0, 7}, 0.5, 8, 0},
		{"enough samples", []uint64{0, 0, 0, 8}, 0.5, 8, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := quantile(buckets, tt.counts, tt.q, tt.min); got != tt.want {
			t.Errorf("%s: quantile(%v, %v) = %v, want %v", tt.name, tt.counts, tt.q, got, tt.want)
		}
	}
}

// TestSchedMonitorSeesBusyCPUs keeps every CPU busy with goroutines that
// never block while others wake up every millisecond and must wait for
// one: the process-wide monitor must report a scheduler delay, and none
// once the load is gone (no timing bound: it polls for up to 10 s).
func TestSchedMonitorSeesBusyCPUs(t *testing.T) {
	sample := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		t.Fatalf("runtime metric %s is not a histogram in this Go: admission control would not see the scheduler", schedMetric)
	}
	newTestServer(t, newFakeStore(), nil) // starts the monitor
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() { // spinners
			for x := 0; ; x++ {
				if x%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		})
	}
	for range 64 {
		wg.Go(func() { // sleepers: each wake-up waits for a spinner's time slice
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})
	}
	seen := waitFor(10*time.Second, func() bool { return schedDelay.Load() > 0 })
	close(stop)
	wg.Wait()
	if !seen {
		t.Fatal("the scheduler delay stayed 0 with every CPU busy")
	}
	if !waitFor(10*time.Second, func() bool { return schedDelay.Load() == 0 }) {
		t.Errorf("the scheduler delay is still %v after the load stopped", time.Duration(schedDelay.Load()))
	}
}

// waitFor polls cond until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// BenchmarkAdmit is what admission control adds to a request that is
// admitted at once: the budget check and a slot taken and given back (the
// handler reads the clock anyway).
func BenchmarkAdmit(b *testing.B) {
	ad := newAdmitter(Admission{}, vm.NewSet())
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		g, ok := ad.admit(classDecide, now, now)
		if !ok {
			b.Fatal("shed")
		}
		g.release()
	}
}
