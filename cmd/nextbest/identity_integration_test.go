package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 13, point 4 against the real binary, on the embedded store, a
// standalone Redis and a Redis Cluster (where the two ids of the merge
// are in different slots): a merge of an anonymous visitor with 3
// product views makes the known customer's count 3 more, a second run
// changes nothing, and a late event for the anonymous id lands on the
// known customer.

const identityCatalog = "testdata/identity.yaml"

type customerResponse struct {
	CustomerID string         `json:"customer_id"`
	Known      bool           `json:"known"`
	Features   map[string]any `json:"features"`
}

func (s *server) customer(method, path, body string, want int) (customerResponse, string) {
	s.t.Helper()
	resp := s.mustCall(method, path, body, want)
	var c customerResponse
	if err := json.Unmarshal([]byte(resp), &c); err != nil {
		s.t.Fatalf("%s %s: %v in %s", method, path, err, resp)
	}
	return c, resp
}

func (s *server) views(id string) float64 {
	s.t.Helper()
	c, _ := s.customer("GET", "/v1/customers/"+id, "", 200)
	n, _ := c.Features["product_views"].(float64)
	return n
}

func (s *server) productView(eventID, customer, category string) {
	s.t.Helper()
	s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"event_id":%q,"customer_id":%q,"type":"product_view","channel":"web","properties":{"category":%q}}`, eventID, customer, category), 202)
}

func TestMergeIdentity(t *testing.T) {
	tests := []struct {
		name string
		// carriesEventIDs: an event retried under the anonymous id after
		// the merge is known as applied (the embedded store carries the
		// ids over; redisstore documents that it does not).
		carriesEventIDs bool
		start           func(t *testing.T) *server
	}{
		{"embedded", true, func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", identityCatalog, "--data", t.TempDir())
		}},
		{"redis", false, func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", identityCatalog, "--redis", "redis://"+rs.Addr+"/0")
		}},
		{"redis-cluster", false, func(t *testing.T) *server {
			if testing.Short() {
				t.Skip("cluster start-up takes seconds")
			}
			cl := redistest.StartCluster(t, 3)
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", identityCatalog, "--redis", "redis+cluster://"+strings.Join(cl.Addrs, ","))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			s.mustCall("PUT", "/v1/customers/known-1", `{"features":{"tier":"gold"}}`, 200)
			s.productView("k-1", "known-1", "shoes")
			s.productView("k-2", "known-1", "shoes")
			for i := range 3 {
				s.productView(fmt.Sprintf("a-%d", i+1), "anon-7f3a", "tents")
			}
			s.mustCall("PUT", "/v1/customers/anon-7f3a", `{"features":{"tier":"bronze","first_name":"Ann"}}`, 200)
			before := s.views("known-1")

			merged, first := s.customer("POST", "/v1/customers/known-1/merge", `{"from":"anon-7f3a"}`, 200)
			if got := merged.Features["product_views"]; got != before+3 {
				t.Errorf("after the merge: product_views = %v, want %v (3 more)", got, before+3)
			}
			for name, want := range map[string]any{"tier": "gold", "first_name": "Ann", "last_category": "tents", "views_7d": before + 3.0} {
				if got := merged.Features[name]; got != want {
					t.Errorf("after the merge: %s = %v, want %v", name, got, want)
				}
			}
			if merged.CustomerID != "known-1" || !merged.Known {
				t.Errorf("merge answered customer %q (known %v), want known-1", merged.CustomerID, merged.Known)
			}

			t.Run("twice-run changes nothing", func(t *testing.T) {
				_, again := s.customer("POST", "/v1/customers/known-1/merge", `{"from":"anon-7f3a"}`, 200)
				if again != first {
					t.Errorf("a retried merge answered\n%s\nthe first\n%s", again, first)
				}
				if got := s.views("known-1"); got != before+3 {
					t.Errorf("after two merges: product_views = %v, want %v", got, before+3)
				}
			})

			t.Run("a late event for the anonymous id lands on the known customer", func(t *testing.T) {
				s.productView("late-1", "anon-7f3a", "outdoor")
				if got := s.views("known-1"); got != before+4 {
					t.Errorf("after a late event: product_views = %v, want %v", got, before+4)
				}
				// The anonymous id reads as the known customer.
				c, _ := s.customer("GET", "/v1/customers/anon-7f3a", "", 200)
				if c.CustomerID != "known-1" || c.Features["product_views"] != before+4 || c.Features["last_category"] != "outdoor" {
					t.Errorf("GET of the anonymous id: %+v, want known-1's profile", c)
				}
				// An event retried under the old id is not counted twice.
				if tt.carriesEventIDs {
					s.productView("a-1", "anon-7f3a", "tents")
					if got := s.views("known-1"); got != before+4 {
						t.Errorf("a retried event of the anonymous id counted again: product_views = %v, want %v", got, before+4)
					}
				}
			})

			t.Run("a decision for the anonymous id decides for the known customer", func(t *testing.T) {
				// 3 views as a visitor did not make a keen browser; 5 or
				// more as the known customer does.
				if got := s.decide(`{"customer_id":"anon-7f3a","channel":"web"}`).offerIDs(); strings.Join(got, ",") != "keen-browser" {
					t.Errorf("decision for the anonymous id: %v, want keen-browser", got)
				}
			})

			t.Run("refusals", func(t *testing.T) {
				tests := []struct {
					path, body string
					status     int
					code       string
				}{
					{"/v1/customers/other/merge", `{"from":"anon-7f3a"}`, 409, "conflict"},
					{"/v1/customers/known-1/merge", `{"from":"known-1"}`, 400, "invalid_request"},
					{"/v1/customers/anon-7f3a/merge", `{"from":"known-1"}`, 400, "invalid_request"},
					{"/v1/customers/known-1/merge", `{}`, 400, "invalid_request"},
					{"/v1/customers/known-1/merge", `{"from":7}`, 400, "invalid_request"},
					{"/v1/customers/known-1/merge", `{"from":"x","into":"y"}`, 400, "invalid_request"},
				}
				for _, tt := range tests {
					status, resp := s.call("POST", tt.path, tt.body)
					if status != tt.status || !strings.Contains(resp, `"code":"`+tt.code+`"`) {
						t.Errorf("POST %s %s: %d %s, want %d %s", tt.path, tt.body, status, resp, tt.status, tt.code)
					}
				}
				if got := s.views("known-1"); got != before+4 {
					t.Errorf("after refused merges: product_views = %v, want %v", got, before+4)
				}
			})
		})
	}
}
