package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// summary is the last line of the output. The headline numbers are
// expected value-weighted conversions per decision over the last half of
// the run: the true probability × value of each offer shown, which ranks
// the policies' choices without the noise of drawing outcomes. Realised
// holds the value of the conversions actually drawn, same period.
type summary struct {
	Random            float64 `json:"random"`
	Static            float64 `json:"static"`
	Learned           float64 `json:"learned"`
	Oracle            float64 `json:"oracle"`
	LearnedOverOracle float64 `json:"learned_over_oracle"`
	LearnedOverStatic float64 `json:"learned_over_static"`
	SegmentOracle     float64 `json:"segment_oracle"`
	Metric            string  `json:"metric"`
	Realised          values  `json:"realised"`
	WholeRun          values  `json:"whole_run"`
	Seed              uint64  `json:"seed"`
	Customers         int     `json:"customers"`
	Offers            int     `json:"offers"`
	Decisions         int     `json:"decisions"`
	Explore           string  `json:"explore"`
	Population        string  `json:"population"`
	CapViolations     int     `json:"cap_violations"`
}

// values are per-decision values of every policy.
type values struct {
	Random        float64 `json:"random"`
	Static        float64 `json:"static"`
	Learned       float64 `json:"learned"`
	SegmentOracle float64 `json:"segment_oracle"`
	Oracle        float64 `json:"oracle"`
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// perDecision returns every policy's value per decision.
func (r *result) perDecision(pick func(t *tally) float64, decisions int) values {
	v := func(k int) float64 { return round4(pick(&r.policies[k]) / float64(decisions)) }
	return values{Random: v(random), Static: v(static), Learned: v(learned), SegmentOracle: v(segmentOracle), Oracle: v(oracle)}
}

func (r *result) lastHalf() int { return r.cfg.Decisions - r.cfg.Decisions/2 }

func (r *result) summary() summary {
	last := r.perDecision(func(t *tally) float64 { return t.last.expected }, r.lastHalf())
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return round4(a / b)
	}
	l := &r.policies[learned].last
	return summary{
		Random: last.Random, Static: last.Static, Learned: last.Learned, Oracle: last.Oracle,
		LearnedOverOracle: ratio(l.expected, r.policies[oracle].last.expected),
		LearnedOverStatic: ratio(l.expected, r.policies[static].last.expected),
		SegmentOracle:     last.SegmentOracle,
		Metric:            "expected value-weighted conversions per decision, last half",
		Realised:          r.perDecision(func(t *tally) float64 { return t.last.realised }, r.lastHalf()),
		WholeRun:          r.perDecision(func(t *tally) float64 { return t.whole.expected }, r.cfg.Decisions),
		Seed:              r.cfg.Seed, Customers: r.cfg.Customers, Offers: r.cfg.Offers, Decisions: r.cfg.Decisions,
		Explore: r.cfg.Explore, Population: r.population, CapViolations: r.seedRun().violations,
	}
}

