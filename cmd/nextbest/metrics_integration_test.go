package main

import (
	"fmt"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
		{"nextbest_requests_total", map[string]string{"route": "events", "code": "2xx"}, 1},
		{"nextbest_request_duration_seconds", map[string]string{"route": "decide", "channel": "web"}, 7},
		{"nextbest_request_duration_seconds", map[string]string{"route": "decide", "channel": "app"}, 3},
		{"nextbest_decisions_total", nil, 10},
		{"nextbest_events_accepted_total", nil, 2},
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
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
