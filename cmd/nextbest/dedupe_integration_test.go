package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 10, point 3 end to end: an event retried with the same event_id
// is acknowledged and applied once, on either store, across a restart of
// the embedded store; an oversized id is refused with 400.
func TestDedupeEventIDs(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, data string) *server
	}{
		{"embedded", func(t *testing.T, data string) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", testCatalog, "--data", data, "--dedupe-window", "1h")
		}},
		{"redis", func(t *testing.T, _ string) *server {
			rs := redistest.Start(t, redistest.Options{})
			return redisNode(t, rs.Addr, "--dedupe-window", "1h")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			s := tt.start(t, data)
			view := func(id string) string {
				return fmt.Sprintf(`{"event_id":%q,"customer_id":"d-1","type":"page_view"}`, id)
			}
			steps := []struct {
				body  string
				views float64 // page_views after the step
			}{
				{view("e-1"), 1},
				{view("e-1"), 1}, // a retry
				{`{"events":[` + view("e-2") + `,` + view("e-1") + `,` + view("e-2") + `]}`, 2},
			}
			for i, step := range steps {
				resp := s.mustCall("POST", "/v1/events", step.body, 202)
				if !strings.HasPrefix(resp, `{"accepted":`) {
					t.Errorf("step %d: 202 body %s", i, resp)
				}
				if got := s.customerFeatures("d-1")["page_views"]; got != step.views {
					t.Errorf("step %d: page_views %v, want %v", i, got, step.views)
				}
			}
			_, metrics := s.call("GET", "/metrics", "")
			if m := regexp.MustCompile(`(?m)^nextbest_events_duplicate_total (\d+)$`).FindStringSubmatch(metrics); m == nil || m[1] != "3" {
				t.Errorf("nextbest_events_duplicate_total: %v, want 3", m)
			}

			status, body := s.call("POST", "/v1/events", view(strings.Repeat("x", 129)))
			var e struct{ Error struct{ Message string } }
			if err := json.Unmarshal([]byte(body), &e); status != 400 || err != nil || !strings.Contains(e.Error.Message, "event_id: longer than 128 bytes") {
				t.Errorf("oversized event_id: %d %s, want 400 saying the id is longer than 128 bytes", status, body)
			}

			if tt.name == "embedded" {
				s.stop()
				s = tt.start(t, data)
				s.mustCall("POST", "/v1/events", view("e-1"), 202)
				if got := s.customerFeatures("d-1")["page_views"]; got != 2.0 {
					t.Errorf("retry after a restart: page_views %v, want 2", got)
				}
			}
		})
	}
}

func TestDedupeWindowFlag(t *testing.T) {
	for _, w := range []string{"0s", "-1h", "721h"} {
		code, _, errs := runBinary(t, "serve", "--insecure-no-auth", "--catalog", testCatalog, "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--dedupe-window", w)
		if code != 2 || !strings.Contains(errs, "--dedupe-window") {
			t.Errorf("--dedupe-window %s: exit %d, stderr %s; want 2 naming the flag", w, code, errs)
		}
	}
}
