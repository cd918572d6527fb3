package decision

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// MaxLimit bounds the number of offers one decision may return.
const MaxLimit = 50

// Request is one ask for the next-best offers.
type Request struct {
	CustomerID string
	Channel    string
	Placement  string
	Context    map[string]any
	Limit      int  // offers to return; 0 means 1
	Explain    bool // fill Result.Explain
	Now        time.Time
	// History is the customer's contact history across channels, oldest
	// first, for caps, suppressions, the contact policy and stickiness.
	History []featurestore.Contact
	// Learned holds the outcome statistics propensities are learned
	// from; nil means none yet (every offer at its prior).
	Learned *featurestore.LearnTable
	// Seed seeds the random draws of Thompson sampling for this decision
	// (when Rand is nil): the same inputs and seed give the same result.
	// Give each decision its own seed (SeedOf its decision id) or every
	// decision draws alike; see the package doc.
	Seed uint64
	// Rand, when set, is the random source of Thompson sampling instead
	// of Seed, so that a sequence of decisions draws from one stream
	// (simulations, tests).
	Rand *rand.Rand
	// PropensitySamples, when positive, has the decision estimate the
	// probability that each offer it chose is chosen under its
	// exploration (Choice.Selection), from this many re-draws
	// (selections); 0 leaves Selection zero and costs nothing.
	PropensitySamples int
	// RecordLearned has the decision record in Result.LearnedReads the
	// counts each offer's score read from Learned: what a replay of the
	// decision needs of the table (the decision log keeps them). False
	// costs nothing.
	RecordLearned bool
	// ModelReads, when set, are the reads of a logged decision under the
	// catalog's learning model (LearnedRead.Model): the offers' propensities
	// are drawn from the predictions they hold rather than from models
	// fitted on Learned, which replay cannot rebuild. Nil otherwise.
	ModelReads []LearnedRead
}

// LearnedRead is the counts of an offer's learning cell (the decision's
// channel and learn key) that scoring it read from Request.Learned and,
// under a learning model, the model's prediction for the customer.
type LearnedRead struct {
	OfferID string
	Counts  featurestore.Counts
	// Model: the score drew from the catalog's learning model, whose
	// predictive mean and variance of the success rate at the customer's
	// terms were ModelMean and ModelVariance (model.go); the exploration
	// floor read ModelImpressions from the model's total cell.
	Model                    bool
	ModelMean, ModelVariance float64
	ModelImpressions         int64
}

// Choice is one offer picked for the customer.
type Choice struct {
	Offer      *rules.Offer
	Score      float64
	Propensity float64 // the propensity the score used (sampled under Thompson sampling)
	Sticky     bool    // ranked first because it was just presented on another channel
	// Exploring: its cell has fewer impressions than learning.min_explore,
	// so it ranks above the offers whose cells have reached it.
	Exploring bool
	Content   *rules.Content // the offer's content for the requested channel
	// Selection is the probability that the decision chooses this
	// offer, the same request deciding again with other random draws:
	// estimated when Request.PropensitySamples asks for it, 1 for a
	// decision that does not explore; 0 when not asked.
	Selection float64

	redraw int32 // its number in scratch.redraws (selections)
}

// Reason says why an offer was not chosen.
type Reason string

// Reasons an offer was not chosen.
const (
	Chosen         Reason = ""                // the offer is in Result.Offers
	WrongChannel   Reason = "wrong_channel"   // the offer does not list the channel
	WrongPlacement Reason = "wrong_placement" // the offer lists placements, not this one
	OutOfSchedule  Reason = "out_of_schedule" // now is outside start/end
	NotEligible    Reason = "not_eligible"    // the eligible rule is false
	RuleError      Reason = "rule_error"      // the eligible rule failed at run time
	RankedOut      Reason = "ranked_out"      // eligible, but below the limit
	GroupTaken     Reason = "group_taken"     // eligible, but a better offer of its group was chosen
	Capped         Reason = "capped"          // eligible, but a frequency cap is reached
	GroupCapped    Reason = "group_capped"    // eligible, but a cap of its group is reached
	Suppressed     Reason = "suppressed"      // eligible, but suppressed after a recent outcome
	PolicyReached  Reason = "contact_policy"  // eligible, but the catalog's contact policy is reached
	Holdout        Reason = "holdout"         // the customer is in a holdout variant: no offers
	NotInVariant   Reason = "not_in_variant"  // the customer's experiment variant excludes the offer
)

