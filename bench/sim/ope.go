package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/ope"
	"github.com/nextbest/nextbest/rules"
)

// Off-policy evaluation on the simulation (issue 14, point 3): policy A,
// nextbest's learned Thompson sampling, decides and logs each decision
// with the propensity of the offer it chose (decision.Request
// .PropensitySamples, as the decision log does); policy B's value is
// estimated offline from A's log by internal/ope; then B runs live on
// the same population. Over many seeds, the share of runs in which each
// estimator's 95% interval covers B's live value is its coverage.
//
// The worlds are the quiet-winner and OBD populations without their
// caps: off-policy evaluation assumes the policy does not change whom it
// decides for and what they saw before, and a cap makes B's choices
// depend on B's own past. Three targets, each deterministic or uniform
// per kind of customer so that its true value is known exactly:
// "greedy", the ranking by posterior mean × value with what A learned
// by the end of its log (shipping what was learned, without
// exploration); "static", the catalog's ranking by value × weight; and
// "random", a uniformly random offer (the hardest for a log that
// learned to avoid the weak offers).
//
//	go run ./bench/sim ope --seeds 20

// opeConfig is the command line of the ope mode.
type opeConfig struct {
	Population    string  `default:"all" enum:"quiet-winner,obd,all" help:"The world: quiet-winner, obd, or all (both)."`
	Seeds         int     `default:"20" help:"Runs, with seeds --seed, --seed+1, ..."`
	Seed          uint64  `default:"1" help:"The first seed."`
	Decisions     int     `help:"Decisions A logs and B makes live; 0: the world's default (quiet-winner 5000, obd 40000)."`
	Propensity    int     `name:"propensity-samples" default:"128" help:"Re-draws that estimate each logged propensity (the decision log's K)."`
	Parallel      int     `default:"2" help:"Seeds run at once; each is deterministic for its seed whatever this is."`
	Refresh       int     `default:"1000" help:"Decisions between A's learning snapshots (it also counts its own outcomes at once)."`
	LiveRepeats   int     `name:"live" default:"1" help:"Live runs of B per seed, each of --decisions, averaged: B's live value."`
	PriorStrength float64 `name:"prior-strength" help:"Policy A's learning.prior.strength (in impressions); 0: the world's (nextbest's default, 50)."`
	Floor         float64 `default:"0.01" help:"The estimators' propensity floor (ope.Options.Floor)."`
}

// opeDefaults are the decisions per world when --decisions is 0: OBD's
// click rates are about 0.3%, so it needs more to see any clicks.
var opeDefaults = map[string]int{popQuiet: 5000, popOBD: 40000}

// opeTargets are the target policies, in the order reported.
var opeTargets = []string{"greedy", "static", "random"}

// opeRun is one seed's estimates of one target.
type opeRun struct {
	res        ope.Result
	live, true float64
}

