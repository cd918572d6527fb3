package main

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestWorldDeterministic: each new population gives the same result and
// the same statistics twice for a seed, another result for another seed.
func TestWorldDeterministic(t *testing.T) {
	for _, args := range [][]string{
		{"--population", "quiet-winner", "--decisions", "20000", "--customers", "2000"},
		{"--population", "obd", "--decisions", "20000"},
	} {
		a, b := simulateArgs(t, args...), simulateArgs(t, args...)
		if sa, sb := a.summary(), b.summary(); sa != sb {
			t.Errorf("%v: two runs with the same seed differ:\n%+v\n%+v", args, sa, sb)
		}
		if !reflect.DeepEqual(a.stats, b.stats) {
			t.Errorf("%v: two runs with the same seed fed back different statistics", args)
		}
		if c := simulateArgs(t, append(args, "--seed", "2")...); c.summary() == a.summary() {
			t.Errorf("%v: seeds 1 and 2 give the same result", args)
		}
	}
}

// TestQuietWinner checks the quiet-winner population: the caps bind (some
// decision finds an offer capped) yet no policy shows an offer beyond
// its cap, the oracle beats every policy, and learning beats random.
func TestQuietWinner(t *testing.T) {
	r := simulateArgs(t, "--population", "quiet-winner", "--decisions", "20000", "--customers", "2000")
	if r.eligibleMin >= len(quietWinner().offers) {
		t.Errorf("at least %d offers uncapped in every decision: the caps never bind", r.eligibleMin)
	}
	if r.violations != [nPolicies]int{} {
		t.Errorf("cap violations %v, want none", r.violations)
	}
	or := r.policies[oracle].whole.expected
	for k := range nPolicies {
		if e := r.policies[k].whole.expected; e > or*(1+1e-9) {
			t.Errorf("%s: expected %.2f over the run, above the oracle's %.2f", policyNames[k], e, or)
		}
	}
	if l, rnd := r.policies[learned].last.expected, r.policies[random].last.expected; l <= rnd {
		t.Errorf("learned %.2f, want more than random's %.2f", l, rnd)
	}
	if got := len(r.keys); got != 3 {
		t.Errorf("%d learn keys, want the 3 personas", got)
	}
}

// TestOBDWorld checks the priors embedded from the Open Bandit Dataset
// against the figures its README states: 80 items, mean CTR 0.317%,
// best 0.501%.
func TestOBDWorld(t *testing.T) {
	w, err := obdWorld()
	if err != nil {
		t.Fatal(err)
	}
	p := w.kinds[0].p
	if len(p) != 80 || len(w.offers) != 80 {
		t.Fatalf("%d items, want 80", len(p))
	}
	sum, best := 0.0, 0.0
	for _, x := range p {
		sum += x
		best = max(best, x)
	}
	if mean := sum / 80; math.Abs(mean-0.00317) > 0.00001 {
		t.Errorf("mean CTR %.5f, want 0.00317", mean)
	}
	if math.Abs(best-0.00501) > 0.00001 {
		t.Errorf("best CTR %.5f, want 0.00501", best)
	}
}

// TestSeeds runs --seeds over every population, small, and checks the
// summary line.
func TestSeeds(t *testing.T) {
	var out bytes.Buffer
	args := []string{"--population", "all", "--seeds", "2", "--decisions", "4000", "--customers", "1000", "--offers", "10"}
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSpace(out.String())
	var got []populationRuns
	if err := json.Unmarshal([]byte(text[strings.LastIndexByte(text, '\n')+1:]), &got); err != nil {
		t.Fatalf("last line: %v\n%s", err, text)
	}
	if len(got) != len(populations) {
		t.Fatalf("%d populations, want %d:\n%s", len(got), len(populations), text)
	}
	for i, pr := range got {
		if pr.Population != populations[i] || pr.Seeds != 2 || pr.Decisions != 4000 {
			t.Errorf("row %d: %+v, want %s over 2 seeds of 4000 decisions", i, pr, populations[i])
		}
		if !(pr.OracleMin > 0 && pr.OracleMin <= pr.OracleMean && pr.RandomMin > 0 && pr.StaticMin > 0) {
			t.Errorf("%s: ratios %+v, want positive, worst ≤ mean", pr.Population, pr)
		}
		if pr.Violations != 0 {
			t.Errorf("%s: %d cap violations, want none", pr.Population, pr.Violations)
		}
	}
}

// TestImmediate: with no snapshot in the whole run (--refresh beyond
// --decisions), a learner that counts its own outcomes at once still
// learns; the snapshot-only learner stays at its prior.
func TestImmediate(t *testing.T) {
	args := []string{"--population", "quiet-winner", "--decisions", "12000", "--customers", "2000", "--refresh", "1000000"}
	now := simulateArgs(t, args...)
	late := simulateArgs(t, append(args, "--no-immediate")...)
	if a, b := now.policies[learned].last.expected, late.policies[learned].last.expected; a <= b*1.05 {
		t.Errorf("immediate learner %.1f, snapshot-only %.1f: want the immediate one clearly ahead", a, b)
	}
}
