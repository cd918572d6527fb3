package nextbest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// memLog keeps the entries appended, as a log reads them back.
type memLog struct {
	mu      sync.Mutex
	entries []*decisionlog.Entry
}

func (m *memLog) Append(e *decisionlog.Entry) bool {
	b, err := e.AppendJSON(nil)
	if err != nil {
		panic(err)
	}
	got := new(decisionlog.Entry)
	if err := decisionlog.NewReader(bytes.NewReader(b)).Next(got); err != nil {
		panic(err)
	}
	m.mu.Lock()
	m.entries = append(m.entries, got)
	m.mu.Unlock()
	return true
}

func (m *memLog) Lookup(id string, _ time.Time) (*decisionlog.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, decisionlog.ErrNotFound
}

func TestDecisionLog(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		readOnly bool
		want     int // of 50 decisions
	}{
		{"all", 1, false, 50},
		{"none", 0, false, 0},
		{"read-only", 1, true, 0},
	}
	for _, tt := range tests {
		log := &memLog{}
		svc, _ := newTestService(t, true, func(o *Options) {
			o.DecisionLog, o.DecisionLogSample, o.ReadOnly, o.PropensitySamples = log, tt.rate, tt.readOnly, 64
			if tt.readOnly {
				o.Store = nil
			}
		})
		var d Decision
		ids := map[string]bool{}
		for range 50 {
			d.Reset()
			req := Request{CustomerID: "carter", Channel: "web", Limit: 2, Context: map[string]any{"page": "home"}}
			if err := svc.Decide(context.Background(), &req, &d); err != nil {
				t.Fatal(err)
			}
			ids[d.ID.String()] = true
		}
		if len(log.entries) != tt.want {
			t.Fatalf("%s: %d entries, want %d", tt.name, len(log.entries), tt.want)
		}
		for _, e := range log.entries {
			if !ids[e.ID] || e.CustomerID != "carter" || e.Channel != "web" || e.Limit != 2 || e.Context["page"] != "home" {
				t.Errorf("%s: entry %+v", tt.name, e)
			}
			if e.Explore == "thompson" && e.PropensitySamples != 64 {
				t.Errorf("%s: %d propensity samples, want 64", tt.name, e.PropensitySamples)
			}
			if v, _ := e.Features.Get("cart_items"); v != 2.0 {
				t.Errorf("%s: features %v, want cart_items 2", tt.name, e.Features)
			}
			sum := 0.0
			for _, o := range e.Offers {
				if o.Propensity < 0 || o.Propensity > 1 || o.Score == 0 {
					t.Errorf("%s: offer %+v", tt.name, o)
				}
				sum += o.Propensity
			}
			// The expected number of offers chosen is the limit's, at most.
			if sum > float64(e.Limit)+1e-9 || math.IsNaN(sum) {
				t.Errorf("%s: propensities sum to %v, over the limit %d", tt.name, sum, e.Limit)
			}
		}
		if tt.want > 0 {
			got, err := svc.LoggedDecision(log.entries[0].ID)
			if err != nil || got != log.entries[0] {
				t.Errorf("%s: LoggedDecision: %v, %v", tt.name, got, err)
			}
		}
	}
}

func TestLoggedDecisionErrors(t *testing.T) {
	svc, _ := newTestService(t, true, nil)
	if _, err := svc.LoggedDecision("d5cvv4c7aibg00cl2a3g"); !errors.Is(err, ErrNoDecisionLog) {
		t.Errorf("without a log: %v, want ErrNoDecisionLog", err)
	}
	svc, _ = newTestService(t, true, func(o *Options) { o.DecisionLog = &memLog{} })
	if _, err := svc.LoggedDecision("nope"); !errors.Is(err, ErrBadDecisionID) {
		t.Errorf("a bad id: %v, want ErrBadDecisionID", err)
	}
	if _, err := svc.LoggedDecision("d5cvv4c7aibg00cl2a3g"); !errors.Is(err, decisionlog.ErrNotFound) {
		t.Errorf("an id not logged: %v, want decisionlog.ErrNotFound", err)
	}
}

// BenchmarkDecideLogged decides for a cached customer of the example
// catalog with the decision log off, and on at sampling 1 with the real
// log writing to a temporary directory, for a decision that takes every
// candidate (limit 3: propensity 1 without re-draws) and one that
// chooses 1 of 2 (limit 1: 32 re-draws). CPU-µs/op is the process's CPU
// time, the writer's goroutine included, per decision: on a shared
// machine read it rather than ns/op; dropped/op is the share of entries
// the writer could not keep up with.
func BenchmarkDecideLogged(b *testing.B) {
	for _, bc := range []struct {
		on    bool
		limit int
	}{{false, 3}, {true, 3}, {false, 1}, {true, 1}} {
		on := bc.on
		name := fmt.Sprintf("limit=%d/log=off", bc.limit)
		if on {
			name = fmt.Sprintf("limit=%d/log=on", bc.limit)
		}
		b.Run(name, func(b *testing.B) {
			var l *decisionlog.Log
			svc, _ := newTestService(b, true, func(o *Options) {
				if !on {
					return
				}
				var err error
				if l, err = decisionlog.Open(decisionlog.Options{Dir: b.TempDir()}); err != nil {
					b.Fatal(err)
				}
				o.DecisionLog, o.DecisionLogSample = l, 1
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			if l != nil {
				go func() { _ = l.Run(ctx); close(done) }()
			} else {
				close(done)
			}
			req := Request{CustomerID: "carter", Channel: "web", Limit: bc.limit}
			var d Decision
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				d.Reset()
				if err := svc.Decide(ctx, &req, &d); err != nil {
					b.Fatal(err)
				}
			}
			cancel()
			<-done // the writer's work is the log's cost too
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "CPU-µs/op")
			if l != nil {
				b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
			}
		})
	}
}

// TestDecisionLogBatch: a batch's decisions are logged as real-time ones
// are, each under the id the batch emits.
func TestDecisionLogBatch(t *testing.T) {
	log := &memLog{}
	svc, _ := newTestService(t, true, func(o *Options) { o.DecisionLog, o.DecisionLogSample = log, 1 })
	ids := map[string]bool{}
	_, err := svc.DecideBatch(context.Background(), &BatchRequest{Channel: "web", CustomerIDs: []string{"carter", "x", "y"}}, func(d *Decision) error {
		ids[d.ID.String()] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.entries) != 3 {
		t.Fatalf("%d entries for a batch of 3", len(log.entries))
	}
	for _, e := range log.entries {
		if !ids[e.ID] {
			t.Errorf("entry %s is not a decision of the batch", e.ID)
		}
	}
}