// Explanation tells, for one offer, whether it was eligible and why not.
type Explanation struct {
	OfferID  string
	Eligible bool
	Reason   Reason
	Rule     string // the failing conjunct of the eligible rule
	Error    string // the run-time error, for RuleError
	// For eligible offers: the score and what made it.
	Score      float64
	Propensity float64
	Value      float64
	Weight     float64
	Sticky     bool
	Exploring  bool
}

// Result is the outcome of a decision. A Result is reused across
// decisions: Decide overwrites every field.
type Result struct {
	Channel  *rules.Channel
	Offers   []Choice
	Fallback *rules.Content // the channel's default content when Offers is empty
	Segments []string       // segments the customer is in
	Explain  []Explanation  // filled only when Request.Explain
	// Assignments are the customer's experiment variants.
	Assignments []Assignment
	// Holdout is set when a holdout variant withheld every offer.
	Holdout bool
	// LearnKey is the key the customer's outcomes are learned under.
	LearnKey string
	// Suppressed is set when the channel's policy (consent, quiet hours,
	// contact limit) withheld the whole decision: no offers and no
	// fallback.
	Suppressed Suppression
	// NextAllowedAt is, for a decision withheld by quiet hours, the next
	// instant outside them, in the customer's zone; zero otherwise.
	NextAllowedAt time.Time
	// LearnedReads are, when Request.RecordLearned, the learned counts
	// the decision's scores read, in the order scored; the re-draws of
	// Request.PropensitySamples read the same cells and are not
	// recorded again. Empty when Learned is.
	LearnedReads []LearnedRead
	// Terms are the customer's terms under the catalog's learning model
	// (rules.Model); empty when the catalog has none.
	Terms []float64
}

// ErrUnknownChannel is returned for a channel the catalog does not declare.
var ErrUnknownChannel = errors.New("unknown channel")

// Engine makes decisions. The zero Engine is ready to use.
type Engine struct {
	envs   sync.Pool                // *scratch
	fitted atomic.Pointer[modelSet] // the learning models last fitted (model.go)
}

// scratch is one decision's working state, pooled with everything it
// allocates. Between decisions it holds no reference to a request.
type scratch struct {
	env      rules.Env
	cands    []Choice
	defaults featurestore.Vector
	src      rand.PCG   // reseeded from Request.Seed by every decision
	own      *rand.Rand // draws from src
	draws    betaDraws  // the Beta sampler's constants of the last shapes
	redraws  []redraw   // what the re-draws need of each candidate (selections)

	// The decision under way, set by bind.
	c       *rules.Catalog
	ch      *rules.Channel
	req     *Request
	rng     *rand.Rand         // Request.Rand, or own
	arb     *rules.Arbitration // the catalog's, or a variant's
	sticky  *rules.Offer       // the offer stickiness puts first, if eligible
	sorted  bool               // rank sorted the candidates rather than heaping them
	policy  contactHold        // the catalog-wide contact policy, when reached
	redrawn []Choice           // one re-draw's choices (selections)
	reads   *[]LearnedRead     // where score records the counts it read; nil when not asked
	models  *channelFit        // the channel's fitted learning models, when the decision scores by them
	x, z    []float64          // the customer's model terms, raw and standardised for the channel
}

// scratch returns a pooled scratch, or a new one.
func (e *Engine) scratch() *scratch {
	s, _ := e.envs.Get().(*scratch)
	if s == nil {
		s = new(scratch)
		s.own = rand.New(&s.src)
	}
	return s
}

// release drops s's references to the decision and pools it.
func (e *Engine) release(s *scratch) {
	s.env.Reset(nil)
	clear(s.cands)
	s.cands = s.cands[:0]
	clear(s.redrawn)
	s.redrawn = s.redrawn[:0]
	s.c, s.ch, s.req, s.rng, s.arb, s.sticky, s.policy, s.sorted = nil, nil, nil, nil, nil, nil, contactHold{}, false
	s.reads, s.models = nil, nil
	e.envs.Put(s)
}

