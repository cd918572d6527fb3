package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 14, point 1, against the real binary on both stores: with every
// decision logged, GET /v1/decisions/{id} answers each one with its
// offers' propensities, and still does after the node restarts.

type loggedDecision struct {
	ID         string
	Time       time.Time
	CustomerID string `json:"customer_id"`
	Channel    string
	Limit      int
	Catalog    string
	Explore    string
	Offers     []struct {
		ID         string
		Score      float64
		Propensity float64
	}
	PropensitySamples int `json:"propensity_samples"`
	Features          map[string]any
}

// logged polls GET /v1/decisions/{id} until the writer has written it
// (it flushes every 100ms), at most 100 times.
func (s *server) logged(id string) loggedDecision {
	s.t.Helper()
	var status int
	var body string
	for range 100 {
		if status, body = s.call("GET", "/v1/decisions/"+id, ""); status != 404 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != 200 {
		s.t.Fatalf("GET /v1/decisions/%s: %d %s", id, status, body)
	}
	var d loggedDecision
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		s.t.Fatalf("%v in %s", err, body)
	}
	return d
}

func TestDecisionLog(t *testing.T) {
	for _, tt := range storeBackends {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--addr", "127.0.0.1:0", "--catalog", testCatalog, "--data", dir, "--decision-log-sample", "1"}, tt.args(t)...)
			s := startServerIn(t, ".", args...)
			const n = 20
			decided := map[string]decideResponse{}
			for i := range n {
				d := s.decide(fmt.Sprintf(`{"customer_id":"c-%d","channel":"web","limit":2}`, i))
				decided[d.DecisionID] = d
			}
			check := func(when string) {
				for id, d := range decided {
					e := s.logged(id)
					if e.ID != id || e.CustomerID != d.CustomerID || e.Channel != "web" || e.Limit != 2 || len(e.Features) == 0 {
						t.Errorf("%s: %s logged as %+v", when, id, e)
					}
					if len(e.Offers) != len(d.Offers) {
						t.Fatalf("%s: %s logged %d offers, answered %d", when, id, len(e.Offers), len(d.Offers))
					}
					sum := 0.0
					for i, o := range e.Offers {
						if o.ID != d.Offers[i].ID || o.Propensity < 0 || o.Propensity > 1 {
							t.Errorf("%s: %s offer %d logged %+v, answered %s", when, id, i, o, d.Offers[i].ID)
						}
						sum += o.Propensity
					}
					// Each propensity is a probability; together they
					// are the expected number of these offers chosen.
					if sum > float64(e.Limit)+1e-9 || (e.Explore != "thompson" && sum != float64(len(e.Offers))) {
						t.Errorf("%s: %s propensities sum to %v (explore %s, %d offers)", when, id, sum, e.Explore, len(e.Offers))
					}
					if e.Explore == "thompson" && e.PropensitySamples != 32 {
						t.Errorf("%s: %d propensity samples, want the default 32", when, e.PropensitySamples)
					}
				}
			}
			check("running")
			if status, body := s.call("GET", "/v1/decisions/not-an-id", ""); status != 400 {
				t.Errorf("a bad id: %d %s, want 400", status, body)
			}
			if status, body := s.call("GET", "/v1/decisions/d5cvv4c7aibg00cl2a3g", ""); status != 404 {
				t.Errorf("an id not logged: %d %s, want 404", status, body)
			}
			s.stop()
			segs, _ := filepath.Glob(filepath.Join(dir, "decisions", "*.jsonl"))
			if len(segs) == 0 {
				t.Fatalf("no segment under %s/decisions", dir)
			}
			s = startServerIn(t, ".", args...)
			check("after a restart")
			s.stop()
		})
	}
}

// TestDecisionLogOff: without --decision-log-sample nothing is written
// and the route says the log is off.
func TestDecisionLogOff(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	d := s.decide(`{"customer_id":"c","channel":"web"}`)
	if status, body := s.call("GET", "/v1/decisions/"+d.DecisionID, ""); status != 404 {
		t.Errorf("log off: %d %s, want 404", status, body)
	}
	s.stop()
	if _, err := os.Stat(filepath.Join(dir, "decisions")); !os.IsNotExist(err) {
		t.Errorf("log off: %s/decisions exists (%v)", dir, err)
	}
}
