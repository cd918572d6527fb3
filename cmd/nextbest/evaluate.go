package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/internal/ope"
	"github.com/nextbest/nextbest/rules"
)

type evaluateCmd struct {
	Log         string  `required:"" help:"A stopped node's data directory (its decision log is <dir>/decisions) or a decisions directory itself (holding the *.jsonl segments)."`
	Catalog     string  `required:"" help:"The catalog to evaluate (the new one), YAML."`
	Seeds       int     `default:"200" help:"Times each logged decision is decided again on the new catalog, with other random draws, to estimate the probability it returns each offer (error at most 0.5/sqrt(seeds)), 1 to 10000."`
	JSON        bool    `name:"json" help:"Print the result as JSON."`
	Floor       float64 `default:"0.01" help:"Logged propensities below this are clipped up to it (counted), bounding a weight to 1/floor."`
	MaxWeight   float64 `name:"max-weight" default:"20" help:"Warn when a weight (new probability / logged propensity) exceeds this."`
	MinESSShare float64 `name:"min-ess-share" default:"0.1" help:"Warn when the effective sample size is under this share of the logged offers."`
	budgetFlags
}

// Run estimates what the catalog --catalog would have earned on the
// traffic of the decision log --log, and prints it.
func (c *evaluateCmd) Run(_ context.Context, e *env) error {
	if c.Seeds < 1 || c.Seeds > 10000 {
		return usagef("--seeds must be from 1 to 10000, got %d", c.Seeds)
	}
	if c.Floor <= 0 || c.Floor > 1 {
		return usagef("--floor must be above 0 and at most 1, got %v", c.Floor)
	}
	if c.MaxWeight <= 0 || c.MinESSShare <= 0 || c.MinESSShare > 1 {
		return usagef("--max-weight must be above 0 and --min-ess-share above 0 and at most 1")
	}
	src, err := os.ReadFile(c.Catalog)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	budget, err := c.budget()
	if err != nil {
		return err
	}
	cat, _, err := budget.Compile(c.Catalog, src, time.Now()) // the catalogs serve would accept
	if err != nil {
		return catalogError(c.Catalog, err)
	}
	cat.Version = catalogs.VersionOf(src)
	dir, err := logDir(c.Log)
	if err != nil {
		return usageError{err}
	}
	tr, err := readTraffic(dir)
	if err != nil {
		return err
	}
	ev, err := evaluateTraffic(tr, catalogPolicy(cat), c.Seeds, ope.Options{Floor: c.Floor, MaxWeight: c.MaxWeight, MinESSShare: c.MinESSShare})
	if err != nil {
		return err
	}
	ev.Catalog, ev.Version = c.Catalog, cat.Version
	for _, e := range tr.decisions {
		if nextbest.OmittedContacts(cat, e) > 0 {
			ev.CutHistories++
		}
	}
	if ev.CutHistories > 0 {
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("%d of %d logged decisions: the new catalog reads contacts further back than the log holds (it keeps those within the logging catalog's longest look-back), so its caps and suppressions are counted without the older ones", ev.CutHistories, ev.Decisions))
	}
	if c.JSON {
		return ev.printJSON(e.stdout)
	}
	return ev.print(e.stdout)
}

// catalogPolicy is cat's policy on logged decisions: each decided again
// by nextbest.Reenact (the logged features, context, contacts, learned
// counts and time, another seed), and the DR reward model the posterior
// means of the learned counts the decision logged, under cat's priors.
func catalogPolicy(cat *rules.Catalog) targetPolicy {
	return targetPolicy{
		redecide: func(e *decisionlog.Entry, seed uint64) ([]string, error) {
			re, err := nextbest.Reenact(cat, e, nextbest.ReenactOptions{Reseed: true, Seed: seed, PropensitySamples: -1})
			if err != nil {
				return nil, err
			}
			offers := make([]string, len(re.Result.Offers))
			for i, o := range re.Result.Offers {
				offers[i] = o.Offer.ID
			}
			return offers, nil
		},
		model: func(e *decisionlog.Entry, offer string) offerReward {
			return learnedModel(cat, e, offer)
		},
	}
}