// Decide fills res with the next-best offers for the customer whose
// features are f (indexed by c.Schema; nil means all defaults).
//
// A decision runs in stages, each a function below: bind the request,
// evaluate the segments and experiment variants, apply the channel's
// policy (gate: consent, quiet hours, contact limit; a channel that does
// not answer gives no offers and no fallback), read the contact
// history, judge every offer (eligibility, contact policy, score), rank
// the candidates, choose the best up to the limit and one per group, and
// say why the others lost when asked to explain.
func (e *Engine) Decide(c *rules.Catalog, f featurestore.Vector, req *Request, res *Result) error {
	ch, ok := c.Channel(req.Channel)
	if !ok {
		return fmt.Errorf("%w: %q is not one of %s", ErrUnknownChannel, req.Channel, strings.Join(c.ChannelNames(), ", "))
	}
	s := e.scratch()
	defer e.release(s)
	s.bind(c, ch, f, req)
	s.segments(res)
	s.experiments(res)
	if m := c.Learning.Model; m != nil {
		// The terms always (the impressions a decision records credit
		// the model with them, whatever ranked the offers: a static
		// variant's too); the models when they score.
		d := m.Dim()
		s.x = slices.Grow(s.x[:0], d)[:d]
		m.Eval(&s.env, s.x)
		res.Terms = append(res.Terms[:0], s.x...)
		if !s.arb.Static || req.Explain {
			s.models = e.models(c, req.Learned).channel(ch)
			s.z = slices.Grow(s.z[:0], d)[:d]
			s.models.standardise(s.x, s.z)
		}
	}
	limit := limitOf(req)
	if ch.Gated() {
		var open bool
		if limit, open = s.gate(res, limit); !open {
			if req.Explain {
				s.explainGated(res)
			}
			return nil
		}
	}
	s.contacts()
	s.judge(res)
	s.rank(limit)
	s.choose(res, limit)
	if req.Explain {
		s.explainLosers(res)
	}
	if req.PropensitySamples > 0 {
		s.reads = nil // the re-draws read what the decision read
		s.selections(res, limit, req.PropensitySamples)
	}
	return nil
}

// limitOf is the number of offers req asks for, from 1 to MaxLimit.
func limitOf(req *Request) int {
	if req.Limit <= 0 {
		return 1
	}
	return min(req.Limit, MaxLimit)
}

// bind starts a decision: the rule environment sees the customer's
// features (the schema's defaults when f does not fit it), the request
// context, channel, placement and time, and the random source is the
// request's own or the scratch's, reseeded from Request.Seed.
func (s *scratch) bind(c *rules.Catalog, ch *rules.Channel, f featurestore.Vector, req *Request) {
	s.c, s.ch, s.req, s.arb = c, ch, req, &c.Arbitration
	s.rng = req.Rand
	if s.rng == nil {
		s.seed(req.Seed)
		s.rng = s.own
	}
	env := &s.env
	env.Reset(c)
	if len(f) != c.Schema.Len() {
		s.defaults = c.Schema.Defaults(s.defaults)
		f = s.defaults
	}
	env.Customer = f
	env.Context = req.Context
	env.Channel = ch.Name
	env.Placement = req.Placement
	env.Now = req.Now
}

// segments evaluates the customer's segments, each once and in
// declaration order so a segment may build on earlier ones, and resets
// res for this decision with its channel, the segments, the experiment
// assignments and the learn key.
func (s *scratch) segments(res *Result) {
	env := &s.env
	for _, seg := range s.c.Segments {
		if in, _ := seg.Rule.Eval(env); in {
			env.AddSegment(seg)
		}
	}
	*res = Result{Channel: s.ch, Offers: res.Offers[:0], Segments: append(res.Segments[:0], env.Segments...), Explain: res.Explain[:0],
		Assignments: assign(res.Assignments[:0], s.c, s.req.CustomerID, s.ch, env), LearnedReads: res.LearnedReads[:0], Terms: res.Terms[:0]}
	res.LearnKey = LearnKey(s.c, env.Customer, env.Segments)
	if s.req.RecordLearned {
		s.reads = &res.LearnedReads
	}
}

