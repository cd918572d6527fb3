package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"testing"
)

// Issue 14, point 3, over real logged traffic from the binary: a node
// logs every decision (Thompson sampling over offers a, b and c, about
// a third each) and the outcomes simulated customers report with their
// decision ids; stopped, nextbest evaluate estimates on its log what
// a new catalog that always answers c would have earned, and what the
// logging catalog itself earned. The simulated customers are fixed: a
// customer converts on an offer when a hash of the two falls under the
// offer's rate, so the true value of any policy on them is known.

// simRates are the conversion rates of the offers; a customer clicks
// when the hash falls under the rate + 0.2 (every converter clicks).
var simRates = map[string]float64{"a": 0.1, "b": 0.3, "c": 0.5}

// simValue is a conversion's value, by offer.
var simValue = map[string]float64{"a": 20, "b": 10, "c": 6}

func simU(customer, offer string) float64 {
	h := fnv.New64a()
	h.Write([]byte(customer + "/" + offer))
	return float64(h.Sum64()>>11) / (1 << 53)
}

type evalOutput struct {
	Decisions int
	Outcomes  int
	ESS       float64
	Warnings  []string
	Metrics   map[string]map[string]struct {
		Value, Low, High float64
		StdErr           float64 `json:"std_err"`
	}
}

func TestEvaluateLoggedTraffic(t *testing.T) {
	for _, tt := range storeBackends {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--addr", "127.0.0.1:0", "--catalog", "testdata/evaluate_logging.yaml", "--data", dir,
				// More re-draws than the default, as docs/experiments.md
				// advises for a log meant for evaluation.
				"--decision-log-sample", "1", "--decision-log-propensity-samples", "256"}, tt.args(t)...)
			s := startServerIn(t, ".", args...)
			const n = 600
			var customers []string
			chosen := map[string]int{}
			for i := range n {
				c := fmt.Sprintf("sim-%d", i)
				customers = append(customers, c)
				d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web","limit":1}`, c))
				if len(d.Offers) != 1 {
					t.Fatalf("decision %d: %d offers", i, len(d.Offers))
				}
				o := d.Offers[0].ID
				chosen[o]++
				u := simU(c, o)
				if u < simRates[o]+0.2 {
					s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"click","offer_id":%q,"channel":"web","decision_id":%q}`, c, o, d.DecisionID), 202)
				}
				if u < simRates[o] {
					s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"conversion","offer_id":%q,"channel":"web","decision_id":%q,"properties":{"value":%v}}`, c, o, d.DecisionID, simValue[o]), 202)
				}
			}
			s.stop()
			t.Logf("offers chosen: %v", chosen)

			// The truths: a policy's value on these customers.
			truth := func(p map[string]float64) map[string]float64 {
				v := map[string]float64{}
				for _, c := range customers {
					for o, po := range p {
						u := simU(c, o)
						if u < simRates[o]+0.2 {
							v["clicks"] += po / n
						}
						if u < simRates[o] {
							v["conversions"] += po / n
							v["value"] += po * simValue[o] / n
						}
					}
				}
				return v
			}
			for _, ev := range []struct {
				catalog string
				policy  map[string]float64
			}{
				{"testdata/evaluate_new.yaml", map[string]float64{"c": 1}},
				{"testdata/evaluate_logging.yaml", map[string]float64{"a": 1.0 / 3, "b": 1.0 / 3, "c": 1.0 / 3}},
			} {
				code, stdout, stderr := runBinary(t, "evaluate", "--log", dir, "--catalog", ev.catalog, "--seeds", "100", "--json")
				if code != 0 {
					t.Fatalf("evaluate %s: exit %d: %s", ev.catalog, code, stderr)
				}
				var out evalOutput
				if err := json.Unmarshal([]byte(stdout), &out); err != nil {
					t.Fatalf("%v in %s", err, stdout)
				}
				// Warnings are not failures: the logging policy learns, so
				// now and then an offer's logged propensity is below the
				// clipping floor (1 run in CI warned of one in 600); the
				// estimates below are what must hold.
				if out.Decisions != n || out.Outcomes == 0 {
					t.Errorf("%s: %d decisions, %d outcomes; want %d, some", ev.catalog, out.Decisions, out.Outcomes, n)
				}
				if len(out.Warnings) > 0 {
					t.Logf("%s: warnings %q", ev.catalog, out.Warnings)
				}
				want := truth(ev.policy)
				for _, metric := range []string{"clicks", "conversions", "value"} {
					for _, est := range []string{"ips", "snips", "dr"} {
						e := out.Metrics[metric][est]
						// Wide: within 4 standard errors of the truth (a
						// 95% interval misses 1 time in 20; this 1 in
						// 16,000), as the decisions' draws are not seeded.
						dev := math.Abs(e.Value - want[metric])
						t.Logf("%s %s %s: %.4f [%.4f, %.4f], truth %.4f", ev.catalog, metric, est, e.Value, e.Low, e.High, want[metric])
						if e.StdErr <= 0 || dev > 4*e.StdErr || e.High-e.Low > want[metric] {
							t.Errorf("%s: %s %s %.4f ± %.4f, truth %.4f", ev.catalog, metric, est, e.Value, e.StdErr, want[metric])
						}
					}
				}
			}
			code, stdout, _ := runBinary(t, "evaluate", "--log", dir, "--catalog", "testdata/evaluate_new.yaml", "--seeds", "20")
			if code != 0 || !strings.Contains(stdout, "600 decisions") || !strings.Contains(stdout, "conversions") {
				t.Errorf("the table: exit %d\n%s", code, stdout)
			}
		})
	}
}

// TestEvaluateErrors: what evaluate refuses, and how it says so.
func TestEvaluateErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no log", []string{"--log", empty, "--catalog", "testdata/evaluate_new.yaml"}, 2, "no decision log there"},
		{"missing dir", []string{"--log", empty + "/nope", "--catalog", "testdata/evaluate_new.yaml"}, 2, "no such file"},
		{"bad catalog", []string{"--log", "testdata", "--catalog", "testdata/invalid.yaml"}, 1, "testdata/invalid.yaml:"},
		{"seeds", []string{"--log", empty, "--catalog", "testdata/evaluate_new.yaml", "--seeds", "0"}, 2, "--seeds must be from 1"},
	}
	for _, tt := range tests {
		code, _, stderr := runBinary(t, append([]string{"evaluate"}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, %s; want exit %d saying %q", tt.name, code, stderr, tt.code, tt.want)
		}
	}
}
