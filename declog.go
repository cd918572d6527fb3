package nextbest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// The decision log (issue 14): a sample of the decisions, real-time and
// batch, each with the probability its offers were chosen with, for
// replay and off-policy evaluation. The service fills the entry on the
// decision path; the log (decisionlog.Log) encodes and writes it on its
// own goroutine and drops it, counted, rather than hold a decision up.

// DecisionLog is where the service logs decisions: decisionlog.Log.
// Append must not block.
type DecisionLog interface {
	Append(e *decisionlog.Entry) bool
	Lookup(id string, t time.Time) (*decisionlog.Entry, error)
}

// DefaultPropensitySamples is the default Options.PropensitySamples: the
// error of an estimated propensity p is sqrt(p(1-p)/32), at most 0.088.
const DefaultPropensitySamples = 32

// ErrNoDecisionLog is returned by LoggedDecision when the service keeps
// no decision log.
var ErrNoDecisionLog = errors.New("nextbest: no decision log is kept")

// ErrBadDecisionID is wrapped by the error of a decision id that is not
// one.
var ErrBadDecisionID = errors.New("not a decision id")

// logs reports whether the decision of id is logged.
func (s *Service) logs(id *xid.ID) bool {
	return s.declog != nil && !s.readOnly && decisionlog.Sampled(id[:], s.logRate)
}

// logDecision appends d, made from req with the features f of catalog
// cat, to the decision log. Every string is copied: the request's may
// point into a transport's buffer, the features' into the cache's.
func (s *Service) logDecision(cat *rules.Catalog, r *Request, d *Decision, customer string, f featurestore.Vector, now time.Time) {
	res := &d.Result
	// A pooled entry (decisionlog.NewEntry): its slices' room is reused.
	e := decisionlog.NewEntry()
	e.ID = d.ID.String()
	e.Time = now
	e.CustomerID = strings.Clone(r.CustomerID)
	e.Channel = res.Channel.Name
	e.Placement = strings.Clone(r.Placement)
	e.Limit = r.Limit
	e.Catalog = cat.Version
	e.Holdout = res.Holdout
	e.Segments = append(e.Segments, res.Segments...)
	e.LearnKey = strings.Clone(res.LearnKey)
	e.Offers = slices.Grow(e.Offers, len(res.Offers))[:len(res.Offers)]
	if customer != r.CustomerID {
		e.DecidedFor = strings.Clone(customer)
	}
	if d.Degraded != NotDegraded {
		e.Degraded = d.Degraded.String()
	}
	switch {
	case decision.Explores(cat, res.Assignments):
		e.Explore, e.PropensitySamples = cat.Learning.Explore.String(), s.propSamples
	case cat.Learning.Explore == rules.Thompson:
		e.Explore = "static" // a static arbitration: no draw decides
	default:
		e.Explore = cat.Learning.Explore.String()
	}
	for _, a := range res.Assignments {
		e.Variants = append(e.Variants, decisionlog.Variant{Experiment: a.Experiment.ID, Variant: a.Variant.Name})
	}
	for i, o := range res.Offers {
		e.Offers[i] = decisionlog.Offer{ID: o.Offer.ID, Score: o.Score, Draw: o.Propensity, Propensity: o.Selection}
	}
	// The features the rules read, encoded at once (SetFeatures).
	if len(f) != cat.Schema.Len() {
		f = cat.Schema.Defaults(nil) // what the engine read
	}
	e.SetFeatures(cat.Schema, f)
	// What replay needs besides (encode_replay.go): the history and the
	// learned counts the engine read, encoded at once. Of the history,
	// only the contacts within the catalog's longest look-back: the
	// older ones no rule reads, and they would make a logged decision's
	// cost grow with the customer's history (BenchmarkDecideLoggedHistory).
	h := d.req.History
	read := decision.HistoryRead(cat, h, now)
	e.SetContacts(read)
	if n := len(h) - len(read); n > 0 {
		e.ContactsOmitted, e.ContactsOmittedAt = n, h[n-1].At
	}
	reads := res.LearnedReads
	var model decisionlog.Learned // reused: SetLearned encodes it at once
	e.SetLearned(e.Channel, e.LearnKey, len(reads), func(i int) (string, featurestore.Counts, *decisionlog.Learned) {
		r := &reads[i]
		if !r.Model {
			return r.OfferID, r.Counts, nil
		}
		model.Model, model.ModelMean, model.ModelVariance, model.ModelImpressions = true, r.ModelMean, r.ModelVariance, r.ModelImpressions
		return r.OfferID, r.Counts, &model
	})
	if len(r.Context) > 0 {
		e.Context = make(map[string]any, len(r.Context))
		for k, v := range r.Context {
			e.Context[strings.Clone(k)] = cloneJSON(v)
		}
	}
	s.declog.Append(e)
}

// cloneJSON copies v, a value decoded from JSON or a feature's, with
// its strings.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case string:
		return strings.Clone(v)
	case []string:
		c := make([]string, len(v))
		for i, s := range v {
			c[i] = strings.Clone(s)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = cloneJSON(x)
		}
		return c
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, x := range maps.All(v) {
			c[strings.Clone(k)] = cloneJSON(x)
		}
		return c
	}
	return v
}

// LoggedDecision returns the logged entry of decision id: ErrNoDecisionLog
// when no log is kept, an error wrapping ErrBadDecisionID for an id that
// is not a decision id, decisionlog.ErrNotFound for one the log does not
// hold (not sampled, dropped, past retention, or not yet written: the
// writer is a moment behind the decision).
func (s *Service) LoggedDecision(id string) (*decisionlog.Entry, error) {
	if s.declog == nil {
		return nil, ErrNoDecisionLog
	}
	x, err := xid.FromString(id)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", id, ErrBadDecisionID)
	}
	return s.declog.Lookup(x.String(), x.Time())
}