// experiments applies the customer's experiment variants: a holdout
// withholds every offer; the first variant that sets an arbitration
// overrides the catalog's.
func (s *scratch) experiments(res *Result) {
	arbSet := false
	for _, a := range res.Assignments {
		res.Holdout = res.Holdout || a.Variant.Holdout
		if a.Variant.Arbitration != nil && !arbSet {
			s.arb, arbSet = a.Variant.Arbitration, true
		}
	}
}

// contacts reads what the contact history decides once for every offer:
// the sticky offer and whether the catalog-wide contact policy is reached.
func (s *scratch) contacts() {
	s.sticky = stickyOffer(s.c, s.req)
	s.policy = catalogPolicy(s.c, s.req)
}

// verdict is what judging found for one offer.
type verdict struct {
	reason Reason
	rule   string // the failing conjunct or the contact rule, for explain
	err    string // the run-time error, for RuleError
}

// judge makes a scored candidate of each offer of the channel that is
// placed, in schedule and eligible, and that admit lets through. When
// explaining, it judges every offer of the catalog, including those of
// other channels, and records each verdict (judgeAll).
//
// The checks every offer goes through stay in this loop rather than in a
// function called per offer: such a call, its verdict returned by value,
// cost BenchmarkDecide100 9% more instructions per decision than this
// loop (15,679 before the split, 17,096 with the call, 14,900 now;
// callgrind, see docs/benchmarks.md).
func (s *scratch) judge(res *Result) {
	req, ch := s.req, s.ch
	if req.Explain {
		s.judgeAll(res)
		return
	}
	// Screen leaves out only offers whose eligible rule is false, so the
	// loop costs what the offers a customer may get cost, not the catalog
	// (BenchmarkDecideOffers/5000: see docs/benchmarks.md, issue 12). It
	// reads each of them from the channel's listings, one array, rather
	// than from the offers' structs.
	ls := s.c.Listings(ch)
	for _, pos := range s.c.ScreenPositions(ch, &s.env) {
		l := &ls[pos]
		o := l.Offer
		if (l.Placed && !o.InPlacement(req.Placement)) || (l.Scheduled && !o.Active(req.Now)) {
			continue
		}
		if !l.Planned {
			// Screen found a planned rule true; others are judged here.
			if ok, err := o.Eligible.Eval(&s.env); !ok || err != nil {
				continue
			}
		}
		s.admit(l, res)
	}
}

// judgeAll is judge when explaining: every offer of the catalog, and the
// verdict on each.
func (s *scratch) judgeAll(res *Result) {
	req, ch := s.req, s.ch
	for _, o := range s.c.Offers {
		var v verdict
		switch {
		case !o.OfferedOn(ch):
			v.reason = WrongChannel
		case !o.InPlacement(req.Placement):
			v.reason = WrongPlacement
		case !o.Active(req.Now):
			v.reason = OutOfSchedule
		default:
			ok, rule, err := o.Eligible.Explain(&s.env)
			v.rule = rule
			switch {
			case err != nil:
				v.reason, v.err = RuleError, err.Error()
			case !ok:
				v.reason = NotEligible
			default:
				l := o.Listing(ch)
				v = s.admit(&l, res)
			}
		}
		s.explain(res, o, v)
	}
}

// admit takes an eligible offer through, in order, the catalog's contact
// policy, the experiment variants and o's own suppressions and caps; the
// first that holds it back is the verdict. An offer they all let through
// becomes a candidate with its score.
func (s *scratch) admit(l *rules.Listing, res *Result) verdict {
	o := l.Offer
	var hold contactHold
	switch {
	case s.policy.reason != Chosen:
		hold = s.policy
	case res.Holdout:
		v := verdict{reason: Holdout}
		if s.req.Explain {
			v.rule = holdoutOf(res.Assignments)
		}
		return v
	case !allowed(res.Assignments, o):
		return verdict{reason: NotInVariant}
	case len(s.req.History) > 0: // without, nothing to cap or suppress
		hold = contactPolicy(s.c, o, s.ch, s.req)
	}
	if hold.reason != Chosen {
		v := verdict{reason: hold.reason}
		if s.req.Explain {
			v.rule = hold.detail()
		}
		return v
	}
	s.cands = append(s.cands, Choice{Offer: o, Content: l.Content, Sticky: o == s.sticky})
	if err := s.score(res.LearnKey, l, &s.cands[len(s.cands)-1]); err != nil {
		s.cands = s.cands[:len(s.cands)-1]
		return verdict{reason: RuleError, err: err.Error()}
	}
	return verdict{}
}

