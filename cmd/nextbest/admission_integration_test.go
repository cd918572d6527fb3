package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestServeAdmissionControl runs the binary with tiny admission bounds:
// decisions with no queueing budget at all (each is shed: the channel's
// fallback, degraded for overload), events one at a time with a short
// budget (a burst gets 503 with Retry-After). Health checks, metrics and
// profile routes are served all along, and once the burst is over an
// event request is admitted at once.
func TestServeAdmissionControl(t *testing.T) {
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", testCatalog,
		"--decide-max-queue", "1ns", "--events-max-in-flight", "1", "--events-max-queue", "20ms")

	var d decideResponse
	var raw string
	for range 20 { // a budget of 1ns is spent before the handler runs; almost always at once
		status, body := s.call("POST", "/v1/decide", `{"customer_id":"a-1","channel":"web"}`)
		if status != 200 {
			t.Fatalf("decide with no queueing budget: %d %s, want 200 and the fallback", status, body)
		}
		raw = body
		if strings.Contains(body, `"reason":"overload"`) {
			break
		}
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw, `"reason":"overload"`) || !d.Degraded || len(d.Offers) != 0 || d.Fallback["headline"] == nil {
		t.Fatalf("decide with no queueing budget: %s, want no offers, the channel's fallback, degraded for overload", raw)
	}

	// A burst of event requests, 500 events each, at a class that serves
	// one at a time and lets the others wait 20ms: most must be shed. The
	// burst repeats (a bounded number of times) until one is, so a slow
	// machine cannot fail the test by serving them one by one in time.
	var events strings.Builder
	events.WriteString(`{"events":[`)
	for i := range 500 {
		if i > 0 {
			events.WriteByte(',')
		}
		fmt.Fprintf(&events, `{"customer_id":"e-%d","type":"page_view","channel":"web"}`, i)
	}
	events.WriteString(`]}`)
	shed := 0
	for burst := 0; burst < 10 && shed == 0; burst++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				resp, err := client.Post(s.url+"/v1/events", "application/json", strings.NewReader(events.String()))
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 202:
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "1" && strings.Contains(string(body), `"code":"overloaded"`):
					mu.Lock()
					shed++
					mu.Unlock()
				default:
					t.Errorf("event burst: %d %s (Retry-After %q), want 202 or 503 overloaded with Retry-After 1", resp.StatusCode, body, resp.Header.Get("Retry-After"))
				}
			})
		}
		// Not starved by the burst: health, metrics, profiles.
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/customers/a-1"} {
			if status, body := s.call("GET", path, ""); status != 200 && !(path == "/v1/customers/a-1" && status == 404) {
				t.Errorf("GET %s during the burst: %d %s", path, status, body)
			}
		}
		wg.Wait()
	}
	if shed == 0 {
		t.Fatal("10 bursts of 16 concurrent event requests at one in flight and 20ms of queue: none shed")
	}

	// The burst is over: the next request is admitted at once.
	s.mustCall("POST", "/v1/events", `{"customer_id":"e-1","type":"page_view","channel":"web"}`, 202)

	_, metrics := s.call("GET", "/metrics", "")
	for _, series := range []string{`nextbest_requests_shed_total{class="decide"}`, `nextbest_requests_shed_total{class="events"}`, `nextbest_decisions_degraded_total{cause="overload"}`} {
		var v float64
		for line := range strings.Lines(metrics) {
			if rest, ok := strings.CutPrefix(line, series+" "); ok {
				fmt.Sscan(rest, &v)
			}
		}
		if v < 1 {
			t.Errorf("%s = %v after shedding, want at least 1", series, v)
		}
	}
	if status, _ := s.call("GET", "/healthz", ""); status != http.StatusOK {
		t.Errorf("healthz after the burst: %d", status)
	}
}
