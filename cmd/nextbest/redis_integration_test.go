package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 4 end to end: nextbest nodes sharing one real redis-server.

func redisNode(t *testing.T, redisAddr string, extra ...string) *server {
	t.Helper()
	args := append([]string{"--addr", "127.0.0.1:0", "--catalog", testCatalog, "--redis", "redis://" + redisAddr + "/0"}, extra...)
	return startServerIn(t, ".", args...)
}

// rawDecide posts a decision without failing the test, for load loops.
func rawDecide(url, customer string) (status int, degraded bool, offers []string, err error) {
	body := fmt.Sprintf(`{"customer_id":%q,"channel":"web"}`, customer)
	resp, err := client.Post(url+"/v1/decide", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, false, nil, err
	}
	defer resp.Body.Close()
	var d decideResponse
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			return resp.StatusCode, false, nil, err
		}
	}
	return resp.StatusCode, d.Degraded, d.offerIDs(), nil
}

// TestRedisTwoNodesPropagation: an event posted to node A is reflected in
// a decision on node B, whose cache was warm for that customer, within
// 100 ms. The delay distribution over the trials is logged (and recorded
// in docs/benchmarks.md).
func TestRedisTwoNodesPropagation(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	a := redisNode(t, rs.Addr, "--store-timeout", "200ms")
	b := redisNode(t, rs.Addr, "--store-timeout", "200ms")

	trials := 1000
	if testing.Short() {
		trials = 100
	}
	delays := make([]time.Duration, 0, trials)
	for i := range trials {
		id := fmt.Sprintf("p-%d", i)
		// Warm B's cache: the customer is known to B before the event.
		if d := b.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web"}`, id)); slices.Contains(d.offerIDs(), "apology") {
			t.Fatalf("%s: apology before any support call", id)
		}
		start := time.Now()
		a.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"support_call","channel":"call_center"}`, id), 202)
		for {
			_, _, offers, err := rawDecide(b.url, id)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(offers, "apology") {
				break
			}
			if time.Since(start) > 100*time.Millisecond {
				t.Fatalf("trial %d: node B still shows %v %v after the event was acknowledged by A", i, offers, time.Since(start))
			}
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	q := func(p float64) time.Duration { return delays[int(p*float64(len(delays)-1))] }
	t.Logf("propagation A→B over %d trials (event ack + first decision on B showing it): p50 %v, p90 %v, p99 %v, max %v",
		len(delays), q(0.5), q(0.9), q(0.99), delays[len(delays)-1])
}

// TestRedisFrozenStoreDeadline freezes Redis with SIGSTOP under a decide
// load of cold customers: no decision waits longer than the store
// deadline plus a margin, and they are degraded; after SIGCONT they are
// whole again.
func TestRedisFrozenStoreDeadline(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	const deadline = 20 * time.Millisecond
	const margin = 150 * time.Millisecond // loopback HTTP and scheduling on a busy 2-core CI machine
	n := redisNode(t, rs.Addr, "--store-timeout", deadline.String())

	var worst atomic.Int64
	var served, degraded, failures atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				id := fmt.Sprintf("cold-%d", seq.Add(1)) // always a cache miss
				start := time.Now()
				status, deg, _, err := rawDecide(n.url, id)
				took := time.Since(start)
				if err != nil || status != 200 {
					failures.Add(1)
					continue
				}
				served.Add(1)
				if deg {
					degraded.Add(1)
				}
				for {
					w := worst.Load()
					if int64(took) <= w || worst.CompareAndSwap(w, int64(took)) {
						break
					}
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	worst.Store(0)
	rs.Freeze()
	frozenAt := served.Load()
	time.Sleep(time.Second)
	rs.Thaw()
	stop()
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("%d decisions failed while Redis was frozen; want 200 with degraded", f)
	}
	if served.Load()-frozenAt < 10 {
		t.Errorf("only %d decisions answered during the freeze", served.Load()-frozenAt)
	}
	if degraded.Load() == 0 {
		t.Error("no decision was marked degraded while Redis was frozen")
	}
	if w := time.Duration(worst.Load()); w > deadline+margin {
		t.Errorf("slowest decision during the freeze took %v, want at most the store deadline %v + %v", w, deadline, margin)
	} else {
		t.Logf("slowest decision while frozen: %v (deadline %v); %d answered, %d degraded", w, deadline, served.Load()-frozenAt, degraded.Load())
	}
	// The degraded answers are counted, as the deadline's.
	if _, m := n.call("GET", "/metrics", ""); !strings.Contains(m, `nextbest_decisions_degraded_total{cause="deadline"} `) || strings.Contains(m, `nextbest_decisions_degraded_total{cause="deadline"} 0`+"\n") {
		t.Errorf("/metrics does not count the degraded decisions as past the deadline:\n%s", m)
	}
	// Thawed: whole decisions again.
	waitUntil(t, 5*time.Second, "decisions whole after SIGCONT", func() bool {
		_, deg, _, err := rawDecide(n.url, fmt.Sprintf("warm-%d", time.Now().UnixNano()))
		return err == nil && !deg
	})
}

func waitUntil(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisOutageLosesNoAcknowledgedEvent kills redis-server (run with
// appendonly yes, appendfsync always) under a steady decide + events load,
// restarts it, and checks: decisions kept answering 200 (degraded), events
// got 503, nothing crashed, the node recovered without a restart, and
// every acknowledged event is applied exactly once.
func TestRedisOutageLosesNoAcknowledgedEvent(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	n := redisNode(t, rs.Addr, "--store-timeout", "50ms", "--redis-timeout", "500ms")

	const customers = 20
	type event struct{ id, customer string }
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // event id → customer
		pending  []event               // sent, not acknowledged: retried with the same id
		got503   atomic.Int64
		gotOther atomic.Int64
		decides  atomic.Int64
		degraded atomic.Int64
		badDec   atomic.Int64
		seq      atomic.Int64
	)
	post := func(e event) int {
		body := fmt.Sprintf(`{"event_id":%q,"customer_id":%q,"type":"page_view","channel":"web"}`, e.id, e.customer)
		resp, err := client.Post(n.url+"/v1/events", "application/json", strings.NewReader(body))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			gotOther.Add(1)
		}
		return resp.StatusCode
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				var e event
				mu.Lock()
				if len(pending) > 0 && seq.Load()%3 == 0 {
					e, pending = pending[0], pending[1:]
				} else {
					k := seq.Add(1)
					e = event{id: fmt.Sprintf("ev-%d-%d", w, k), customer: fmt.Sprintf("o-%d", k%customers)}
				}
				mu.Unlock()
				switch status := post(e); status {
				case 202:
					mu.Lock()
					acked[e.id] = e.customer
					mu.Unlock()
				case 503:
					got503.Add(1)
					mu.Lock()
					pending = append(pending, e)
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
				default:
					if status != 0 {
						gotOther.Add(1)
					}
					mu.Lock()
					pending = append(pending, e)
					mu.Unlock()
				}
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				status, deg, _, err := rawDecide(n.url, fmt.Sprintf("d-%d", seq.Add(1)))
				decides.Add(1)
				if err != nil || status != 200 {
					badDec.Add(1)
					continue
				}
				if deg {
					degraded.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	rs.Stop() // SIGKILL: a crash
	time.Sleep(time.Second)
	if got503.Load() == 0 {
		t.Error("no event got 503 while Redis was down")
	}
	if degraded.Load() == 0 {
		t.Error("no decision was degraded while Redis was down")
	}
	rs.Restart()
	waitUntil(t, 10*time.Second, "events accepted again after Redis restarted", func() bool {
		return post(event{id: fmt.Sprintf("probe-%d", time.Now().UnixNano()), customer: "probe"}) == 202
	})
	waitUntil(t, 10*time.Second, "decisions whole again after Redis restarted", func() bool {
		_, deg, _, err := rawDecide(n.url, fmt.Sprintf("after-%d", time.Now().UnixNano()))
		return err == nil && !deg
	})
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	// Drain: every event sent is retried with its id until acknowledged.
	for len(pending) > 0 {
		e := pending[0]
		pending = pending[1:]
		if post(e) != 202 {
			t.Fatalf("event %s not accepted after recovery", e.id)
		}
		acked[e.id] = e.customer
	}
	if bad := badDec.Load(); bad > 0 {
		t.Errorf("%d of %d decisions did not answer 200", bad, decides.Load())
	}
	if o := gotOther.Load(); o > 0 {
		t.Errorf("%d event answers were neither 202 nor 503 with Retry-After", o)
	}
	want := map[string]int{}
	for _, c := range acked {
		want[c]++
	}
	// Read back through a fresh node: its cache is cold, so it reads Redis.
	check := redisNode(t, rs.Addr, "--store-timeout", "1s")
	total := 0
	for c, w := range want {
		f := check.customerFeatures(c)
		if got := f["page_views"]; got != float64(w) {
			t.Errorf("customer %s: page_views = %v, want %d (each acknowledged event exactly once)", c, got, w)
		}
		total += w
	}
	t.Logf("%d events acknowledged across the outage (%d 503 answers while down), %d decisions (%d degraded): all applied exactly once",
		total, got503.Load(), decides.Load(), degraded.Load())
	if n.cmd.ProcessState != nil {
		t.Error("the node exited during the outage")
	}
}

// TestRedisNotReadyUntilReachable: /readyz fails while Redis is unreachable
// at start-up, and turns ready once it answers.
func TestRedisNotReadyUntilReachable(t *testing.T) {
	port := redistest.FreePort(t)
	n := startListening(t, ".", "--addr", "127.0.0.1:0", "--catalog", testCatalog, "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--redis-password", "s3cret-pw")
	status, body := n.call("GET", "/readyz", "")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down = %d %s, want 503", status, body)
	}
	if strings.Contains(body, "s3cret-pw") || strings.Contains(n.logs.String(), "s3cret-pw") {
		t.Error("the Redis password appears in an answer or the logs")
	}
	// A decision still answers, from defaults.
	if d := n.decide(`{"customer_id":"x","channel":"web"}`); !d.Degraded {
		t.Error("decision with Redis down is not marked degraded")
	}
	redistest.Start(t, redistest.Options{Port: port, Password: "s3cret-pw"})
	n.waitReady(10 * time.Second)
	if d := n.decide(`{"customer_id":"x","channel":"web"}`); d.Degraded {
		t.Error("decision still degraded once Redis is up")
	}
	n.mustCall("POST", "/v1/events", `{"customer_id":"x","type":"page_view"}`, 202)
	if strings.Contains(n.logs.String(), "s3cret-pw") {
		t.Error("the Redis password appears in the logs")
	}
}

// TestRedisNodesShareLearning: outcomes posted to node A change the
// learned ranking on node B (statistics flushed by A, reloaded by B), and
// both nodes report the same statistics.
func TestRedisNodesShareLearning(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	args := []string{"--addr", "127.0.0.1:0", "--catalog", "testdata/decisioning.yaml", "--redis", "redis://" + rs.Addr + "/0",
		"--stats-flush", "10ms", "--learn-refresh", "20ms"}
	a, b := startServerIn(t, ".", args...), startServerIn(t, ".", args...)
	id := b.customerInVariant("control")
	if got := b.offersOn(id, "app"); got[0] != "card-gold" {
		t.Fatalf("before learning, node B: %v, want card-gold first", got)
	}
	var events []string
	for i := range 200 {
		events = append(events, fmt.Sprintf(`{"customer_id":"u%d","type":"impression","offer_id":"insurance","channel":"app"}`, i))
		if i%2 == 0 {
			events = append(events, fmt.Sprintf(`{"customer_id":"u%d","type":"conversion","offer_id":"insurance","channel":"app"}`, i))
		}
	}
	a.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
	waitUntil(t, 5*time.Second, "node B ranks insurance first from node A's outcomes", func() bool {
		return b.offersOn(id, "app")[0] == "insurance"
	})
	for _, n := range []*server{a, b} {
		waitUntil(t, 5*time.Second, "both nodes report the outcomes", func() bool {
			for _, o := range n.stats("").Offers {
				if o.OfferID == "insurance" && o.Channel == "app" && o.Experiment == "" {
					return o.Impressions == 200 && o.Conversions == 100
				}
			}
			return false
		})
	}
}

// TestRedisTwoNodesNeverForgetACustomer: two nodes write the same known
// customers at once, in batches of several customers, so some of a
// batch's compare-and-sets conflict with the other node's writes and some
// do not, while both nodes decide for those customers. No decision may
// see a known customer as unknown (issue 10: a batch with mixed outcomes
// answered some customers with no record, which the cache kept as
// "unknown"). Known customers are in the "unhappy" segment (a support
// call each); an unknown one is in none.
func TestRedisTwoNodesNeverForgetACustomer(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	nodes := []*server{
		redisNode(t, rs.Addr, "--store-timeout", "2s"),
		redisNode(t, rs.Addr, "--store-timeout", "2s"),
	}
	const customers = 8
	id := func(i int) string { return fmt.Sprintf("k-%d", i) }
	var setup []string
	for i := range customers {
		setup = append(setup, fmt.Sprintf(`{"customer_id":%q,"type":"support_call","channel":"call_center"}`, id(i)))
	}
	nodes[0].mustCall("POST", "/v1/events", `{"events":[`+strings.Join(setup, ",")+`]}`, 202)

	var (
		decisions, degraded, wrong, writes atomic.Int64
		errs                               = make(chan error, 64)
		mu                                 sync.Mutex
		examples                           []string
	)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for n, node := range nodes {
		for w := range 2 {
			wg.Go(func() {
				// Batches of half the customers, from a different start
				// each time: the two nodes' batches overlap in part, so
				// a batch meets conflicts on some customers only.
				for k := 0; ctx.Err() == nil; k++ {
					var evs []string
					start := k*(2*n+w+1) + n
					for j := range customers / 2 {
						evs = append(evs, fmt.Sprintf(`{"customer_id":%q,"type":"page_view","channel":"web"}`, id((start+j)%customers)))
					}
					resp, err := client.Post(node.url+"/v1/events", "application/json", strings.NewReader(`{"events":[`+strings.Join(evs, ",")+`]}`))
					if err != nil {
						fail(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 202 {
						fail(fmt.Errorf("node %d: events answered %d", n, resp.StatusCode))
						return
					}
					writes.Add(1)
				}
			})
		}
		for r := range 3 {
			wg.Go(func() {
				for k := 0; ctx.Err() == nil; k++ {
					c := id((k*3 + r) % customers)
					status, body := postDecide(node.url, fmt.Sprintf(`{"customer_id":%q,"channel":"web","explain":true}`, c))
					if status != 200 {
						fail(fmt.Errorf("node %d: decide answered %d %s", n, status, body))
						return
					}
					var d decideResponse
					if err := json.Unmarshal([]byte(body), &d); err != nil {
						fail(err)
						return
					}
					decisions.Add(1)
					switch {
					case d.Degraded:
						degraded.Add(1)
					case !slices.Contains(d.Segments, "unhappy"):
						if wrong.Add(1) <= 3 {
							mu.Lock()
							examples = append(examples, fmt.Sprintf("node %d, %s: %s", n, c, strings.TrimSpace(body)))
							mu.Unlock()
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if decisions.Load() == 0 || writes.Load() == 0 {
		t.Fatalf("%d decisions and %d event batches in the run; want some of each", decisions.Load(), writes.Load())
	}
	if d := degraded.Load(); d > 0 {
		t.Errorf("%d decisions degraded with a healthy Redis and a 2s store deadline", d)
	}
	if w := wrong.Load(); w > 0 {
		t.Errorf("%d of %d decisions saw a known customer as unknown, e.g.:\n%s", w, decisions.Load(), strings.Join(examples, "\n"))
	} else {
		t.Logf("%d decisions, %d event batches of %d customers from two nodes: none saw a known customer as unknown",
			decisions.Load(), writes.Load(), customers/2)
	}
}

// postDecide posts a decision without failing the test, for load loops.
func postDecide(url, body string) (int, string) {
	resp, err := client.Post(url+"/v1/decide", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// TestRedisOutageLogIsBounded: while Redis is down under load, the log
// gets about one line a second: the Redis client's own messages (failed
// dials, dropped connections) go through the server's store error limit
// with its own errors, through the server's logger like every other line
// (issue 10: 655 raw go-redis lines over 7 outages).
func TestRedisOutageLogIsBounded(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	n := redisNode(t, rs.Addr, "--store-timeout", "20ms", "--redis-timeout", "200ms")
	lines := func() []string { return strings.Split(strings.TrimSpace(n.logs.String()), "\n") }

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := seq.Add(1)
				rawDecide(n.url, fmt.Sprintf("cold-%d", k))
				resp, err := client.Post(n.url+"/v1/events", "application/json", strings.NewReader(fmt.Sprintf(`{"customer_id":"e-%d","type":"page_view"}`, k)))
				if err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	before := len(lines())
	rs.Stop()
	const outage = 3 * time.Second
	time.Sleep(outage)
	during := lines()[before:]
	stop()
	wg.Wait()
	rs.Restart()

	// One store line a second, plus the statistics flusher's and
	// reloader's first failures and a second of slack for the edges.
	if max := int(outage/time.Second) + 4; len(during) > max {
		t.Errorf("%d log lines during a %v outage, want at most %d:\n%s", len(during), outage, max, strings.Join(during, "\n"))
	}
	store := 0
	for _, l := range during {
		if !strings.HasPrefix(l, "time=") { // not through slog: it would break JSON logs
			t.Errorf("log line not written by the server's logger: %q", l)
		}
		if strings.Contains(l, `msg="feature store"`) {
			store++
		}
	}
	if store == 0 {
		t.Errorf("no store error logged during the outage:\n%s", strings.Join(during, "\n"))
	}
	t.Logf("%d log lines during a %v outage under load, %d of them store errors", len(during), outage, store)
}