// write prints the report: the settings, the policies' table, learning
// over time, a breakdown by learn key, and last the summary as one line
// of JSON.
func (r *result) write(w io.Writer) error {
	cfg := &r.cfg
	var b strings.Builder
	if r.population == popRetail {
		fmt.Fprintf(&b, "nextbest learning simulation, seed %d\n", cfg.Seed)
		fmt.Fprintf(&b, "  %d customers, %d offers on %s, %d decisions per policy, %.1f eligible offers per decision (%d to %d)\n",
			cfg.Customers, cfg.Offers, cfg.Channel, cfg.Decisions, float64(r.eligibleSum)/float64(cfg.Decisions), r.eligibleMin, r.eligibleMax)
		model := "no model"
		if cfg.Model {
			model = "a model over the segments and 5 features"
		}
		fmt.Fprintf(&b, "  learning: %s, prior %g%% worth %g impressions, learn_by segment, %s; a new snapshot every %d decisions\n",
			cfg.Explore, 100*cfg.PriorRate, cfg.PriorStrength, model, cfg.Refresh)
		fmt.Fprintf(&b, "  (%d decisions are %v of traffic at 10k decisions/s); features no segment captures drive %g%% of the truth\n",
			cfg.Refresh, time.Duration(cfg.Refresh)*tick, 100*cfg.Residual)
	} else {
		fmt.Fprintf(&b, "nextbest learning simulation, population %s, seed %d\n", r.population, cfg.Seed)
		fmt.Fprintf(&b, "  %d customers, %d decisions per policy showing %d offers each, %.1f uncapped offers per decision (%d to %d); learning: %s, learn_by persona, min_explore %d; a new snapshot every %d decisions\n",
			cfg.Customers, cfg.Decisions, max(1, r.slots), float64(r.eligibleSum)/float64(cfg.Decisions), r.eligibleMin, r.eligibleMax, cfg.Explore, cfg.MinExplore, cfg.Refresh)
		fmt.Fprintf(&b, "  cap violations (impressions beyond a cap, counted by the sim): random %d, static %d, learned %d, oracle %d\n",
			r.violations[random], r.violations[static], r.violations[learned], r.violations[oracle])
	}
	if r.empty > 0 {
		fmt.Fprintf(&b, "  %d decisions had no eligible offer\n", r.empty)
	}

	b.WriteString("\nValue-weighted conversions per decision (EUR; summed over the offers a decision shows)\n")
	fmt.Fprintf(&b, "%-26s %28s   %19s\n", "", "── last half ──────────────", "── whole run ──────")
	fmt.Fprintf(&b, "%-26s %9s %9s %8s   %9s %9s\n", "policy", "expected", "realised", "/oracle", "expected", "realised")
	or := r.policies[oracle].last.expected
	for k := range nPolicies {
		t := &r.policies[k]
		fmt.Fprintf(&b, "%-26s %9.4f %9.4f %7.1f%%   %9.4f %9.4f\n", policyNames[k],
			t.last.expected/float64(r.lastHalf()), t.last.realised/float64(r.lastHalf()), 100*t.last.expected/or,
			t.whole.expected/float64(cfg.Decisions), t.whole.realised/float64(cfg.Decisions))
	}
	b.WriteString("  expected: true probability × value of the offer shown; realised: value of the conversions drawn.\n")
	b.WriteString("  segment oracle: knows each offer's true mean rate per learn key, the best learn_by: segment can reach.\n")

	b.WriteString("\nLearned / oracle (expected) by tenth of the run:")
	for i := range 10 {
		fmt.Fprintf(&b, " %.0f%%", 100*r.policies[learned].tenths[i]/r.policies[oracle].tenths[i])
	}
	b.WriteString("\n")

	b.WriteString("\nLast half by learn key (the customer's first segment), expected EUR per decision\n")
	fmt.Fprintf(&b, "%-16s %6s %6s %8s %8s %8s %8s %8s\n", "learn key", "share", "cells", "random", "static", "learned", "seg.orc", "oracle")
	for _, key := range r.keyOrder {
		ks := r.keys[key]
		if ks == nil || ks.decisions == 0 {
			continue
		}
		name := key
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(&b, "%-16s %5.1f%% %6d", name, 100*float64(ks.decisions)/float64(r.lastHalf()), ks.cells)
		for _, k := range [...]int{random, static, learned, segmentOracle, oracle} {
			s := r.policies[k].byKey[key]
			v := 0.0
			if s != nil {
				v = s.expected / float64(ks.decisions)
			}
			fmt.Fprintf(&b, " %8.4f", v)
		}
		b.WriteString("\n")
	}
	b.WriteString("  cells: offers the learner holds statistics for under the key.\n")

	s := r.summary()
	fmt.Fprintf(&b, "\nLast half: learned reaches %.1f%% of the oracle (the segment oracle %.1f%%) and %.2f× static. Simulated in %.1fs.\n",
		100*s.LearnedOverOracle, 100*s.SegmentOracle/s.Oracle, s.LearnedOverStatic, r.elapsed.Seconds())
	line, err := json.Marshal(s)
	if err != nil {
		return err
	}
	b.Write(line)
	b.WriteString("\n")
	_, err = io.WriteString(w, b.String())
	return err
}
