package decision

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
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
	// Rand, when set, is the random source of Thompson sampling for this
	// decision, so that a sequence of decisions can be replayed
	// (simulations, tests); nil uses the engine's own streams.
	Rand *rand.Rand
}

// Choice is one offer picked for the customer.
type Choice struct {
	Offer      *rules.Offer
	Score      float64
	Propensity float64        // the propensity the score used (sampled under Thompson sampling)
	Sticky     bool           // ranked first because it was just presented on another channel
	Content    *rules.Content // the offer's content for the requested channel
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
}

// ErrUnknownChannel is returned for a channel the catalog does not declare.
var ErrUnknownChannel = errors.New("unknown channel")

// Engine makes decisions. The zero Engine is ready to use.
type Engine struct {
	envs sync.Pool // *scratch
}

type scratch struct {
	env      rules.Env
	cands    []Choice
	defaults featurestore.Vector
	rng      *rand.Rand
}

// Decide fills res with the next-best offers for the customer whose
// features are f (indexed by c.Schema; nil means all defaults).
func (e *Engine) Decide(c *rules.Catalog, f featurestore.Vector, req *Request, res *Result) error {
	ch, ok := c.Channel(req.Channel)
	if !ok {
		return fmt.Errorf("%w: %q is not one of %s", ErrUnknownChannel, req.Channel, strings.Join(c.ChannelNames(), ", "))
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 1
	}
	limit = min(limit, MaxLimit)

	s, _ := e.envs.Get().(*scratch)
	if s == nil {
		s = &scratch{rng: newRand()}
	}
	defer func() {
		s.env.Reset(nil) // drop references to the request
		e.envs.Put(s)
	}()
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

	// Segments first, each evaluated once, in declaration order so a
	// segment may build on earlier ones.
	for _, seg := range c.Segments {
		if in, _ := seg.Rule.Eval(env); in {
			env.AddSegment(seg)
		}
	}

	*res = Result{Channel: ch, Offers: res.Offers[:0], Segments: append(res.Segments[:0], env.Segments...), Explain: res.Explain[:0],
		Assignments: Assign(res.Assignments[:0], c, req.CustomerID)}
	res.LearnKey = LearnKey(c, f, env.Segments)
	cands := s.cands[:0]

	// Experiments: a holdout withholds every offer; the first variant
	// that sets an arbitration overrides the catalog's.
	arb := &c.Arbitration
	arbSet := false
	for _, a := range res.Assignments {
		res.Holdout = res.Holdout || a.Variant.Holdout
		if a.Variant.Arbitration != nil && !arbSet {
			arb, arbSet = a.Variant.Arbitration, true
		}
	}
	sticky := stickyOffer(c, req)

	policyReached := c.Policy.MaxOffers > 0 && countContacts(req.History, "", nil, featurestore.Impression, req.Now.Add(-c.Policy.Within)) >= c.Policy.MaxOffers
	offers := c.OffersFor(ch)
	if req.Explain {
		offers = c.Offers // explain every offer, including those of other channels
	}
	for _, o := range offers {
		var why Reason
		var failing, errMsg string
		switch {
		case !o.OfferedOn(ch):
			why = WrongChannel
		case !o.InPlacement(req.Placement):
			why = WrongPlacement
		case !o.Active(req.Now):
			why = OutOfSchedule
		default:
			var ok bool
			var err error
			if req.Explain {
				ok, failing, err = o.Eligible.Explain(env)
			} else {
				ok, err = o.Eligible.Eval(env)
			}
			switch {
			case err != nil:
				why, errMsg = RuleError, err.Error()
			case !ok:
				why = NotEligible
			case policyReached:
				why = PolicyReached
			case res.Holdout:
				why = Holdout
			case !allowed(res.Assignments, o):
				why = NotInVariant
			default:
				why = contactPolicy(c, o, ch, req)
			}
			if req.Explain && failing == "" {
				failing = policyDetail(c, o, ch, req, why)
			}
		}
		var score, propensity float64
		if why == Chosen {
			cands = append(cands, Choice{Offer: o, Content: o.Content(ch), Sticky: o == sticky})
			cand := &cands[len(cands)-1]
			if err := s.score(c, arb, ch, req, res.LearnKey, cand); err != nil {
				why, errMsg = RuleError, err.Error()
				cands = cands[:len(cands)-1]
			} else {
				score, propensity = cand.Score, cand.Propensity
			}
		}
		if req.Explain {
			res.Explain = append(res.Explain, Explanation{OfferID: o.ID, Eligible: why == Chosen, Reason: why, Rule: failing, Error: errMsg,
				Score: score, Propensity: propensity, Value: o.Value, Weight: o.Weight, Sticky: why == Chosen && o == sticky})
		}
	}

	// Highest score first; ties go to the offer declared first, so the
	// order is deterministic. Then the sticky offer, if eligible, moves
	// to the front.
	slices.SortFunc(cands, func(a, b Choice) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return a.Offer.Index - b.Offer.Index
	})
	if sticky != nil {
		for i := range cands {
			if cands[i].Sticky {
				st := cands[i]
				copy(cands[1:i+1], cands[:i])
				cands[0] = st
				break
			}
		}
	}
	// Best first, at most one offer per group, up to the limit. Groups
	// are few per decision, so the chosen offers are scanned rather than
	// a set kept.
	for _, cand := range cands {
		if len(res.Offers) == limit {
			break
		}
		if g := cand.Offer.Group; g != "" && slices.ContainsFunc(res.Offers, func(ch Choice) bool { return ch.Offer.Group == g }) {
			continue
		}
		res.Offers = append(res.Offers, cand)
	}
	if len(res.Offers) == 0 {
		res.Fallback = c.Fallback(ch)
	}
	if req.Explain {
		for i := range res.Explain {
			x := &res.Explain[i]
			if !x.Eligible {
				continue
			}
			for _, cand := range cands {
				if cand.Offer.ID != x.OfferID {
					continue
				}
				if !slices.ContainsFunc(res.Offers, func(ch Choice) bool { return ch.Offer == cand.Offer }) {
					x.Reason = RankedOut
					if g := cand.Offer.Group; g != "" && slices.ContainsFunc(res.Offers, func(ch Choice) bool { return ch.Offer.Group == g }) {
						x.Reason = GroupTaken
					}
				}
				break
			}
		}
	}
	clear(cands)
	s.cands = cands[:0]
	return nil
}

