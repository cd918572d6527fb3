package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/xid"
)

// TestEvaluateCutHistories: a new catalog whose caps read further back
// than the contacts a decision logged is evaluated with a warning that
// counts those decisions; the logging catalog gets none.
func TestEvaluateCutHistories(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "decisions")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	for i := range 4 {
		now := at.Add(time.Duration(i) * time.Minute)
		omitted := ""
		if i%2 == 0 { // two decisions left 3 contacts of 10 days ago out
			omitted = fmt.Sprintf(`,"contacts_omitted":3,"contacts_omitted_at":%d`, now.Add(-10*24*time.Hour).UnixNano())
		}
		fmt.Fprintf(&log, `{"id":%q,"time":%q,"customer_id":"c-%d","channel":"web","limit":1,"catalog":"v","explore":"thompson",`+
			`"offers":[{"id":"a","score":3,"draw":0.3,"propensity":0.33}],"propensity_samples":32%s}`+"\n",
			xid.NewWithTime(now).String(), now.Format(time.RFC3339Nano), i, omitted)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.jsonl"), []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/evaluate_logging.yaml")
	if err != nil {
		t.Fatal(err)
	}
	capped := filepath.Join(t.TempDir(), "capped.yaml")
	withCap := strings.Replace(string(src), "- {id: a, channels: [web, app], value: 10,", "- {id: a, channels: [web, app], value: 10, caps: [{max: 1, within: 30d}],", 1)
	if withCap == string(src) {
		t.Fatal("the logging catalog has no offer a to cap")
	}
	if err := os.WriteFile(capped, []byte(withCap), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		catalog string
		want    int
	}{
		{"testdata/evaluate_logging.yaml", 0},
		{capped, 2},
	} {
		code, stdout, stderr := runBinary(t, "evaluate", "--log", dir, "--catalog", tt.catalog, "--seeds", "10", "--json")
		if code != 0 {
			t.Fatalf("evaluate %s: exit %d: %s", tt.catalog, code, stderr)
		}
		var out struct {
			CutHistories int `json:"cut_histories"`
			Warnings     []string
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("%v in %s", err, stdout)
		}
		warned := strings.Contains(strings.Join(out.Warnings, "\n"), fmt.Sprintf("%d of 4 logged decisions: the new catalog reads contacts further back", tt.want))
		if out.CutHistories != tt.want || warned != (tt.want > 0) {
			t.Errorf("%s: cut_histories %d, warnings %q; want %d", tt.catalog, out.CutHistories, out.Warnings, tt.want)
		}
	}
}
