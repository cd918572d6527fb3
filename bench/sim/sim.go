package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// config is a simulation's settings; the tags are its command line.
type config struct {
	Population       string  `default:"retail" enum:"retail,quiet-winner,obd,all" help:"The population: retail (the synthetic retailer), quiet-winner (3 personas × 6 offers, caps binding, a high-converting low-value winner), obd (the Open Bandit Dataset's ZOZOTOWN production priors, 80 items) or all (every one, with --seeds)."`
	Seeds            int     `default:"1" help:"Runs with seeds --seed, --seed+1, ...; more than 1 prints, per population, the mean and worst run of learned over oracle, static and random, and the cap violations."`
	Parallel         int     `default:"2" help:"Seeds simulated at once with --seeds; each run is deterministic for its seed whatever this is."`
	Customers        int     `help:"Customers in the synthetic population; 0: the population's default (retail 100000, quiet-winner 6000, obd 10000)."`
	Decisions        int     `help:"Decisions per policy, each for a customer drawn at random from the population; 0: the population's default (retail 200000, quiet-winner 60000, obd 1000000 of 3 offers each)."`
	Offers           int     `default:"30" help:"Offers in the generated catalog (at most 50, the engine's largest limit)."`
	Seed             uint64  `default:"1" help:"Seed of the population, the catalog, the truth, the customer sequence, the outcomes and Thompson sampling."`
	Channel          string  `default:"web" enum:"web,app" help:"Channel every decision is for."`
	Refresh          int     `default:"1000" help:"Decisions between learning snapshots: nextbest serve publishes its outcomes every 100 ms, which is 1000 decisions at 10k decisions/s."`
	Explore          string  `default:"thompson" enum:"thompson,greedy" help:"The catalog's learning.explore."`
	PriorRate        float64 `help:"The catalog's learning.prior.rate; 0: the population's (nextbest's 0.02, obd 0.0035)."`
	PriorStrength    float64 `help:"The catalog's learning.prior.strength, in impressions; 0: the population's (nextbest's 50)."`
	MinExplore       int     `default:"-1" help:"The catalog's learning.min_explore (impressions of an offer × learn key below which it is explored first; 0: off); -1: the catalog sets none, nextbest's default applies."`
	Immediate        bool    `default:"true" negatable:"" help:"The learner counts its own outcomes at once (outcomes.Recorder.Add, issue 14), not only at each --refresh snapshot; --no-immediate is the behaviour before."`
	Model            bool    `default:"true" negatable:"" help:"retail: the catalog learns a model over the customer's terms too (learning.model: the segments and five numeric features); --no-model learns by segment alone."`
	ModelExploration float64 `help:"retail: the catalog's learning.model.exploration (the scale of the posterior variance Thompson sampling draws from); 0: the catalog sets none, nextbest's default applies."`
	Residual         float64 `default:"0.25" help:"Share of the variance of the truth's log-odds across customers that comes from features no segment captures, in [0, 1); 0: the segments see everything that drives behaviour."`
}

// resolve fills the settings left 0 with the population's defaults.
func (c *config) resolve() {
	d := populationDefaults[c.Population]
	if c.Customers == 0 {
		c.Customers = d[0]
	}
	if c.Decisions == 0 {
		c.Decisions = d[1]
	}
	if c.Population == popRetail {
		if c.PriorRate == 0 {
			c.PriorRate = 0.02
		}
		if c.PriorStrength == 0 {
			c.PriorStrength = 50
		}
	}
}

func (c *config) validate() error {
	switch {
	case c.Seeds < 1:
		return errors.New("--seeds must be positive")
	case c.PriorRate != 0 && !(c.PriorRate > 0 && c.PriorRate < 1):
		return errors.New("--prior-rate must be in (0, 1)")
	case c.PriorStrength < 0:
		return errors.New("--prior-strength must be positive")
	case c.Customers < 1:
		return errors.New("--customers must be positive")
	case c.Decisions < 10:
		return errors.New("--decisions must be at least 10")
	case c.Offers < 1 || c.Offers > decision.MaxLimit:
		return fmt.Errorf("--offers must be between 1 and %d", decision.MaxLimit)
	case c.Refresh < 1:
		return errors.New("--refresh must be positive")
	case !(c.Residual >= 0 && c.Residual < 1):
		return errors.New("--residual must be in [0, 1)")
	}
	return nil
}