// learnedModel predicts an offer's clicks, conversions and value in
// logged decision e: the posterior means of the learned counts e logged
// for the offer on its channel and learn key (the prior alone when it
// logged none: the decision did not score the offer), the value a
// conversion's mean value, or the offer's value before any.
func learnedModel(cat *rules.Catalog, e *decisionlog.Entry, offer string) offerReward {
	prior := cat.Learning.Prior
	value := 0.0
	if o, ok := cat.Offer(offer); ok {
		prior, value = o.Prior, o.Value
	}
	var n featurestore.Counts
	for i := range e.Learned {
		l := &e.Learned[i]
		if l.Offer == offer && l.Channel == e.Channel && l.Key == e.LearnKey {
			n = l.Counts()
			break
		}
	}
	conv := decision.PosteriorOf(prior, n, featurestore.Conversion).Mean()
	if n.Conversions > 0 {
		value = n.Value / float64(n.Conversions)
	}
	return offerReward{
		clicks:      decision.PosteriorOf(prior, n, featurestore.Click).Mean(),
		conversions: conv,
		value:       conv * value,
	}
}

// Off-policy evaluation (issue 14): what would a new catalog have
// earned on the traffic a node logged? The decision log holds each
// sampled decision with the probability its offers were chosen with,
// and outcome lines with what came of them (decisionlog.Outcome). Each
// logged decision is decided again on the new catalog with many seeds,
// which estimates the probability the new policy returns each offer;
// the estimators of internal/ope weigh the logged rewards by the ratio
// of the two.

// offerReward is what came of one offer of one logged decision.
type offerReward struct {
	clicks, conversions, value float64
}

// evalMetrics are the values estimated, per decision, in the order printed.
var evalMetrics = []string{"clicks", "conversions", "value"}

func (r offerReward) of(metric string) float64 {
	switch metric {
	case "clicks":
		return r.clicks
	case "conversions":
		return r.conversions
	}
	return r.value
}

// loggedTraffic is a decision log with its outcomes joined to the
// decisions.
type loggedTraffic struct {
	dir       string
	decisions []*decisionlog.Entry
	// rewards by decision id, then offer id.
	rewards map[string]map[string]*offerReward
	// outcomes is the outcome lines read, counted once per event id;
	// orphans those whose decision the log does not hold (dropped, past
	// retention, or logged by another node); unmatched those naming an
	// offer the decision did not return, or none.
	outcomes, orphans, unmatched int
	// corrupt is the lines that are not records, with where they are.
	corrupt []string
}

// logDir returns the decisions directory of dir: dir/decisions when dir
// is a node's data directory, dir itself when it holds segments.
func logDir(dir string) (string, error) {
	sub := filepath.Join(dir, "decisions")
	if st, err := os.Stat(sub); err == nil && st.IsDir() {
		return sub, nil
	}
	segs, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return "", err
	}
	if len(segs) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("--log %s: %w", dir, err)
		}
		return "", fmt.Errorf("--log %s: no decision log there (looked for %s and for segments %s)", dir, sub, filepath.Join(dir, "*.jsonl"))
	}
	return dir, nil
}

// maxCorrupt is how many corrupt lines are reported one by one.
const maxCorrupt = 10

// readTraffic reads the decision log in dir and joins its outcomes to
// its decisions. A line that is not a record is skipped and reported;
// an error reading a segment ends it.
func readTraffic(dir string) (*loggedTraffic, error) {
	tr := &loggedTraffic{dir: dir, rewards: map[string]map[string]*offerReward{}}
	var outcomes []decisionlog.Outcome
	seen := map[string]bool{}
	ncorrupt := 0
	for rec, err := range decisionlog.Records(dir) {
		if err != nil {
			if !errors.Is(err, decisionlog.ErrCorrupt) {
				return nil, err
			}
			if ncorrupt++; ncorrupt <= maxCorrupt {
				tr.corrupt = append(tr.corrupt, err.Error())
			}
			continue
		}
		if rec.Entry != nil {
			e := *rec.Entry // Records reuses its Entry; the slices are new each line
			tr.decisions = append(tr.decisions, &e)
			continue
		}
		o := *rec.Outcome
		if o.EventID != "" {
			if seen[o.EventID] {
				continue
			}
			seen[o.EventID] = true
		}
		outcomes = append(outcomes, o)
	}
	if ncorrupt > maxCorrupt {
		tr.corrupt = append(tr.corrupt, fmt.Sprintf("and %d more lines that are not records", ncorrupt-maxCorrupt))
	}
	byID := make(map[string]*decisionlog.Entry, len(tr.decisions))
	for _, e := range tr.decisions {
		byID[e.ID] = e
	}
	for i := range outcomes {
		o := &outcomes[i]
		tr.outcomes++
		e, ok := byID[o.DecisionID]
		if !ok {
			tr.orphans++
			continue
		}
		if !slices.ContainsFunc(e.Offers, func(x decisionlog.Offer) bool { return x.ID == o.OfferID }) {
			tr.unmatched++
			continue
		}
		rs := tr.rewards[o.DecisionID]
		if rs == nil {
			rs = map[string]*offerReward{}
			tr.rewards[o.DecisionID] = rs
		}
		r := rs[o.OfferID]
		if r == nil {
			r = &offerReward{}
			rs[o.OfferID] = r
		}
		switch o.Outcome {
		case "click":
			r.clicks++
		case "conversion":
			r.conversions++
			r.value += o.Value
		}
	}
	return tr, nil
}