// contactPolicy applies o's suppressions and caps to the customer's
// contact history for a decision on ch. A cap naming a channel limits that
// channel only: it counts that channel's impressions and binds only
// decisions made for it.
func contactPolicy(c *rules.Catalog, o *rules.Offer, ch *rules.Channel, req *Request) Reason {
	if len(req.History) == 0 {
		return Chosen
	}
	for _, sp := range o.Suppress {
		if countContacts(req.History, o.ID, nil, sp.Kind, req.Now.Add(-sp.For)) > 0 {
			return Suppressed
		}
	}
	for _, cp := range o.Caps {
		if cp.Channel != nil && cp.Channel != ch {
			continue
		}
		if countContacts(req.History, o.ID, cp.Channel, featurestore.Impression, req.Now.Add(-cp.Within)) >= cp.Max {
			return Capped
		}
	}
	if g := c.Groups[o.Group]; g != nil && o.Group != "" {
		for _, cp := range g.Caps {
			if cp.Channel != nil && cp.Channel != ch {
				continue
			}
			if countGroupContacts(c, req.History, g.Name, cp.Channel, req.Now.Add(-cp.Within)) >= cp.Max {
				return GroupCapped
			}
		}
	}
	return Chosen
}

// countContacts counts the contacts of kind since since, for offer (any
// offer when empty) on ch (any channel when nil). History is oldest first,
// so the scan runs from the newest and stops at since.
func countContacts(h []featurestore.Contact, offer string, ch *rules.Channel, kind featurestore.Outcome, since time.Time) int {
	cut := since.UnixNano()
	n := 0
	for i := len(h) - 1; i >= 0 && h[i].At >= cut; i-- {
		c := &h[i]
		if c.Kind == kind && (offer == "" || c.OfferID == offer) && (ch == nil || c.Channel == ch.Name) {
			n++
		}
	}
	return n
}