// explain records the verdict on o; a candidate's is the last one admit
// made.
func (s *scratch) explain(res *Result, o *rules.Offer, v verdict) {
	x := Explanation{OfferID: o.ID, Eligible: v.reason == Chosen, Reason: v.reason, Rule: v.rule, Error: v.err, Value: o.Value, Weight: o.Weight}
	if x.Eligible {
		cand := &s.cands[len(s.cands)-1]
		x.Score, x.Propensity, x.Sticky, x.Exploring = cand.Score, cand.Propensity, cand.Sticky, cand.Exploring
	}
	res.Explain = append(res.Explain, x)
}

// rank orders the candidates by score, highest first; ties go to the
// offer declared first, so the order is deterministic. Offers below the
// exploration floor (Choice.Exploring) go before the others, and the
// sticky offer, if a candidate, before all.
//
// choose reads the order only as far as the limit, so the candidates are
// not sorted: for a limit of at most selectLimit, choose picks each best
// remaining candidate by a scan; for a larger limit, rank makes them a
// heap in that order and choose pops them one at a time (with 131
// candidates, 5,000 offers, sorting was 40% of a decision). A NaN score
// (a value of .inf times a weight of 0) orders nothing: then, and only
// then, the candidates are sorted as they always were.
func (s *scratch) rank(limit int) {
	cands := s.cands
	if slices.ContainsFunc(cands, func(c Choice) bool { return math.IsNaN(c.Score) }) {
		s.sortCands()
		return
	}
	if limit <= selectLimit {
		return // choose scans
	}
	heapify(cands)
}

// selectLimit is the largest limit for which choose finds each best
// candidate by a scan of those left rather than from a heap: a scan's
// comparisons rarely change the best so far, so its branches are
// predicted, where a heap's, on random scores, are not
// (BenchmarkDecideOffers/5000, limit 3, 131 candidates: 146 mispredicted
// branches a decision in the heap, by callgrind; see docs/benchmarks.md,
// issue 12, the engine, second pass).
const selectLimit = 4

func heapify(h []Choice) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
}

