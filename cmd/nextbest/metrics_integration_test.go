package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nextbest/nextbest/internal/redistest"
)

// TestMetricsAfterTraffic scrapes /metrics after decisions and events and
// parses it with Prometheus's own text parser: the series an operator
// alerts on are there, with the counts of the traffic sent.
func TestMetricsAfterTraffic(t *testing.T) {
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", "testdata/catalog.yaml")
	for i := range 7 {
		s.decide(fmt.Sprintf(`{"customer_id":"m-%d","channel":"web"}`, i))
	}
	for i := range 3 {
		s.decide(fmt.Sprintf(`{"customer_id":"m-%d","channel":"app"}`, i))
	}
	s.mustCall("POST", "/v1/events", `{"events":[{"customer_id":"m-1","type":"support_call","channel":"call_center"},{"customer_id":"m-2","type":"support_call","channel":"call_center"}]}`, 202)
	// support-call is not support_call: accepted, read by nothing, said so.
	if got, want := s.mustCall("POST", "/v1/events", `{"events":[{"customer_id":"m-1","type":"support-call"},{"customer_id":"m-1","type":"page_view"},{"customer_id":"m-2","type":"support-call"}]}`, 202), `{"accepted":3,"ignored":2}`+"\n"; got != want {
		t.Errorf("events with a misspelt type: got %q, want %q", got, want)
	}
	s.call("POST", "/v1/decide", `{"channel":"fax"}`) // a 400
	if status, _ := s.call("POST", "/v1/admin/catalog", "channels: [web]\noffers: nope\n", "Content-Type", "application/yaml"); status != 422 {
		t.Errorf("a bad catalog push: %d, want 422", status)
	}

	_, body := s.call("GET", "/metrics", "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v\n%s", err, body)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := families[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
		return 0, false
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64 // -1: present, any value
	}{
		{"nextbest_requests_total", map[string]string{"route": "decide", "code": "2xx"}, 10},
		{"nextbest_requests_total", map[string]string{"route": "decide", "code": "4xx"}, 1},
		{"nextbest_requests_total", map[string]string{"route": "events", "code": "2xx"}, 2},
		{"nextbest_request_duration_seconds", map[string]string{"route": "decide", "channel": "web"}, 7},
		{"nextbest_request_duration_seconds", map[string]string{"route": "decide", "channel": "app"}, 3},
		{"nextbest_decisions_total", nil, 10},
		{"nextbest_events_accepted_total", nil, 5},
		{"nextbest_events_ignored_total", map[string]string{"type": "support-call"}, 2},
		{"nextbest_stats_dropped_total", nil, 0},
		{"nextbest_stats_flush_failures_total", nil, 0},
		{"nextbest_stats_pending_cells", nil, -1},
		{"nextbest_decisions_degraded_total", map[string]string{"cause": "deadline"}, 0},
		{"nextbest_decisions_degraded_total", map[string]string{"cause": "error"}, 0},
		{"nextbest_decisions_degraded_total", map[string]string{"cause": "overload"}, 0},
		{"nextbest_offer_decisions_total", map[string]string{"channel": "web"}, -1},
		{"nextbest_store_read_duration_seconds", nil, -1},
		{"nextbest_cache_hit_ratio", nil, -1},
		{"nextbest_cache_entries", nil, -1},
		{"nextbest_requests_rate_limited_total", nil, 0},
		{"nextbest_catalog_reload_failures_total", nil, 1},
		{"nextbest_catalog_info", nil, 1},
		{"go_goroutines", nil, -1},
		{"process_resident_memory_bytes", nil, -1},
	} {
		got, ok := value(tt.name, tt.labels)
		switch {
		case !ok:
			t.Errorf("%s%v: missing", tt.name, tt.labels)
		case tt.want >= 0 && got != tt.want:
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if f := families["nextbest_request_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("request durations are not a Prometheus histogram: %v", f.GetType())
	}
	for name, f := range families {
		if strings.HasPrefix(name, "nextbest_") && f.GetHelp() == "" {
			t.Errorf("metric family %s has no HELP text: add a line for it to metricHelp in httpapi/metrics.go", name)
		}
	}
	promtoolCheck(t, body)
}

// promtoolCheck runs promtool check metrics (Debian's prometheus package)
// on a /metrics body and fails on any finding that is not about the Go
// runtime's and the process's families, which VictoriaMetrics/metrics
// names and describes. It skips without promtool, unless
// NEXTBEST_REQUIRE_PROMTOOL=1 (CI).
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("NEXTBEST_REQUIRE_PROMTOOL") == "1" {
			t.Fatalf("promtool is required (NEXTBEST_REQUIRE_PROMTOOL=1) and not found: %v; apt-get install prometheus", err)
		}
		t.Log("promtool not found: /metrics not linted (apt-get install prometheus; NEXTBEST_REQUIRE_PROMTOOL=1 makes this a failure)")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("promtool: %v", err)
	}
	findings := 0
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "go_") || strings.HasPrefix(line, "process_") || strings.TrimSpace(line) == "" {
			continue
		}
		findings++
		t.Errorf("promtool check metrics: %s", strings.TrimSpace(line))
	}
	if err != nil && len(out) == 0 {
		t.Errorf("promtool check metrics failed without a word: %v", err)
	}
	t.Logf("promtool check metrics: %d findings about nextbest_* families", findings)
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// metricValue is the sum of the samples of the counter or gauge family
// name in s's /metrics; ok is false when the family is missing.
func metricValue(t *testing.T, s *server, name string) (v float64, ok bool) {
	t.Helper()
	_, body := s.call("GET", "/metrics", "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	f := families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v, true
}

// TestMetricsStatisticsOutage: while Redis is down, the outcome statistics
// of the decisions still answered cannot be flushed; the failed flushes
// and the waiting cells show in /metrics, and the cells drain once Redis
// is back.
func TestMetricsStatisticsOutage(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	n := redisNode(t, rs.Addr, "--store-timeout", "20ms", "--redis-timeout", "200ms", "--stats-flush", "20ms")
	n.decide(`{"customer_id":"so-1","channel":"web"}`)
	waitUntil(t, 5*time.Second, "statistics flushed while Redis is up", func() bool {
		v, ok := metricValue(t, n, "nextbest_stats_pending_cells")
		return ok && v == 0
	})
	if v, _ := metricValue(t, n, "nextbest_stats_flush_failures_total"); v != 0 {
		t.Errorf("nextbest_stats_flush_failures_total = %v with Redis up, want 0", v)
	}

	rs.Stop()
	for i := range 5 {
		n.decide(fmt.Sprintf(`{"customer_id":"so-%d","channel":"web"}`, i)) // degraded, still counted
	}
	waitUntil(t, 10*time.Second, "failed flushes counted", func() bool {
		v, _ := metricValue(t, n, "nextbest_stats_flush_failures_total")
		return v > 0
	})
	if v, _ := metricValue(t, n, "nextbest_stats_pending_cells"); v == 0 {
		t.Error("nextbest_stats_pending_cells = 0 while Redis is down, want the decisions' cells")
	}

	rs.Restart()
	waitUntil(t, 10*time.Second, "pending statistics flushed after Redis came back", func() bool {
		v, _ := metricValue(t, n, "nextbest_stats_pending_cells")
		return v == 0
	})
	if v, _ := metricValue(t, n, "nextbest_stats_dropped_total"); v != 0 {
		t.Errorf("nextbest_stats_dropped_total = %v after a short outage, want 0", v)
	}
}
