package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/internal/ope"
)

// writeLog writes entries and outcomes to a decision log in dir.
func writeLog(t *testing.T, dir string, entries []*decisionlog.Entry, outcomes []*decisionlog.Outcome) {
	t.Helper()
	l, err := decisionlog.Open(decisionlog.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for _, e := range entries {
		l.Append(e)
	}
	for _, o := range outcomes {
		l.AppendOutcome(o)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestEvaluateTraffic joins outcomes to decisions and estimates a new
// policy that always returns offer c, on three logged decisions with
// known answers.
func TestEvaluateTraffic(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "decisions")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	entry := func(id, offer string, p float64) *decisionlog.Entry {
		return &decisionlog.Entry{ID: id, Time: t0, Channel: "web", Limit: 1, Catalog: "v1", Explore: "thompson",
			Offers: []decisionlog.Offer{{ID: offer, Score: 1, Propensity: p}}, PropensitySamples: 32}
	}
	outcome := func(kind, decision, offer, event string, value float64) *decisionlog.Outcome {
		return &decisionlog.Outcome{Outcome: kind, DecisionID: decision, OfferID: offer, Time: t0, Value: value, EventID: event}
	}
	writeLog(t, dir,
		[]*decisionlog.Entry{entry("d1", "a", 0.5), entry("d2", "c", 0.25), entry("d3", "c", 0.5)},
		[]*decisionlog.Outcome{
			outcome("conversion", "d1", "a", "e1", 10),
			outcome("click", "d2", "c", "e2", 0),
			outcome("conversion", "d2", "c", "e3", 20),
			outcome("conversion", "d2", "c", "e3", 20), // a retry of e3: once
			outcome("dismiss", "d3", "c", "e4", 0),
			outcome("click", "d9", "c", "e5", 0),     // no such decision
			outcome("click", "d3", "b", "e6", 0),     // an offer d3 did not return
			outcome("conversion", "d3", "", "e7", 5), // credited to no offer
		})
	// A line that is not a record is skipped and named.
	seg, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	f, err := os.OpenFile(seg[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{not json\n")
	f.Close()

	got, err := logDir(data)
	if err != nil || got != dir {
		t.Fatalf("logDir(data dir) = %q, %v, want %q", got, err, dir)
	}
	if got, err := logDir(dir); err != nil || got != dir {
		t.Fatalf("logDir(decisions dir) = %q, %v", got, err)
	}
	if _, err := logDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no decision log there") {
		t.Errorf("logDir(empty) = %v, want no decision log there", err)
	}
	tr, err := readTraffic(dir)
	if err != nil {
		t.Fatal(err)
	}
	always := targetPolicy{
		redecide: func(*decisionlog.Entry, uint64) ([]string, error) { return []string{"c"}, nil },
		model:    func(*decisionlog.Entry, string) offerReward { return offerReward{} },
	}
	ev, err := evaluateTraffic(tr, always, 10, ope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Decisions != 3 || ev.Outcomes != 7 || ev.Orphans != 1 || ev.Unmatched != 2 || len(ev.Corrupt) != 1 || !strings.Contains(ev.Corrupt[0], "line") {
		t.Errorf("joined: %d decisions, %d outcomes, %d orphans, %d unmatched, corrupt %q; want 3, 7, 1, 2 and one",
			ev.Decisions, ev.Outcomes, ev.Orphans, ev.Unmatched, ev.Corrupt)
	}
	// Weights 0, 4, 2: IPS terms 0, 4·reward, 0; SNIPS divides by 6/3.
	tests := []struct {
		metric                     string
		logged, ips, snips, drWant float64
	}{
		{"clicks", 1.0 / 3, 4.0 / 3, 4.0 / 6, 4.0 / 3},
		{"conversions", 2.0 / 3, 4.0 / 3, 4.0 / 6, 4.0 / 3},
		{"value", 30.0 / 3, 80.0 / 3, 80.0 / 6, 80.0 / 3},
	}
	for _, tt := range tests {
		m := ev.Metrics[tt.metric]
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"logged", m.Logged.Value, tt.logged}, {"IPS", m.IPS.Value, tt.ips}, {"SNIPS", m.SNIPS.Value, tt.snips}, {"DR", m.DR.Value, tt.drWant}} {
			if math.Abs(c.got-c.want) > 1e-9 {
				t.Errorf("%s %s = %v, want %v", tt.metric, c.name, c.got, c.want)
			}
		}
	}
	if math.Abs(ev.ESS-36.0/20) > 1e-9 || ev.MaxWeight != 4 {
		t.Errorf("ESS %v, max weight %v, want 1.8 and 4", ev.ESS, ev.MaxWeight)
	}
	if ev.Unsupported != 0 {
		t.Errorf("unsupported share %v, want 0: every decision explored", ev.Unsupported)
	}
	// A greedy decision (no propensities) returned a: a new policy that
	// answers c there is unseen by any weight, and said so.
	greedy := entry("d4", "a", 1)
	greedy.PropensitySamples = 0
	tr.decisions = append(tr.decisions, greedy)
	ev2, err := evaluateTraffic(tr, always, 10, ope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev2.Unsupported != 0.25 || !strings.Contains(strings.Join(ev2.Warnings, "\n"), "25.0% of the offers the new catalog would return") {
		t.Errorf("unsupported share %v, warnings %q; want 0.25 and a warning", ev2.Unsupported, ev2.Warnings)
	}
	var out strings.Builder
	ev.print(&out)
	for _, want := range []string{"3 decisions, 7 outcomes", "conversions", "1.3333 [-1.2800, 3.9466]", "skipped:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