// sortCands sorts the candidates in rank's order, for choose to read in
// turn.
func (s *scratch) sortCands() {
	s.sorted = true
	cands := s.cands
	slices.SortFunc(cands, func(a, b Choice) int {
		switch {
		case a.Exploring != b.Exploring:
			if a.Exploring {
				return -1
			}
			return 1
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return a.Offer.Index - b.Offer.Index
	})
	if s.sticky == nil {
		return
	}
	for i := range cands {
		if cands[i].Sticky {
			st := cands[i]
			copy(cands[1:i+1], cands[:i])
			cands[0] = st
			return
		}
	}
}

// ranksBefore is the order of rank: the sticky candidate first, then the
// exploring ones (below learning.min_explore), then by score, highest
// first, then by declaration.
func ranksBefore(a, b *Choice) bool {
	switch {
	case a.Sticky != b.Sticky:
		return a.Sticky
	case a.Exploring != b.Exploring:
		return a.Exploring
	case a.Score > b.Score:
		return true
	case a.Score < b.Score:
		return false
	}
	return a.Offer.Index < b.Offer.Index
}

// siftDown restores the heap property of h below i.
func siftDown(h []Choice, i int) {
	for {
		best, l := i, 2*i+1
		if l < len(h) && ranksBefore(&h[l], &h[best]) {
			best = l
		}
		if r := l + 1; r < len(h) && ranksBefore(&h[r], &h[best]) {
			best = r
		}
		if best == i {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}

// choose takes the ranked candidates best first, at most one offer per
// group, up to limit; with none, the answer is the channel's fallback.
// Groups are few per decision, so the chosen offers are scanned rather
// than a set kept. Each candidate taken moves to the end of those left,
// so s.cands keeps every candidate for explainLosers.
//
// A holdout on a channel where deciding is delivering (email, sms) gets
// nothing, not even the fallback: the decision is withheld with reason
// holdout, so a campaign sends a held-out customer no message at all.
func (s *scratch) choose(res *Result, limit int) {
	res.Offers = s.pick(res.Offers, limit)
	switch {
	case len(res.Offers) > 0:
	case res.Holdout && s.ch.DecisionIsImpression:
		res.Suppressed = Suppression{Reason: Holdout, Rule: holdoutOf(res.Assignments)}
	default:
		res.Fallback = s.c.Fallback(s.ch)
	}
}

// pick appends to dst, empty, the offers choose takes from the ranked
// candidates: the decision's, or a re-draw's (selections).
func (s *scratch) pick(dst []Choice, limit int) []Choice {
	if s.sorted {
		for _, cand := range s.cands {
			if len(dst) == limit {
				break
			}
			if groupChosen(dst, cand.Offer.Group) {
				continue
			}
			dst = append(dst, cand)
		}
		return dst
	}
	h := s.cands
	// With a limit of at most selectLimit, rank left the candidates
	// as they were: each best is found by a scan, until as many
	// scans as twice the limit (offers of a group already chosen)
	// make a heap of the rest the cheaper way.
	heaped := limit > selectLimit
	for scans := 0; len(h) > 0 && len(dst) < limit; scans++ {
		if !heaped && scans == 2*limit {
			heapify(h)
			heaped = true
		}
		best := 0
		if !heaped {
			for i := 1; i < len(h); i++ {
				if ranksBefore(&h[i], &h[best]) {
					best = i
				}
			}
		}
		cand := h[best]
		last := len(h) - 1
		h[best], h[last] = h[last], cand
		h = h[:last]
		if heaped {
			siftDown(h, 0)
		}
		if !groupChosen(dst, cand.Offer.Group) {
			dst = append(dst, cand)
		}
	}
	return dst
}

// groupChosen reports whether chosen already holds an offer of group g
// ("" is no group).
func groupChosen(chosen []Choice, g string) bool {
	return g != "" && slices.ContainsFunc(chosen, func(ch Choice) bool { return ch.Offer.Group == g })
}

// explainLosers tells, for each eligible offer not chosen, whether a
// better offer of its group took its place or the limit ranked it out.
func (s *scratch) explainLosers(res *Result) {
	for i := range res.Explain {
		x := &res.Explain[i]
		if !x.Eligible {
			continue
		}
		for _, cand := range s.cands {
			if cand.Offer.ID != x.OfferID {
				continue
			}
			if !slices.ContainsFunc(res.Offers, func(ch Choice) bool { return ch.Offer == cand.Offer }) {
				x.Reason = RankedOut
				if groupChosen(res.Offers, cand.Offer.Group) {
					x.Reason = GroupTaken
				}
			}
			break
		}
	}
}

// score sets cand's propensity and score under the decision's
// arbitration. Propensities come from the offer's Beta posterior for the
// channel and learn key: sampled under Thompson sampling, its mean when
// greedy or static.
func (s *scratch) score(key string, l *rules.Listing, cand *Choice) error {
	c, req, arb := s.c, s.req, s.arb
	if arb.Static && !req.Explain {
		cand.Score = l.Value * l.Weight
		return nil // the propensity is not needed
	}
	var n featurestore.Counts
	if req.Learned.Len() > 0 {
		n = req.Learned.Get(l.Offer.ID, s.ch.Name, key)
		if s.reads != nil {
			*s.reads = append(*s.reads, LearnedRead{OfferID: l.Offer.ID, Counts: n})
		}
	}
	post := PosteriorOf(l.Prior, n, c.Learning.Success)
	// The exploration floor: an offer that has not had min_explore
	// impressions in its cell is tried before the others, whatever its
	// prior × value says, unless its value × weight says never. Only
	// when the catalog explores: greedy ranking (and static) is the
	// author's choice of no exploration.
	floor := n.Impressions
	var pred LearnedRead // the model's, when there is one
	if s.models != nil {
		pred = s.modelPrediction(l.Offer)
		// Under a model the floor is the offer's, whatever the learn key:
		// the model learns from every customer's impressions.
		floor = pred.ModelImpressions
		if s.reads != nil && len(*s.reads) > 0 && (*s.reads)[len(*s.reads)-1].OfferID == l.Offer.ID {
			r := &(*s.reads)[len(*s.reads)-1]
			r.Model, r.ModelMean, r.ModelVariance, r.ModelImpressions = true, pred.ModelMean, pred.ModelVariance, pred.ModelImpressions
		}
	}
	cand.Exploring = !arb.Static && c.Learning.Explore == rules.Thompson && floor < int64(c.Learning.MinExplore) && l.Value*l.Weight > 0
	switch {
	case s.models != nil:
		cand.Propensity = pred.ModelMean
		if !arb.Static && c.Learning.Explore == rules.Thompson {
			cand.Propensity += math.Sqrt(c.Learning.Model.Exploration*pred.ModelVariance) * s.rng.NormFloat64()
		}
		cand.Propensity = min(max(cand.Propensity, 0), 1)
		if math.IsNaN(cand.Propensity) {
			// Terms or sums beyond float64's range (a term of 1e200,
			// say): the prediction means nothing, the prior does.
			cand.Propensity = l.Prior.Rate
		}
	case arb.Static:
		cand.Propensity = post.Mean()
	case c.Learning.Explore == rules.Thompson:
		cand.Propensity = s.draws.sample(post, s.rng)
	default:
		cand.Propensity = post.Mean()
	}
	if arb.Static {
		cand.Score = l.Value * l.Weight
		return nil
	}
	if arb.Score == nil {
		cand.Score = cand.Propensity * l.Value * l.Weight
		return nil
	}
	env := &s.env
	env.Propensity, env.Value, env.Weight = cand.Propensity, l.Value, l.Weight
	score, err := arb.Score.Eval(env)
	if err != nil {
		return fmt.Errorf("arbitration: %w", err)
	}
	if math.IsNaN(score) {
		return errors.New("arbitration: the score is NaN")
	}
	cand.Score = score
	return nil
}

// modelPrediction is the learning model's prediction of offer o's
// success rate for the customer and the impressions of its total cell
// (model.go): from the fitted models, or from Request.ModelReads when a
// replay gives them (an offer they lack predicts the prior).
func (s *scratch) modelPrediction(o *rules.Offer) LearnedRead {
	r := LearnedRead{OfferID: o.ID, Model: true, ModelMean: o.Prior.Rate}
	if s.req.ModelReads != nil {
		for _, m := range s.req.ModelReads {
			if m.OfferID == o.ID && m.Model {
				r.ModelMean, r.ModelVariance, r.ModelImpressions = m.ModelMean, m.ModelVariance, m.ModelImpressions
				break
			}
		}
		return r
	}
	r.ModelImpressions = s.req.Learned.Get(o.ID, s.ch.Name, s.c.Learning.Model.TotalKey).Impressions
	if fits := s.models.fits; o.Index < len(fits) && fits[o.Index] != nil {
		r.ModelMean, r.ModelVariance = fits[o.Index].predict(s.z)
	}
	return r
}

// allowed reports whether every experiment variant of the customer allows o.
func allowed(as []Assignment, o *rules.Offer) bool {
	for _, a := range as {
		if !a.Variant.Allows(o) {
			return false
		}
	}
	return true
}

// stickyOffer returns the offer most recently presented to the customer
// (on any channel) whose stickiness window still covers now, or nil.
func stickyOffer(c *rules.Catalog, req *Request) *rules.Offer {
	maxSticky := c.MaxSticky()
	if maxSticky == 0 || len(req.History) == 0 {
		return nil
	}
	now := req.Now.UnixNano()
	cut := now - int64(maxSticky)
	for i := len(req.History) - 1; i >= 0 && req.History[i].At >= cut; i-- {
		h := &req.History[i]
		if h.Kind != featurestore.Impression || h.At > now {
			continue
		}
		if o, ok := c.Offer(h.OfferID); ok && o.Sticky > 0 && h.At >= now-int64(o.Sticky) {
			return o
		}
	}
	return nil
}
