package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// seedRun is what one seed of one population scored over the last half:
// learned's expected value over the cap-aware oracle's, static's and
// random's, and every policy's cap violations.
type seedRun struct {
	seed                               uint64
	overOracle, overStatic, overRandom float64
	violations                         int
}

// populationRuns is the --seeds summary of one population.
type populationRuns struct {
	Population string  `json:"population"`
	Seeds      int     `json:"seeds"`
	Decisions  int     `json:"decisions"`
	OracleMean float64 `json:"learned_over_oracle_mean"`
	OracleMin  float64 `json:"learned_over_oracle_worst"`
	StaticMean float64 `json:"learned_over_static_mean"`
	StaticMin  float64 `json:"learned_over_static_worst"`
	RandomMean float64 `json:"learned_over_random_mean"`
	RandomMin  float64 `json:"learned_over_random_worst"`
	WorstSeed  uint64  `json:"worst_seed"` // of learned over oracle
	Violations int     `json:"cap_violations"`
	Seconds    float64 `json:"seconds"`
}

// runSeeds simulates each population (one, or every one for "all") for
// --seeds seeds and prints a table, then one line of JSON: a list of
// populationRuns.
func runSeeds(cfg config, w io.Writer) error {
	pops := []string{cfg.Population}
	if cfg.Population == "all" {
		pops = populations
	}
	var out []populationRuns
	var b strings.Builder
	fmt.Fprintf(&b, "nextbest learning simulation, %d seeds from %d, explore %s, min_explore %d (-1: nextbest's default), immediate %v\n", cfg.Seeds, cfg.Seed, cfg.Explore, cfg.MinExplore, cfg.Immediate)
	fmt.Fprintf(&b, "%-13s %9s  %-15s  %-15s  %-15s %10s %8s\n", "population", "decisions", "learned/oracle", "learned/static", "learned/random", "cap viol.", "seconds")
	fmt.Fprintf(&b, "%-13s %9s  %7s %7s  %7s %7s  %7s %7s\n", "", "", "mean", "worst", "mean", "worst", "mean", "worst")
	for _, pop := range pops {
		start := time.Now()
		pr := populationRuns{Population: pop, Seeds: cfg.Seeds, OracleMin: math.Inf(1), StaticMin: math.Inf(1), RandomMin: math.Inf(1)}
		runs := make([]seedRun, cfg.Seeds)
		errs := make([]error, cfg.Seeds)
		var wg sync.WaitGroup
		next := make(chan int)
		for range max(1, cfg.Parallel) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					c := cfg
					c.Population, c.Seed = pop, cfg.Seed+uint64(i)
					r, err := simulate(c)
					if err != nil {
						errs[i] = fmt.Errorf("%s, seed %d: %w", pop, c.Seed, err)
						continue
					}
					runs[i] = r.seedRun()
				}
			}()
		}
		for i := range cfg.Seeds {
			next <- i
		}
		close(next)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		resolved := cfg
		resolved.Population = pop
		resolved.resolve()
		pr.Decisions = resolved.Decisions
		for _, s := range runs {
			pr.OracleMean += s.overOracle
			pr.StaticMean += s.overStatic
			pr.RandomMean += s.overRandom
			if s.overOracle < pr.OracleMin {
				pr.OracleMin, pr.WorstSeed = s.overOracle, s.seed
			}
			pr.StaticMin = min(pr.StaticMin, s.overStatic)
			pr.RandomMin = min(pr.RandomMin, s.overRandom)
			pr.Violations += s.violations
		}
		n := float64(cfg.Seeds)
		pr.OracleMean, pr.StaticMean, pr.RandomMean = round4(pr.OracleMean/n), round4(pr.StaticMean/n), round4(pr.RandomMean/n)
		pr.OracleMin, pr.StaticMin, pr.RandomMin = round4(pr.OracleMin), round4(pr.StaticMin), round4(pr.RandomMin)
		pr.Seconds = math.Round(time.Since(start).Seconds()*10) / 10
		out = append(out, pr)
		fmt.Fprintf(&b, "%-13s %9d  %7.4f %7.4f  %7.3f %7.3f  %7.3f %7.3f %10d %8.1f\n", pop, pr.Decisions,
			pr.OracleMean, pr.OracleMin, pr.StaticMean, pr.StaticMin, pr.RandomMean, pr.RandomMin, pr.Violations, pr.Seconds)
	}
	b.WriteString("  over the last half of each run, expected value per decision; the oracle knows every true rate and respects the caps.\n")
	line, err := json.Marshal(out)
	if err != nil {
		return err
	}
	b.Write(line)
	b.WriteString("\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// seedRun reduces a result to what --seeds reports.
func (r *result) seedRun() seedRun {
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	l := r.policies[learned].last.expected
	s := seedRun{seed: r.cfg.Seed,
		overOracle: ratio(l, r.policies[oracle].last.expected),
		overStatic: ratio(l, r.policies[static].last.expected),
		overRandom: ratio(l, r.policies[random].last.expected)}
	for _, v := range r.violations {
		s.violations += v
	}
	return s
}