// tick is the time between two decisions: the simulated traffic is 10k
// decisions/s.
const tick = 100 * time.Microsecond

// The policies, in the order they are reported.
const (
	random = iota
	static
	learned
	segmentOracle
	oracle
	nPolicies
)

var policyNames = [nPolicies]string{
	random:        "random eligible offer",
	static:        "static (value × weight)",
	learned:       "nextbest learned",
	segmentOracle: "segment oracle",
	oracle:        "oracle",
}

// score is what a policy earned: value-weighted conversions, expected
// (true probability × value of the offer shown) and realised (the value of
// the offers that converted).
type score struct {
	expected, realised float64
}

func (s *score) add(p, value float64, converted bool) {
	s.expected += p * value
	if converted {
		s.realised += value
	}
}

// tally is one policy's scores over the whole run, its last half, and
// each tenth (expected only), and per learn key over the last half.
type tally struct {
	whole, last score
	tenths      [10]float64
	byKey       map[string]*score
}

// add counts a decision of the given tenth of the run, in its last half
// or not, for a customer of the learn key, whose offer converts with
// probability p and is worth value.
func (t *tally) add(tenth int, last bool, key string, p, value float64, converted bool) {
	t.whole.add(p, value, converted)
	t.tenths[tenth] += p * value
	if !last {
		return
	}
	t.last.add(p, value, converted)
	s := t.byKey[key]
	if s == nil {
		s = &score{}
		t.byKey[key] = s
	}
	s.add(p, value, converted)
}

// keyStats describes the customers of one learn key over the last half.
type keyStats struct {
	decisions int
	cells     int // learning cells (offers shown) for the key at the end
}

// result is the outcome of a simulation.
type result struct {
	cfg      config
	policies [nPolicies]tally
	// eligible offers per decision
	eligibleSum, eligibleMin, eligibleMax int
	empty                                 int // decisions with no eligible offer
	keys                                  map[string]*keyStats
	keyOrder                              []string // learn keys in catalog order, "" last
	stats                                 map[featurestore.StatKey]featurestore.Counts
	elapsed                               time.Duration
	population                            string
	slots                                 int // offers shown per decision; 0: 1
	// violations counts, per policy, the impressions the sim found beyond
	// a cap: the engine must make none.
	violations [nPolicies]int
}

