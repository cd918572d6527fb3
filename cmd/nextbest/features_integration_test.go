package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 13, point 5 against the real binary, on both stores: a where
// count, a top and a distinct feature fed by events posted to /v1/events.

const featuresCatalog = "testdata/features.yaml"

func TestEventFeatures(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", featuresCatalog, "--data", t.TempDir())
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", featuresCatalog, "--redis", "redis://"+rs.Addr+"/0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			now := time.Now().UTC()
			view := func(id, ch, category string, ago time.Duration) string {
				return fmt.Sprintf(`{"customer_id":%q,"type":"product_view","channel":%q,"ts":%q,"properties":{"category":%q,"price":19.5}}`,
					id, ch, now.Add(-ago).Format(time.RFC3339Nano), category)
			}
			events := []string{
				view("hiker", "web", "outdoor", 3*24*time.Hour),
				view("hiker", "app", "outdoor", time.Hour),
				view("hiker", "email", "shoes", time.Minute),
				// Outdoor views of more than 30 days ago do not count.
				view("runner", "web", "outdoor", 40*24*time.Hour),
				view("runner", "web", "outdoor", 35*24*time.Hour),
				view("runner", "app", "shoes", time.Hour),
			}
			s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)

			for _, c := range []struct {
				id       string
				features map[string]any
				offers   string
			}{
				{"hiker", map[string]any{"outdoor_views_30d": 2.0, "favorite_category": "outdoor", "channels_used_30d": 3.0}, "tent-sale"},
				{"runner", map[string]any{"outdoor_views_30d": 0.0, "favorite_category": "shoes", "channels_used_30d": 1.0}, ""},
				{"stranger", map[string]any{"outdoor_views_30d": 0.0, "favorite_category": "none", "channels_used_30d": 0.0}, ""},
			} {
				f := s.customerFeatures(c.id)
				for name, want := range c.features {
					if f[name] != want {
						t.Errorf("%s: %s = %v, want %v", c.id, name, f[name], want)
					}
				}
				d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web"}`, c.id))
				if got := strings.Join(d.offerIDs(), ","); got != c.offers {
					t.Errorf("%s: offers %q, want %q", c.id, got, c.offers)
				}
			}

			// Two more outdoor views, and the runner's favorite turns.
			s.mustCall("POST", "/v1/events", `{"events":[`+view("runner", "web", "outdoor", 0)+","+view("runner", "web", "outdoor", 0)+`]}`, 202)
			if f := s.customerFeatures("runner"); f["favorite_category"] != "outdoor" || f["outdoor_views_30d"] != 2.0 {
				t.Errorf("runner after two outdoor views: %v", f)
			}
			if got := s.decide(`{"customer_id":"runner","channel":"web"}`).offerIDs(); strings.Join(got, ",") != "tent-sale" {
				t.Errorf("runner after two outdoor views: offers %v, want tent-sale", got)
			}

			// A declared property of the wrong type is refused at the
			// door, naming it, and nothing of the request is applied.
			bad := `{"events":[` + view("hiker", "web", "outdoor", 0) + `,{"customer_id":"hiker","type":"product_view","properties":{"category":7}}]}`
			status, body := s.call("POST", "/v1/events", bad)
			if status != 400 || !strings.Contains(body, `events[1].properties: property \"category\"`) {
				t.Errorf("a numeric category: %d %s, want 400 naming events[1].properties.category", status, body)
			}
			if f := s.customerFeatures("hiker"); f["outdoor_views_30d"] != 2.0 {
				t.Errorf("a refused request changed the hiker: %v", f)
			}
		})
	}
}