// runOPE parses args and runs the ope mode.
func runOPE(args []string, stdout io.Writer) error {
	var cfg opeConfig
	parser, err := kong.New(&cfg, kong.Name("sim ope"),
		kong.Description("Logs decisions of nextbest's learned policy A with their propensities, estimates policies B offline (IPS, SNIPS, DR), runs B live, and reports how often each 95% interval covers B's live value."))
	if err != nil {
		return err
	}
	if _, err := parser.Parse(args); err != nil {
		return err
	}
	if cfg.Seeds < 1 || cfg.Decisions < 0 || cfg.Propensity < 1 || cfg.Refresh < 1 || cfg.LiveRepeats < 1 || cfg.PriorStrength < 0 || !(cfg.Floor > 0 && cfg.Floor <= 1) {
		return errors.New("ope: --seeds, --propensity-samples, --refresh, --live and --prior-strength must be positive, --decisions not negative, --floor in (0, 1]")
	}
	pops := []string{cfg.Population}
	if cfg.Population == "all" {
		pops = []string{popQuiet, popOBD}
	}
	var b strings.Builder
	type row struct {
		Population string             `json:"population"`
		Target     string             `json:"target"`
		Seeds      int                `json:"seeds"`
		Decisions  int                `json:"decisions"`
		Coverage   map[string]float64 `json:"coverage_of_live"`
		CoverTrue  map[string]float64 `json:"coverage_of_truth"`
		MeanEst    map[string]float64 `json:"mean_estimate"`
		MeanLive   float64            `json:"mean_live"`
		MeanTrue   float64            `json:"mean_truth"`
		ESSShare   float64            `json:"mean_ess_share"`
		Warned     int                `json:"seeds_warned"`
		Seconds    float64            `json:"seconds"`
	}
	var rows []row
	fmt.Fprintf(&b, "off-policy evaluation on the simulation: A = nextbest learned (Thompson, prior strength %g (0: the world's), propensities from %d re-draws), floor %g, %d seeds from %d\n", cfg.PriorStrength, cfg.Propensity, cfg.Floor, cfg.Seeds, cfg.Seed)
	fmt.Fprintf(&b, "%-13s %-7s %9s  %-26s  %-26s  %8s %8s %7s %6s\n", "population", "target", "decisions", "coverage of B live", "coverage of B's truth", "B live", "B truth", "ESS/n", "warned")
	fmt.Fprintf(&b, "%-13s %-7s %9s  %8s %8s %8s  %8s %8s %8s\n", "", "", "", "IPS", "SNIPS", "DR", "IPS", "SNIPS", "DR")
	for _, pop := range pops {
		start := time.Now()
		n := cfg.Decisions
		if n == 0 {
			n = opeDefaults[pop]
		}
		runs := make([][]opeRun, cfg.Seeds)
		errs := make([]error, cfg.Seeds)
		var wg sync.WaitGroup
		next := make(chan int)
		for range max(1, cfg.Parallel) {
			wg.Go(func() {
				for i := range next {
					runs[i], errs[i] = simulateOPE(pop, cfg.Seed+uint64(i), n, cfg)
				}
			})
		}
		for i := range cfg.Seeds {
			next <- i
		}
		close(next)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for t, target := range opeTargets {
			r := row{Population: pop, Target: target, Seeds: cfg.Seeds, Decisions: n, Coverage: map[string]float64{},
				CoverTrue: map[string]float64{}, MeanEst: map[string]float64{}, Seconds: time.Since(start).Seconds()}
			for _, seed := range runs {
				x := seed[t]
				for name, e := range map[string]ope.Estimate{"ips": x.res.IPS, "snips": x.res.SNIPS, "dr": x.res.DR} {
					if e.Covers(x.live) {
						r.Coverage[name] += 1 / float64(cfg.Seeds)
					}
					if e.Covers(x.true) {
						r.CoverTrue[name] += 1 / float64(cfg.Seeds)
					}
					r.MeanEst[name] += e.Value / float64(cfg.Seeds)
				}
				r.MeanLive += x.live / float64(cfg.Seeds)
				r.MeanTrue += x.true / float64(cfg.Seeds)
				r.ESSShare += x.res.ESS / float64(x.res.Items) / float64(cfg.Seeds)
				if len(x.res.Warnings) > 0 {
					r.Warned++
				}
			}
			rows = append(rows, r)
			fmt.Fprintf(&b, "%-13s %-7s %9d  %7.0f%% %7.0f%% %7.0f%%  %7.0f%% %7.0f%% %7.0f%%  %8.4f %8.4f %7.3f %6d\n", pop, target, n,
				100*r.Coverage["ips"], 100*r.Coverage["snips"], 100*r.Coverage["dr"],
				100*r.CoverTrue["ips"], 100*r.CoverTrue["snips"], 100*r.CoverTrue["dr"], r.MeanLive, r.MeanTrue, r.ESSShare, r.Warned)
		}
	}
	fmt.Fprint(stdout, b.String())
	j, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", j)
	return err
}

