package ope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestEvaluateKnownAnswers(t *testing.T) {
	const z = DefaultZ
	est := func(v, se float64) Estimate { return Estimate{Value: v, Low: v - z*se, High: v + z*se, StdErr: se} }
	tests := []struct {
		name     string
		samples  []Sample
		opts     Options
		ips      Estimate
		snips    Estimate
		dr       Estimate
		logged   Estimate
		ess      float64
		maxW     float64
		clipped  int
		zero     int
		warnings []string // substrings, in order
	}{
		{
			// The target always picks what was logged in the first
			// decision, never in the second: IPS terms 2 and 0.
			name: "two decisions",
			samples: []Sample{
				{Items: []Item{{Reward: 1, Logging: 0.5, Target: 1, Model: 0.5}}, Direct: 0.5, TargetMass: 1},
				{Items: []Item{{Reward: 0, Logging: 0.5, Target: 0, Model: 0.5}}, Direct: 0.5, TargetMass: 1},
			},
			ips:    est(1, 1),
			snips:  est(1, 0),
			dr:     est(1, 0.5),
			logged: est(0.5, 0.5),
			ess:    1, maxW: 2,
		},
		{
			// The target equals the logger: every weight 1, IPS is the
			// logged mean and SNIPS the same.
			name: "on policy",
			samples: []Sample{
				{Items: []Item{{Reward: 3, Logging: 0.25, Target: 0.25}}, TargetMass: 1},
				{Items: []Item{{Reward: 1, Logging: 0.75, Target: 0.75}}, TargetMass: 1},
			},
			ips:    est(2, 1),
			snips:  est(2, 1),
			dr:     est(2, 1),
			logged: est(2, 1),
			ess:    2, maxW: 1,
		},
		{
			// Two offers a decision: weights 2 and 1 in the first, 1 and
			// 0 in the second; the target returns 1.5 offers a decision.
			// IPS terms 2·1+1·0 = 2 and 1·1 = 1; SNIPS = 3/4 × 1.5.
			name: "slates",
			samples: []Sample{
				{Items: []Item{{Reward: 1, Logging: 0.5, Target: 1}, {Reward: 0, Logging: 0.5, Target: 0.5}}, TargetMass: 1.5},
				{Items: []Item{{Reward: 1, Logging: 1, Target: 1}, {Reward: 1, Logging: 0.5, Target: 0}}, TargetMass: 1.5},
			},
			ips: est(1.5, 0.5),
			// y − R·z with R = 3/4: 2 − 2.25 = −0.25, 1 − 0.75 = 0.25;
			// sd √0.125, se √(0.125/2) = 0.25, over z̄ = 2, × 1.5.
			snips:  est(1.125, 1.5*0.25/2),
			dr:     est(1.5, 0.5),
			logged: est(1.5, 0.5),
			ess:    16.0 / 6, maxW: 2,
		},
		{
			// A propensity of 0 for an offer the target returns is
			// clipped to the floor: weight 1/0.01 = 100.
			name: "zero propensity",
			samples: []Sample{
				{Items: []Item{{Reward: 1, Logging: 0, Target: 1}}, TargetMass: 1},
				{Items: []Item{{Reward: 0, Logging: 1, Target: 1}}, TargetMass: 1},
			},
			ips:    est(50, 50),
			snips:  est(100.0/101, (100.0/101)/50.5), // d = ±100/101, over z̄ = 50.5
			dr:     est(50, 50),
			logged: est(0.5, 0.5),
			ess:    101 * 101 / 10001.0, maxW: 100,
			clipped: 1, zero: 1,
			warnings: []string{"largest weight 100.0 is over 20", "1 logged offers had propensity 0"},
		},
		{
			name: "floor chosen",
			opts: Options{Floor: 0.1, MaxWeight: 5},
			samples: []Sample{
				{Items: []Item{{Reward: 1, Logging: 0.05, Target: 0.5}}, TargetMass: 1},
				{Items: []Item{{Reward: 1, Logging: 0.5, Target: 0.5}}, TargetMass: 1},
			},
			ips:    est(3, 2),
			snips:  est(1, 0),
			dr:     est(3, 2),
			logged: est(1, 0),
			ess:    36 / 26.0, maxW: 5,
			clipped:  1,
			warnings: []string{"1 logged propensities below 0.1 were clipped"},
		},
		{
			name: "no overlap",
			samples: []Sample{
				{Items: []Item{{Reward: 1, Logging: 0.5, Target: 0}}, TargetMass: 1},
				{Items: []Item{{Reward: 0, Logging: 0.5, Target: 0}}, TargetMass: 1},
			},
			ips:      est(0, 0),
			snips:    Estimate{},
			dr:       est(0, 0),
			logged:   est(0.5, 0.5),
			warnings: []string{"effective sample size 0", "no logged offer is one the new policy would return"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Evaluate(tt.samples, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name      string
				got, want Estimate
			}{{"ips", got.IPS, tt.ips}, {"snips", got.SNIPS, tt.snips}, {"dr", got.DR, tt.dr}, {"logged", got.Logged, tt.logged}} {
				if !near(c.got.Value, c.want.Value) || !near(c.got.Low, c.want.Low) || !near(c.got.High, c.want.High) || !near(c.got.StdErr, c.want.StdErr) {
					t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
				}
			}
			if !near(got.ESS, tt.ess) || !near(got.MaxWeight, tt.maxW) || got.Clipped != tt.clipped || got.Zero != tt.zero {
				t.Errorf("ess %v max weight %v clipped %d zero %d, want %v %v %d %d", got.ESS, got.MaxWeight, got.Clipped, got.Zero, tt.ess, tt.maxW, tt.clipped, tt.zero)
			}
			if len(got.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d like %q", got.Warnings, len(tt.warnings), tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(got.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to say %q", i, got.Warnings[i], w)
				}
			}
		})
	}
}

func TestEvaluateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		samples []Sample
		opts    Options
	}{
		{"empty", nil, Options{}},
		{"propensity over 1", []Sample{{Items: []Item{{Logging: 1.5, Target: 1}}}}, Options{}},
		{"negative target", []Sample{{Items: []Item{{Logging: 0.5, Target: -1}}}}, Options{}},
		{"NaN reward", []Sample{{Items: []Item{{Reward: math.NaN(), Logging: 0.5}}}}, Options{}},
		{"floor over 1", []Sample{{}}, Options{Floor: 2}},
	}
	for _, tt := range tests {
		if _, err := Evaluate(tt.samples, tt.opts); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// TestEvaluateCovers simulates a logging and a target policy over three
// kinds of customer and three offers with known conversion rates, and
// checks that each estimator's 95% interval covers the target's true
// value in about 95% of 400 logs of 1,000 decisions (at least 91%: the
// binomial's 1st percentile at 95% is about 93%). DR's reward model is
// deliberately off by 0.05: it stays unbiased through the weights.
func TestEvaluateCovers(t *testing.T) {
	rates := [3][3]float64{{0.10, 0.30, 0.05}, {0.20, 0.05, 0.40}, {0.02, 0.15, 0.25}}
	logging := [3][3]float64{{0.5, 0.3, 0.2}, {0.2, 0.5, 0.3}, {0.3, 0.2, 0.5}}
	target := [3][3]float64{{0.1, 0.8, 0.1}, {0.1, 0.1, 0.8}, {0.1, 0.1, 0.8}}
	var truth float64
	for x := range 3 {
		for a := range 3 {
			truth += target[x][a] * rates[x][a] / 3
		}
	}
	const reps, n = 400, 1000
	var covered [3]int
	samples := make([]Sample, n)
	for rep := range reps {
		rng := rand.New(rand.NewPCG(14, uint64(rep)))
		for i := range samples {
			x := rng.IntN(3)
			a, u := 0, rng.Float64()
			for c := logging[x][0]; u >= c && a < 2; c += logging[x][a] {
				a++
			}
			r := 0.0
			if rng.Float64() < rates[x][a] {
				r = 1
			}
			direct := 0.0
			for b := range 3 {
				direct += target[x][b] * (rates[x][b] + 0.05)
			}
			samples[i] = Sample{Items: []Item{{Reward: r, Logging: logging[x][a], Target: target[x][a], Model: rates[x][a] + 0.05}}, Direct: direct, TargetMass: 1}
		}
		res, err := Evaluate(samples, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range []Estimate{res.IPS, res.SNIPS, res.DR} {
			if e.Covers(truth) {
				covered[i]++
			}
		}
	}
	for i, name := range []string{"IPS", "SNIPS", "DR"} {
		share := float64(covered[i]) / reps
		t.Logf("%s: 95%% interval covers the truth %.4f in %.1f%% of %d logs", name, truth, 100*share, reps)
		if share < 0.91 {
			t.Errorf("%s covers in %.1f%% of logs, want about 95%%", name, 100*share)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	samples := make([]Sample, 10000)
	for i := range samples {
		samples[i] = Sample{Items: []Item{{Reward: float64(i % 7 / 6), Logging: 0.25, Target: 0.5, Model: 0.1}}, Direct: 0.1, TargetMass: 1}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(samples, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
