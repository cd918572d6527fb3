package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// TestImportOutcomeLines: outcomes naming logged decisions that arrive
// by import, through the server (POST /v1/customers:import) or into a
// stopped node's store (nextbest import --data --decision-log-sample),
// are written to the decision log as outcome lines, as those posted to
// /v1/events are: nextbest evaluate sees them all.
func TestImportOutcomeLines(t *testing.T) {
	for _, tt := range storeBackends {
		t.Run(tt.name, func(t *testing.T) { importOutcomeLines(t, tt.args(t)) })
	}
}

// importOutcomeLines is TestImportOutcomeLines on a node started with
// args besides; with --redis, the import into the stopped node's store
// is into Redis, which has no node's log: only --data writes outcome
// lines (docs/operations.md, Bulk import).
func importOutcomeLines(t *testing.T, args []string) {
	dir := t.TempDir()
	s := startServerIn(t, ".", append([]string{"--addr", "127.0.0.1:0", "--catalog", "testdata/evaluate_logging.yaml", "--data", dir,
		"--decision-log-sample", "1"}, args...)...)
	redis := len(args) > 0
	line := func(customer, typ, offer, decision, event string) string {
		return fmt.Sprintf(`{"customer_id":%q,"events":[{"type":%q,"offer_id":%q,"channel":"web","decision_id":%q,"event_id":%q}]}`+"\n",
			customer, typ, offer, decision, event)
	}
	var viaServer, viaCLI strings.Builder
	var want []string // event ids
	for i := range 30 {
		c := fmt.Sprintf("imp-%d", i)
		d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web","limit":1}`, c))
		if len(d.Offers) != 1 {
			t.Fatalf("decision %d: %d offers", i, len(d.Offers))
		}
		ev := fmt.Sprintf("e-%d", i)
		switch i % 3 {
		case 0:
			s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"click","offer_id":%q,"channel":"web","decision_id":%q,"event_id":%q}`,
				c, d.Offers[0].ID, d.DecisionID, ev), 202)
		case 1:
			viaServer.WriteString(line(c, "conversion", d.Offers[0].ID, d.DecisionID, ev))
		case 2:
			viaCLI.WriteString(line(c, "dismiss", d.Offers[0].ID, d.DecisionID, ev))
			if redis {
				continue
			}
		}
		want = append(want, ev)
	}
	if status, body := s.call("POST", "/v1/customers:import", viaServer.String(), "Content-Type", "application/x-ndjson"); status != 200 {
		t.Fatalf("import through the server: %d %s", status, body)
	}
	s.stop()
	file := filepath.Join(t.TempDir(), "outcomes.ndjson")
	if err := os.WriteFile(file, []byte(viaCLI.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	target := []string{"--data", dir}
	if redis {
		target = args
	}
	code, out, errs := runBinary(t, append(append([]string{"import", "--catalog", "testdata/evaluate_logging.yaml", "--decision-log-sample", "1"}, target...), file)...)
	if code != 0 || !strings.Contains(out, "imported 10 customers (10 events applied") {
		t.Fatalf("import %v: exit %d\n%s%s", target, code, out, errs)
	}
	var got []string
	decisions := 0
	for r, err := range decisionlog.Records(filepath.Join(dir, "decisions")) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Entry != nil {
			decisions++
			continue
		}
		got = append(got, r.Outcome.EventID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if decisions != 30 || !slices.Equal(got, want) {
		t.Errorf("%d decisions and outcome lines of events %v; want 30 and %v", decisions, got, want)
	}
	code, out, errs = runBinary(t, "import", "--catalog", "testdata/evaluate_logging.yaml", "--data", dir, "--decision-log-sample", "2", file)
	if code != 2 || !strings.Contains(errs, "--decision-log-sample 2: must be from 0 to 1") {
		t.Errorf("--decision-log-sample 2: exit %d\n%s%s", code, out, errs)
	}
}