// simulate runs the four policies and the segment oracle over the same
// customers. Each policy draws its outcomes from its own random stream.
func simulate(cfg config) (*result, error) {
	cfg.resolve()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	switch cfg.Population {
	case popQuiet:
		return simulateWorld(cfg, quietWinner())
	case popOBD:
		w, err := obdWorld()
		if err != nil {
			return nil, err
		}
		return simulateWorld(cfg, w)
	case popRetail:
	default:
		return nil, fmt.Errorf("--population %q: simulate one at a time", cfg.Population)
	}
	start := time.Now()
	stream := func(n uint64) *rand.Rand { return rand.New(rand.NewPCG(cfg.Seed, n)) }

	specs := offerSpecs(stream(1), cfg.Offers)
	pop := population(stream(3), cfg.Customers)
	tr := newTruth(stream(2), specs, pop, cfg.Residual)
	seq := stream(4)
	pick := stream(5)     // the random policy's choices
	thompson := stream(6) // the learned policy's Thompson sampling
	var outcomes [nPolicies]*rand.Rand
	for k := range outcomes {
		outcomes[k] = stream(10 + uint64(k))
	}

	l := learning{explore: cfg.Explore, priorRate: cfg.PriorRate, priorStrength: cfg.PriorStrength, minExplore: cfg.MinExplore, model: cfg.Model, exploration: cfg.ModelExploration}
	staticCat, err := rules.Load("sim-static.yaml", catalogYAML(specs, "static", l))
	if err != nil {
		return nil, err
	}
	learnedCat, err := rules.Load("sim-learned.yaml", catalogYAML(specs, "learned", l))
	if err != nil {
		return nil, err
	}
	vz, err := newVectorizer(learnedCat)
	if err != nil {
		return nil, err
	}

	r := &result{cfg: cfg, population: popRetail, eligibleMin: cfg.Offers + 1, keys: map[string]*keyStats{}, stats: map[featurestore.StatKey]featurestore.Counts{}}
	for _, s := range learnedCat.Segments {
		r.keyOrder = append(r.keyOrder, s.Name)
	}
	r.keyOrder = append(r.keyOrder, "")
	for k := range r.policies {
		r.policies[k].byKey = map[string]*score{}
	}

	// Two engines: one ranks statically (and, asked for every offer, tells
	// the random policy and the oracles which offers are eligible), the
	// other learns.
	staticEng := &decision.Engine{}
	learnEng := &decision.Engine{}
	means, err := segmentMeans(staticEng, staticCat, vz, tr, pop, cfg.Channel)
	if err != nil {
		return nil, err
	}

	var (
		f              featurestore.Vector
		all, top, lres decision.Result
		deltas         []featurestore.StatDelta
		table          = featurestore.NewLearnTable(nil)
		p              = make([]float64, cfg.Offers) // true probabilities by offer index
		chosen         [nPolicies]*rules.Offer
		oneShown       [1]*rules.Offer // the learned policy's offer, for feedback
		oneConverted   [1]bool
		half           = cfg.Decisions / 2
	)
	for i := range cfg.Decisions {
		c := &pop[seq.IntN(len(pop))]
		f = vz.vector(f, c)
		x := covariates(c)
		now := epoch.Add(time.Duration(i) * tick)

		req := decision.Request{CustomerID: c.id, Channel: cfg.Channel, Limit: decision.MaxLimit, Now: now}
		if err := staticEng.Decide(staticCat, f, &req, &all); err != nil {
			return nil, err
		}
		req.Limit = 1
		if err := staticEng.Decide(staticCat, f, &req, &top); err != nil {
			return nil, err
		}
		req.Learned, req.Rand = table, thompson
		if err := learnEng.Decide(learnedCat, f, &req, &lres); err != nil {
			return nil, err
		}

		n := len(all.Offers)
		r.eligibleSum += n
		r.eligibleMin, r.eligibleMax = min(r.eligibleMin, n), max(r.eligibleMax, n)
		key := all.LearnKey
		ks := r.keys[key]
		if ks == nil {
			ks = &keyStats{}
			r.keys[key] = ks
		}
		if i >= half {
			ks.decisions++
		}
		if n == 0 {
			r.empty++
		}

		chosen = [nPolicies]*rules.Offer{}
		bestTrue, bestSeg := -1.0, -1.0
		seg := means[key] // nil for a key no customer had at the start: every mean 0
		for _, ch := range all.Offers {
			o := ch.Offer
			p[o.Index] = tr.p(o.Index, &x)
			if v := p[o.Index] * o.Value; v > bestTrue {
				bestTrue, chosen[oracle] = v, o
			}
			mean := 0.0
			if seg != nil {
				mean = seg[o.Index]
			}
			if v := mean * o.Value; v > bestSeg {
				bestSeg, chosen[segmentOracle] = v, o
			}
		}
		if n > 0 {
			chosen[random] = all.Offers[pick.IntN(n)].Offer
		}
		if len(top.Offers) > 0 {
			chosen[static] = top.Offers[0].Offer
		}
		if len(lres.Offers) > 0 {
			chosen[learned] = lres.Offers[0].Offer
		}

		for k, o := range chosen {
			ps, value, converted := 0.0, 0.0, false
			if o != nil {
				ps, value = p[o.Index], o.Value
				converted = outcomes[k].Float64() < ps
			}
			r.policies[k].add(i*10/cfg.Decisions, i >= half, key, ps, value, converted)
			if k == learned {
				var shown []*rules.Offer
				if o != nil {
					oneShown[0], oneConverted[0] = o, converted
					shown = oneShown[:]
				}
				deltas = feedback(deltas[:0], learnEng, learnedCat, f, &lres, shown, oneConverted[:], now)
				for _, d := range deltas {
					cnt := r.stats[d.Key]
					cnt.Add(d.Counts)
					r.stats[d.Key] = cnt
				}
			}
		}
		if (i+1)%cfg.Refresh == 0 {
			table = featurestore.NewLearnTable(r.stats)
		} else if cfg.Immediate {
			table = learnNow(table, deltas, r.stats)
		}
	}
	for k := range r.stats {
		if k.Hour == 0 && k.Offer != "" {
			if ks := r.keys[k.Key]; ks != nil {
				ks.cells++
			}
		}
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// learnNow counts the learned policy's deltas in table at once, as
// outcomes.Recorder.Add does, rebuilding it from stats (which already
// holds them) when one is of a cell it lacks.
func learnNow(table *featurestore.LearnTable, deltas []featurestore.StatDelta, stats map[featurestore.StatKey]featurestore.Counts) *featurestore.LearnTable {
	for _, d := range deltas {
		if !table.Add(d) {
			return featurestore.NewLearnTable(stats)
		}
	}
	return table
}

// feedback appends the statistics increments nextbest serve makes for a
// decision whose offers shown the channel showed (none: an empty answer)
// and the customer converted on or not (converted, by shown's index): the
// decision itself, the impression the page reports for each offer, and
// the conversions, worth the offer's value, credited to the learn key
// the outcome path computes (Engine.OutcomeLearning, once: every event
// carries the same features and time). Outcomes are credited at the
// decision's time, so they reach the learner at once or at the next
// snapshot: the real world's conversion delay is not simulated.
func feedback(dst []featurestore.StatDelta, e *decision.Engine, c *rules.Catalog, f featurestore.Vector, res *decision.Result, shown []*rules.Offer, converted []bool, now time.Time) []featurestore.StatDelta {
	dst = decision.AppendDecisionDeltas(dst, res, now)
	if len(shown) == 0 {
		return dst
	}
	key, terms := e.OutcomeLearning(nil, c, f, res.Channel.Name, now)
	for i, o := range shown {
		out := decision.Outcome{Kind: featurestore.Impression, OfferID: o.ID, Channel: res.Channel.Name,
			LearnKey: key, Assignments: res.Assignments, Time: now,
			Model: c.Learning.Model, Terms: terms, Success: c.Learning.Success}
		dst = decision.AppendOutcomeDeltas(dst, &out)
		if converted[i] {
			out.Kind, out.Value = featurestore.Conversion, o.Value
			dst = decision.AppendOutcomeDeltas(dst, &out)
		}
	}
	return dst
}

// segmentMeans returns, per learn key and offer index, the true
// conversion probability averaged over the population's customers of the
// key for whom the offer is eligible: what a learner of learn_by: segment
// converges to at best. The segment oracle ranks by it.
func segmentMeans(e *decision.Engine, c *rules.Catalog, vz *vectorizer, tr *truth, pop []customer, channel string) (map[string][]float64, error) {
	type acc struct{ sum, n []float64 }
	accs := map[string]*acc{}
	var (
		f   featurestore.Vector
		res decision.Result
	)
	for i := range pop {
		cu := &pop[i]
		f = vz.vector(f, cu)
		x := covariates(cu)
		req := decision.Request{CustomerID: cu.id, Channel: channel, Limit: decision.MaxLimit, Now: epoch}
		if err := e.Decide(c, f, &req, &res); err != nil {
			return nil, err
		}
		a := accs[res.LearnKey]
		if a == nil {
			a = &acc{sum: make([]float64, len(c.Offers)), n: make([]float64, len(c.Offers))}
			accs[res.LearnKey] = a
		}
		for _, ch := range res.Offers {
			a.sum[ch.Offer.Index] += tr.p(ch.Offer.Index, &x)
			a.n[ch.Offer.Index]++
		}
	}
	means := make(map[string][]float64, len(accs))
	for key, a := range accs {
		m := make([]float64, len(c.Offers))
		for i := range m {
			if a.n[i] > 0 {
				m[i] = a.sum[i] / a.n[i]
			}
		}
		means[key] = m
	}
	return means, nil
}