// targetPolicy is the new catalog's policy: redecide decides logged
// decision e again with seed and returns the offers it returns;
// model predicts the reward of an offer in e (the DR reward model).
type targetPolicy struct {
	redecide func(e *decisionlog.Entry, seed uint64) ([]string, error)
	model    func(e *decisionlog.Entry, offer string) offerReward
}

// evaluation is the result of evaluate, as --json prints it.
type evaluation struct {
	Log       string `json:"log"`
	Catalog   string `json:"catalog"`
	Version   string `json:"version"`
	Decisions int    `json:"decisions"`
	// Outcomes joined, and not: Orphans name a decision the log does
	// not hold, Unmatched an offer the decision did not return.
	Outcomes  int `json:"outcomes"`
	Orphans   int `json:"orphan_outcomes"`
	Unmatched int `json:"unmatched_outcomes"`
	// Seeds is the number of times each decision was decided again.
	Seeds int `json:"seeds"`
	// Failed is the decisions the new catalog could not decide again
	// (counted as returning nothing).
	Failed int `json:"failed,omitempty"`
	// CutHistories is the decisions whose contacts the new catalog
	// reads further back than the log holds (nextbest.OmittedContacts).
	CutHistories int `json:"cut_histories,omitempty"`
	// Unsupported is the share of the new policy's offers that fall in
	// logged decisions that could not have returned them.
	Unsupported float64 `json:"unsupported_share"`
	// The overlap, the same for every metric: the weights depend on the
	// policies alone.
	ESS       float64  `json:"ess"`
	Items     int      `json:"logged_offers"`
	MaxWeight float64  `json:"max_weight"`
	Clipped   int      `json:"clipped"`
	Zero      int      `json:"zero_propensity"`
	Warnings  []string `json:"warnings"`
	// Metrics are the estimates per decision: clicks, conversions,
	// value.
	Metrics map[string]metricEstimates `json:"metrics"`
	// Corrupt is the lines of the log skipped.
	Corrupt []string `json:"corrupt_lines,omitempty"`
}

type metricEstimates struct {
	Logged ope.Estimate `json:"logged"`
	IPS    ope.Estimate `json:"ips"`
	SNIPS  ope.Estimate `json:"snips"`
	DR     ope.Estimate `json:"dr"`
}

