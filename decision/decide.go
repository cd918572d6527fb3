package decision

import (
	"errors"
	"fmt"
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
	// first, for caps, suppressions and the contact policy.
	History []featurestore.Contact
}

// Choice is one offer picked for the customer.
type Choice struct {
	Offer   *rules.Offer
	Score   float64
	Content *rules.Content // the offer's content for the requested channel
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
	Suppressed     Reason = "suppressed"      // eligible, but suppressed after a recent outcome
	PolicyReached  Reason = "contact_policy"  // eligible, but the catalog's contact policy is reached
)

// Explanation tells, for one offer, whether it was eligible and why not.
type Explanation struct {
	OfferID  string
	Eligible bool
	Reason   Reason
	Rule     string  // the failing conjunct of the eligible rule
	Error    string  // the run-time error, for RuleError
	Score    float64 // for eligible offers
}

// Result is the outcome of a decision. A Result is reused across
// decisions: Decide overwrites every field.
type Result struct {
	Channel  *rules.Channel
	Offers   []Choice
	Fallback *rules.Content // the channel's default content when Offers is empty
	Segments []string       // segments the customer is in
	Explain  []Explanation  // filled only when Request.Explain
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
		s = &scratch{}
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

	*res = Result{Channel: ch, Offers: res.Offers[:0], Segments: append(res.Segments[:0], env.Segments...), Explain: res.Explain[:0]}
	cands := s.cands[:0]

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
			default:
				why = contactPolicy(o, ch, req)
			}
		}
		if why == Chosen {
			cands = append(cands, Choice{Offer: o, Score: o.Value * o.Weight, Content: o.Content(ch)})
		}
		if req.Explain {
			res.Explain = append(res.Explain, Explanation{OfferID: o.ID, Eligible: why == Chosen, Reason: why, Rule: failing, Error: errMsg})
		}
	}

	// Highest score first; ties go to the offer declared first, so the
	// order is deterministic.
	slices.SortStableFunc(cands, func(a, b Choice) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return a.Offer.Index - b.Offer.Index
	})
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
				x.Score = cand.Score
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
func contactPolicy(o *rules.Offer, ch *rules.Channel, req *Request) Reason {
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
