package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestOPEMode runs the off-policy evaluation mode small (quiet-winner,
// 4 seeds of 3,000 decisions) and checks its report: one row per
// target, coverages that are shares, B's live value near its truth,
// and the greedy target (what A learned, shipped) estimated near its
// truth by SNIPS and DR, whose overlap with A is good. The coverage at
// full size is in docs/benchmarks.md.
func TestOPEMode(t *testing.T) {
	seeds := "4"
	if raceEnabled {
		seeds = "1"
	}
	var out bytes.Buffer
	if err := run([]string{"ope", "--population", "quiet-winner", "--seeds", seeds, "--decisions", "3000"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rows []struct {
		Target   string
		Coverage map[string]float64 `json:"coverage_of_live"`
		MeanEst  map[string]float64 `json:"mean_estimate"`
		MeanLive float64            `json:"mean_live"`
		MeanTrue float64            `json:"mean_truth"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rows); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(rows) != len(opeTargets) {
		t.Fatalf("%d rows, want one per target %v:\n%s", len(rows), opeTargets, out.String())
	}
	for _, r := range rows {
		for name, c := range r.Coverage {
			if c < 0 || c > 1+1e-9 {
				t.Errorf("%s: %s coverage %v", r.Target, name, c)
			}
		}
		if math.Abs(r.MeanLive-r.MeanTrue) > 0.15*r.MeanTrue {
			t.Errorf("%s: live %v, truth %v", r.Target, r.MeanLive, r.MeanTrue)
		}
		if r.Target == "greedy" {
			for _, name := range []string{"snips", "dr"} {
				if e := r.MeanEst[name]; math.Abs(e-r.MeanTrue) > 0.15*r.MeanTrue {
					t.Errorf("greedy: %s estimates %v, truth %v", name, e, r.MeanTrue)
				}
			}
		}
	}
	t.Log(out.String())
}

func TestOPEModeRefuses(t *testing.T) {
	for _, args := range [][]string{{"ope", "--seeds", "0"}, {"ope", "--floor", "2"}, {"ope", "--population", "retail"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