// decisionSeed is the seed of re-draw j of a decision: a SplitMix64 of
// the two, so the re-draws are fixed by the log and the same on every
// run.
func decisionSeed(id string, j int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h += uint64(j+1) * 0x9e3779b97f4a7c15
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// evaluateTraffic estimates the value per decision of policy on tr,
// deciding each logged decision again seeds times.
func evaluateTraffic(tr *loggedTraffic, policy targetPolicy, seeds int, opts ope.Options) (*evaluation, error) {
	if len(tr.decisions) == 0 {
		return nil, fmt.Errorf("--log %s: no decisions logged (is --decision-log-sample above 0?)", tr.dir)
	}
	ev := &evaluation{Log: tr.dir, Decisions: len(tr.decisions), Outcomes: tr.outcomes, Orphans: tr.orphans,
		Unmatched: tr.unmatched, Seeds: seeds, Corrupt: tr.corrupt, Metrics: map[string]metricEstimates{}}
	// The new policy's probability of each offer, decision by decision,
	// on every core: Reenact is safe for concurrent use.
	targets := make([]map[string]float64, len(tr.decisions))
	failed := make([]bool, len(tr.decisions))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				e := tr.decisions[i]
				counts := map[string]float64{}
				for j := range seeds {
					offers, err := policy.redecide(e, decisionSeed(e.ID, j))
					if err != nil {
						failed[i] = true
						counts = map[string]float64{}
						break
					}
					for _, o := range offers {
						counts[o]++
					}
				}
				for o := range counts {
					counts[o] /= float64(seeds)
				}
				targets[i] = counts
			}
		})
	}
	for i := range tr.decisions {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, f := range failed {
		if f {
			ev.Failed++
		}
	}
	// What the new policy would choose where the logging policy could
	// not have: a decision that did not explore (greedy, static, or no
	// propensities) returned its offers with certainty and no other, a
	// holdout decision none. No weight sees those choices.
	var mass, unsupported float64
	for i, e := range tr.decisions {
		for o, p := range targets[i] {
			mass += p
			if (e.PropensitySamples == 0 || e.Holdout) && !slices.ContainsFunc(e.Offers, func(x decisionlog.Offer) bool { return x.ID == o }) {
				unsupported += p
			}
		}
	}
	if mass > 0 {
		ev.Unsupported = unsupported / mass
	}

	for _, metric := range evalMetrics {
		samples := make([]ope.Sample, len(tr.decisions))
		for i, e := range tr.decisions {
			s := &samples[i]
			rewards := tr.rewards[e.ID]
			for o, p := range targets[i] {
				s.TargetMass += p
				s.Direct += p * policy.model(e, o).of(metric)
			}
			for _, o := range e.Offers {
				var r float64
				if x := rewards[o.ID]; x != nil {
					r = x.of(metric)
				}
				s.Items = append(s.Items, ope.Item{Reward: r, Logging: o.Propensity, Target: targets[i][o.ID],
					Model: policy.model(e, o.ID).of(metric)})
			}
		}
		res, err := ope.Evaluate(samples, opts)
		if err != nil {
			return nil, err
		}
		ev.Metrics[metric] = metricEstimates{Logged: res.Logged, IPS: res.IPS, SNIPS: res.SNIPS, DR: res.DR}
		ev.ESS, ev.Items, ev.MaxWeight, ev.Clipped, ev.Zero, ev.Warnings = res.ESS, res.Items, res.MaxWeight, res.Clipped, res.Zero, res.Warnings
	}
	if ev.Unsupported > 0 {
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("%.1f%% of the offers the new catalog would return are in logged decisions that could not have returned them (greedy, static or holdout decisions): no estimator sees their outcomes", 100*ev.Unsupported))
	}
	if ev.Failed > 0 {
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("%d of %d logged decisions could not be decided again on the new catalog: counted as returning nothing", ev.Failed, ev.Decisions))
	}
	if ev.Outcomes == 0 {
		ev.Warnings = append(ev.Warnings, "no outcomes in the log: every value is 0 (are clicks and conversions sent with their decision_id?)")
	}
	if ev.Warnings == nil {
		ev.Warnings = []string{}
	}
	return ev, nil
}

// print writes ev as a table.
func (ev *evaluation) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "decision log:\t%s: %d decisions, %d outcomes (%d naming a decision not in the log, %d an offer it did not return or none)\n",
		ev.Log, ev.Decisions, ev.Outcomes, ev.Orphans, ev.Unmatched)
	fmt.Fprintf(tw, "new catalog:\t%s (version %s), each decision decided again %d times\n", ev.Catalog, ev.Version, ev.Seeds)
	fmt.Fprintf(tw, "overlap:\tESS %.0f of %d logged offers (%.0f%%), largest weight %.2f, %d propensities clipped (%d of them 0)\n",
		ev.ESS, ev.Items, 100*ev.ESS/max(1, float64(ev.Items)), ev.MaxWeight, ev.Clipped, ev.Zero)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "per decision\tlogged policy\tIPS\tSNIPS\tDR\n")
	for _, m := range evalMetrics {
		x := ev.Metrics[m]
		fmt.Fprintf(tw, "%s", m)
		for _, e := range []ope.Estimate{x.Logged, x.IPS, x.SNIPS, x.DR} {
			fmt.Fprintf(tw, "\t%.4f [%.4f, %.4f]", e.Value, e.Low, e.High)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nIntervals are 95%: the normal approximation for the logged mean, IPS and DR, the delta method for SNIPS.")
	if len(ev.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings (see docs/operations.md, \"Evaluating a catalog before shipping it\"):")
		for _, s := range ev.Warnings {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
	for _, s := range ev.Corrupt {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	return nil
}

// printJSON writes ev as one indented JSON object.
func (ev *evaluation) printJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ev)
}