// score sets cand's propensity and score under arb. Propensities come
// from the offer's Beta posterior for the channel and learn key: sampled
// under Thompson sampling, its mean when greedy or static.
func (s *scratch) score(c *rules.Catalog, arb *rules.Arbitration, ch *rules.Channel, req *Request, key string, cand *Choice) error {
	o := cand.Offer
	if arb.Static && !req.Explain {
		cand.Score = o.Value * o.Weight
		return nil // the propensity is not needed
	}
	var n featurestore.Counts
	if req.Learned.Len() > 0 {
		n = req.Learned.Get(o.ID, ch.Name, key)
	}
	post := PosteriorOf(o.Prior, n, c.Learning.Success)
	if arb.Static {
		cand.Propensity = post.Mean()
		cand.Score = o.Value * o.Weight
		return nil
	}
	if c.Learning.Explore == rules.Thompson {
		r := req.Rand
		if r == nil {
			r = s.rng
		}
		cand.Propensity = post.Sample(r)
	} else {
		cand.Propensity = post.Mean()
	}
	if arb.Score == nil {
		cand.Score = cand.Propensity * o.Value * o.Weight
		return nil
	}
	env := &s.env
	env.Propensity, env.Value, env.Weight = cand.Propensity, o.Value, o.Weight
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

// countGroupContacts counts the impressions since since of any offer of
// group, on ch (any channel when nil).
func countGroupContacts(c *rules.Catalog, h []featurestore.Contact, group string, ch *rules.Channel, since time.Time) int {
	cut := since.UnixNano()
	n := 0
	for i := len(h) - 1; i >= 0 && h[i].At >= cut; i-- {
		x := &h[i]
		if x.Kind != featurestore.Impression || (ch != nil && x.Channel != ch.Name) {
			continue
		}
		if o, ok := c.Offer(x.OfferID); ok && o.Group == group {
			n++
		}
	}
	return n
}

// policyDetail names, for an explanation, the contact rule behind why:
// the suppression, cap, group cap or catalog-wide policy that held o back.
func policyDetail(c *rules.Catalog, o *rules.Offer, ch *rules.Channel, req *Request, why Reason) string {
	on := func(cp rules.Cap) string {
		if cp.Channel == nil {
			return "all channels"
		}
		return cp.Channel.Name
	}
	switch why {
	case PolicyReached:
		return fmt.Sprintf("contact_policy: %d offers within %s", c.Policy.MaxOffers, rules.FormatDuration(c.Policy.Within))
	case Suppressed:
		for _, sp := range o.Suppress {
			if countContacts(req.History, o.ID, nil, sp.Kind, req.Now.Add(-sp.For)) > 0 {
				return fmt.Sprintf("suppress_after: a %s within %s", sp.Kind, rules.FormatDuration(sp.For))
			}
		}
	case Capped:
		for _, cp := range o.Caps {
			if (cp.Channel == nil || cp.Channel == ch) && countContacts(req.History, o.ID, cp.Channel, featurestore.Impression, req.Now.Add(-cp.Within)) >= cp.Max {
				return fmt.Sprintf("caps: %s within %s on %s", impressions(cp.Max), rules.FormatDuration(cp.Within), on(cp))
			}
		}
	case GroupCapped:
		if g := c.Groups[o.Group]; g != nil {
			for _, cp := range g.Caps {
				if (cp.Channel == nil || cp.Channel == ch) && countGroupContacts(c, req.History, g.Name, cp.Channel, req.Now.Add(-cp.Within)) >= cp.Max {
					return fmt.Sprintf("group %s caps: %s within %s on %s", g.Name, impressions(cp.Max), rules.FormatDuration(cp.Within), on(cp))
				}
			}
		}
	}
	return ""
}

func impressions(n int) string {
	if n == 1 {
		return "1 impression"
	}
	return fmt.Sprintf("%d impressions", n)
}
