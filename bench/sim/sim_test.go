package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// small is a run small enough for the race detector.
var small = []string{"--customers", "5000", "--decisions", "20000", "--refresh", "200"}

// childArgs, when set in the environment, makes the test binary run as
// the command with these arguments, so tests can check what
// `go run ./bench/sim` prints.
const childArgs = "BENCH_SIM_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childArgs); ok {
		if err := run(strings.Fields(args), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sim:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child runs the command in a fresh process and returns its last line.
func child(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+strings.Join(args, " "))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sim %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func simulateArgs(t *testing.T, args ...string) *result {
	t.Helper()
	cfg, err := parse(args)
	if err != nil {
		t.Fatal(err)
	}
	r, err := simulate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestInvariants checks what must hold whatever the learner does: the
// oracle is the best choice of every decision, so it beats every policy
// in expected value, overall and for every learn key; learning beats
// picking at random; and the statistics the learned policy fed back are
// exactly its decisions, impressions and conversions.
func TestInvariants(t *testing.T) {
	r := simulateArgs(t, small...)
	const tol = 1e-9
	or := &r.policies[oracle]
	for k := range nPolicies {
		p := &r.policies[k]
		if p.whole.expected > or.whole.expected*(1+tol) || p.last.expected > or.last.expected*(1+tol) {
			t.Errorf("%s: expected %.2f (last half %.2f), above the oracle's %.2f (%.2f)",
				policyNames[k], p.whole.expected, p.last.expected, or.whole.expected, or.last.expected)
		}
		for key, s := range p.byKey {
			if o := or.byKey[key]; s.expected > o.expected*(1+tol) {
				t.Errorf("%s, learn key %q: expected %.2f, above the oracle's %.2f", policyNames[k], key, s.expected, o.expected)
			}
		}
	}
	if got, rnd := r.policies[learned].last.expected, r.policies[random].last.expected; got <= rnd {
		t.Errorf("learned %.2f, want more than random's %.2f", got, rnd)
	}
	if r.empty > 0 || r.eligibleMin < 1 {
		t.Errorf("%d decisions without an eligible offer (min %d eligible), want none: new-arrivals is for everyone", r.empty, r.eligibleMin)
	}

	var decisions, impressions, conversions int64
	var value float64
	for k, c := range r.stats {
		switch {
		case k.Hour != 0 && k.Offer == "" && k.Experiment == "" && k.Segment == "": // all traffic: the segments' cells copy it
			decisions += c.Decisions
		case k.Hour == 0 && k.Offer != "" && !featurestore.IsModelKey(k.Key): // the learning model's cells count again
			impressions += c.Impressions
			conversions += c.Conversions
			value += c.Value
		}
	}
	if want := int64(r.cfg.Decisions); decisions != want || impressions != want {
		t.Errorf("statistics count %d decisions and %d impressions, want %d of each", decisions, impressions, want)
	}
	if want := r.policies[learned].whole.realised; math.Abs(value-want) > 1e-6*want || conversions == 0 {
		t.Errorf("statistics count %d conversions worth %.2f, want the learned policy's %.2f", conversions, value, want)
	}
}

// TestReport checks the output: the policies' table, then a last line of
// JSON with every key the issue asks for.
func TestReport(t *testing.T) {
	r := simulateArgs(t, small...)
	var out bytes.Buffer
	if err := r.write(&out); err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSpace(out.String())
	for _, name := range policyNames {
		if !strings.Contains(text, name) {
			t.Errorf("output has no row for %q:\n%s", name, text)
		}
	}
	last := text[strings.LastIndexByte(text, '\n')+1:]
	var got map[string]any
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	for _, key := range []string{"random", "static", "learned", "oracle", "learned_over_oracle"} {
		if v, ok := got[key].(float64); !ok || !(v > 0) {
			t.Errorf("last line: %q is %v, want a positive number", key, got[key])
		}
	}
	l, o, ratio := got["learned"].(float64), got["oracle"].(float64), got["learned_over_oracle"].(float64)
	if math.Abs(ratio-l/o) > 1e-3 {
		t.Errorf("learned_over_oracle %v, want learned/oracle = %v", ratio, l/o)
	}
}

// TestDeterministic runs the same simulation twice in one process, under
// Thompson sampling and greedy exploration: every draw, the engine's
// included (Request.Rand), comes from the seed.
func TestDeterministic(t *testing.T) {
	for _, explore := range []string{"thompson", "greedy"} {
		args := append([]string{"--explore", explore}, small...)
		a, b := simulateArgs(t, args...), simulateArgs(t, args...)
		if sa, sb := a.summary(), b.summary(); sa != sb {
			t.Errorf("%s: two runs with the same seed differ:\n%+v\n%+v", explore, sa, sb)
		}
		if !reflect.DeepEqual(a.stats, b.stats) {
			t.Errorf("%s: two runs with the same seed fed back different statistics", explore)
		}
	}
}

// TestSeedReproducible runs the command, with Thompson sampling, twice in
// fresh processes as `go run ./bench/sim` would: same seed, same last
// line; another seed, another line.
func TestSeedReproducible(t *testing.T) {
	a, b := child(t, small...), child(t, small...)
	if a != b {
		t.Errorf("two runs with the same seed differ:\n%s\n%s", a, b)
	}
	if c := child(t, append([]string{"--seed", "2"}, small...)...); c == a {
		t.Errorf("seeds 1 and 2 give the same result %s", c)
	}
}

// TestAcceptance is the acceptance at the default sizes: over the
// last half of the run, learned reaches 90% of the oracle and beats
// static ranking.
func TestAcceptance(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("the default run: 200,000 decisions per policy")
	}
	line := child(t)
	var s summary
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("last line %q: %v", line, err)
	}
	if s.LearnedOverOracle < 0.9 {
		t.Errorf("learned reaches %.1f%% of the oracle, want at least 90%%", 100*s.LearnedOverOracle)
	}
	if s.Learned <= s.Static {
		t.Errorf("learned %.4f, want more than static's %.4f", s.Learned, s.Static)
	}
	t.Logf("%s", line)
}

// TestFlags: the command line is validated before anything runs.
func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--offers", "51"},
		{"--offers", "0"},
		{"--decisions", "5"},
		{"--residual", "1"},
		{"--refresh", "0"},
		{"--explore", "random"},
		{"--channel", "email"},
		{"--prior-rate", "1.5"},
		{"--population", "moon"},
		{"--seeds", "0"},
	} {
		if err := run(args, new(bytes.Buffer)); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
	cfg, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.resolve()
	if cfg.Customers != 100000 || cfg.Decisions != 200000 || cfg.Offers != 30 || cfg.Explore != "thompson" || cfg.Refresh != 1000 {
		t.Errorf("defaults %+v, want the issue's 100000 customers, 200000 decisions, 30 offers, thompson, refresh 1000", cfg)
	}
}