// simulateOPE runs one seed of one world: A logs n decisions, each
// target is estimated from the log, then runs live for n decisions.
// Values are value-weighted conversions per decision.
func simulateOPE(pop string, seed uint64, n int, cfg opeConfig) ([]opeRun, error) {
	var w *world
	switch pop {
	case popQuiet:
		w = quietWinner()
	case popOBD:
		var err error
		if w, err = obdWorld(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("ope: no population %q", pop)
	}
	w.cap = worldCap{} // see the comment at the top
	stream := func(k uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, k)) }
	l := learning{explore: "thompson", priorRate: w.priorRate, priorStrength: w.priorStrength, minExplore: -1}
	if cfg.PriorStrength > 0 {
		l.priorStrength = cfg.PriorStrength
	}
	learnedCat, err := rules.Load("sim-learned.yaml", w.catalogYAML("learned", l))
	if err != nil {
		return nil, err
	}
	staticCat, err := rules.Load("sim-static.yaml", w.catalogYAML("static", l))
	if err != nil {
		return nil, err
	}
	gl := l
	gl.explore = "greedy"
	greedyCat, err := rules.Load("sim-greedy.yaml", w.catalogYAML("learned", gl))
	if err != nil {
		return nil, err
	}
	vectors, err := w.vectors(learnedCat)
	if err != nil {
		return nil, err
	}
	kindOf := func(r *rand.Rand) int {
		u, k := r.Float64(), 0
		for k < len(w.share)-1 && u >= w.share[k] {
			u -= w.share[k]
			k++
		}
		return k
	}

	var res decision.Result
	eng := &decision.Engine{}
	nOffers := len(w.offers)
	// A logs: nextbest learned, counting its own outcomes as serve does.
	type logged struct {
		kind, offer       int
		selection, reward float64
		model             []float64 // DR's reward model of every offer at the decision
	}
	log := make([]logged, n)
	seq, thompson, outcome := stream(4), stream(6), stream(10)
	stats := map[featurestore.StatKey]featurestore.Counts{}
	table := featurestore.NewLearnTable(nil)
	var deltas []featurestore.StatDelta
	tick := w.horizon / time.Duration(n)
	for i := range n {
		k := kindOf(seq)
		now := epoch.Add(time.Duration(i) * tick)
		req := decision.Request{CustomerID: "c", Channel: "web", Limit: 1, Now: now, Learned: table, Rand: thompson,
			Seed: thompson.Uint64(), PropensitySamples: cfg.Propensity}
		if err := eng.Decide(learnedCat, vectors[k], &req, &res); err != nil {
			return nil, err
		}
		if len(res.Offers) == 0 {
			return nil, errors.New("ope: policy A chose no offer")
		}
		ch := res.Offers[0]
		o := ch.Offer
		converted := outcome.Float64() < w.kinds[k].p[o.Index]
		reward := 0.0
		if converted {
			reward = o.Value
		}
		// DR's reward model: A's learned posterior means at the
		// decision, × value (the logged learned propensities).
		model := make([]float64, nOffers)
		for _, lo := range learnedCat.Offers {
			cnt := stats[featurestore.StatKey{Offer: lo.ID, Channel: "web", Key: w.kinds[k].name}]
			model[lo.Index] = decision.PosteriorOf(lo.Prior, cnt, featurestore.Conversion).Mean() * lo.Value
		}
		log[i] = logged{kind: k, offer: o.Index, selection: ch.Selection, reward: reward, model: model}
		deltas = feedback(deltas[:0], eng, learnedCat, vectors[k], &res, []*rules.Offer{o}, []bool{converted}, now)
		for _, d := range deltas {
			c := stats[d.Key]
			c.Add(d.Counts)
			stats[d.Key] = c
		}
		if (i+1)%cfg.Refresh == 0 {
			table = featurestore.NewLearnTable(stats)
		} else {
			table = learnNow(table, deltas, stats)
		}
	}

	// The targets' probabilities of each offer by kind, and their true
	// values: greedy and static decide the same for every customer of a
	// kind (no caps, no history); random is uniform.
	targets := make([][][]float64, len(opeTargets)) // target, kind, offer
	truths := make([]float64, len(opeTargets))
	for t, name := range opeTargets {
		targets[t] = make([][]float64, len(w.kinds))
		for k := range w.kinds {
			pi := make([]float64, nOffers)
			switch name {
			case "greedy", "static":
				cat := staticCat
				req := decision.Request{CustomerID: "c", Channel: "web", Limit: 1, Now: epoch}
				if name == "greedy" {
					cat, req.Learned = greedyCat, featurestore.NewLearnTable(stats)
				}
				if err := eng.Decide(cat, vectors[k], &req, &res); err != nil {
					return nil, err
				}
				pi[res.Offers[0].Offer.Index] = 1
			case "random":
				for o := range pi {
					pi[o] = 1 / float64(nOffers)
				}
			}
			targets[t][k] = pi
			for o, p := range pi {
				truths[t] += w.share[k] * p * w.kinds[k].p[o] * w.offers[o].value
			}
		}
	}

	samples := make([][]ope.Sample, len(opeTargets))
	for t := range samples {
		samples[t] = make([]ope.Sample, n)
		for i, x := range log {
			pi := targets[t][x.kind]
			var direct float64
			for j, p := range pi {
				direct += p * x.model[j]
			}
			samples[t][i] = ope.Sample{Items: []ope.Item{{Reward: x.reward, Logging: x.selection, Target: pi[x.offer], Model: x.model[x.offer]}},
				Direct: direct, TargetMass: 1}
		}
	}

	// B runs live on the same population: fresh customers of the same
	// shares, its own outcomes.
	runs := make([]opeRun, len(opeTargets))
	for t := range opeTargets {
		r, err := ope.Evaluate(samples[t], ope.Options{Floor: cfg.Floor})
		if err != nil {
			return nil, err
		}
		liveSeq, livePick, liveOutcome := stream(20+uint64(t)), stream(30+uint64(t)), stream(40+uint64(t))
		var sum float64
		for range n * cfg.LiveRepeats {
			k := kindOf(liveSeq)
			pi := targets[t][k]
			u, o := livePick.Float64(), 0
			for o < nOffers-1 && u >= pi[o] {
				u -= pi[o]
				o++
			}
			if liveOutcome.Float64() < w.kinds[k].p[o] {
				sum += w.offers[o].value
			}
		}
		runs[t] = opeRun{res: r, live: sum / float64(n*cfg.LiveRepeats), true: truths[t]}
	}
	return runs, nil
}
