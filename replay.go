package nextbest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// Replay (issue 14): "why did this customer get that offer last
// Tuesday?". A logged decision holds everything the engine read — the
// features, the request's context, the contact history, the learned
// counts its scores read, its time — and its id seeds its draws, so
// deciding again on the catalog version that made it gives the same
// answer, draw for draw; on another catalog, what that one would have
// answered instead.

// ReenactOptions say how Reenact decides a logged decision again. The
// zero value re-runs it as it was made.
type ReenactOptions struct {
	// Reseed has the decision draw from Seed instead of the logged
	// decision's seed (decision.SeedOf its id): another draw of the same
	// decision, for estimating a policy's selection probabilities
	// (off-policy evaluation). Default: false, the logged draws.
	Reseed bool
	Seed   uint64
	// Explain fills the result's Explain. It changes no draw.
	Explain bool
	// PropensitySamples is the number of re-draws that estimate each
	// chosen offer's propensity (decision.Choice.Selection); negative
	// for none. Default (0): the logged decision's, or
	// DefaultPropensitySamples when it logged none.
	PropensitySamples int
}

// Reenactment is a logged decision decided again.
type Reenactment struct {
	// Catalog is the version of the catalog that decided again.
	Catalog string
	Result  decision.Result
	// Defaulted are the features of the catalog's schema that the log
	// does not hold, or holds as another type: they took their
	// defaults. Only a catalog other than the logged one has any.
	Defaulted []DefaultedFeature
	// Unlearned are the offers scored whose learned counts the log does
	// not hold (the logged decision did not score them): they are at
	// their prior. Only a catalog other than the logged one has any.
	Unlearned []string
	// OmittedContacts is the number of contacts the log left out
	// (older than the logging catalog's longest look-back) that this
	// catalog's longer look-back reaches: its caps, suppressions and
	// stickiness counted as if the customer had not had them. Only a
	// catalog other than the logged one has any.
	OmittedContacts int
}

// OmittedContacts is the number of contacts the log left out of e
// (older than the look-back of the catalog that logged it) when cat's
// look-back reaches them (rules.Catalog.ContactLookback): cat decided
// again on e counts its caps and suppressions without them. 0 when cat
// reads no further back than the logged contacts, as the catalog that
// logged e.
func OmittedContacts(cat *rules.Catalog, e *decisionlog.Entry) int {
	if e.ContactsOmitted > 0 && e.Time.Add(-cat.ContactLookback()).UnixNano() <= e.ContactsOmittedAt {
		return e.ContactsOmitted
	}
	return 0
}

// DefaultedFeature is a feature a re-run decision read at its default.
type DefaultedFeature struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// ErrNotReplayable is wrapped by the error of a logged entry that
// cannot be decided again (its id, contacts or features do not decode).
var ErrNotReplayable = errors.New("the logged decision cannot be replayed")

// reenactor decides logged decisions again; an Engine is safe for
// concurrent use.
var reenactor decision.Engine

// Reenact decides the logged decision e again on cat, with the logged
// features (rebuilt by name into cat's schema), context, contact
// history, learned counts, time and random draws. On the catalog version
// that made it (e.Catalog) the result is the logged one; on another, it
// is what that catalog would have answered. It reads and writes
// nothing but its arguments, and is safe for concurrent use.
func Reenact(cat *rules.Catalog, e *decisionlog.Entry, opts ReenactOptions) (*Reenactment, error) {
	id, err := xid.FromString(e.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: id %q is not a decision id", ErrNotReplayable, e.ID)
	}
	fs, err := e.LoggedFeatures()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReplayable, err)
	}
	history, err := e.History()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReplayable, err)
	}
	learned, err := e.LoggedLearned()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReplayable, err)
	}
	re := &Reenactment{Catalog: cat.Version, OmittedContacts: OmittedContacts(cat, e)}
	features := reenactFeatures(cat.Schema, fs, &re.Defaulted)
	customer := e.CustomerID
	if e.DecidedFor != "" {
		customer = e.DecidedFor
	}
	req := decision.Request{
		CustomerID:    customer,
		Channel:       e.Channel,
		Placement:     e.Placement,
		Context:       e.Context,
		Limit:         e.Limit,
		Explain:       opts.Explain,
		Now:           e.Time,
		History:       history,
		Learned:       learnedTable(learned),
		ModelReads:    modelReads(learned),
		Seed:          decision.SeedOf(id[:]),
		RecordLearned: true,
	}
	if opts.Reseed {
		req.Seed = opts.Seed
	}
	switch k := opts.PropensitySamples; {
	case k > 0:
		req.PropensitySamples = k
	case k == 0 && e.PropensitySamples > 0:
		req.PropensitySamples = e.PropensitySamples
	case k == 0:
		// A logged decision that did not explore logged propensities
		// of 1, which any K gives it; another catalog may explore.
		req.PropensitySamples = DefaultPropensitySamples
	}
	if err := reenactor.Decide(cat, features, &req, &re.Result); err != nil {
		return nil, err
	}
	for _, r := range re.Result.LearnedReads {
		if !slices.ContainsFunc(learned, func(l decisionlog.Learned) bool {
			return l.Offer == r.OfferID && l.Channel == e.Channel && l.Key == re.Result.LearnKey
		}) {
			re.Unlearned = append(re.Unlearned, r.OfferID)
		}
	}
	return re, nil
}

// reenactFeatures rebuilds the feature vector of schema s from the
// logged values fs by name; a feature fs lacks, or holds as another
// type, takes its default and is added to defaulted.
func reenactFeatures(s *featurestore.Schema, fs decisionlog.Fields, defaulted *[]DefaultedFeature) featurestore.Vector {
	v := s.Defaults(nil)
	byName := make(map[string]any, len(fs))
	for _, f := range fs {
		byName[f.Name] = f.Value
	}
	for _, f := range s.Features() {
		x, ok := byName[f.Name]
		if !ok {
			*defaulted = append(*defaulted, DefaultedFeature{Name: f.Name, Reason: "not logged"})
			continue
		}
		val, err := featurestore.Coerce(f.Type, x)
		if err != nil {
			*defaulted = append(*defaulted, DefaultedFeature{Name: f.Name, Reason: fmt.Sprintf("logged value is not a %s: %v", f.Type, err)})
			continue
		}
		v[f.Index] = val
	}
	return v
}

// modelReads is what a logged decision read of the catalog's learning
// model, for the engine to draw from: nil when it read none.
func modelReads(ls []decisionlog.Learned) []decision.LearnedRead {
	var rs []decision.LearnedRead
	for i := range ls {
		if l := &ls[i]; l.Model {
			rs = append(rs, decision.LearnedRead{OfferID: l.Offer, Counts: l.Counts(), Model: true,
				ModelMean: l.ModelMean, ModelVariance: l.ModelVariance, ModelImpressions: l.ModelImpressions})
		}
	}
	return rs
}

// learnedTable is the learned statistics a logged decision read: a
// table of only the cells its scores read, which is all the engine reads
// of one (every other cell would read as zero, as it did then unless it
// was not scored). Nil when it read none.
func learnedTable(ls []decisionlog.Learned) *featurestore.LearnTable {
	if len(ls) == 0 {
		return nil
	}
	cells := make(map[featurestore.StatKey]featurestore.Counts, len(ls))
	for i := range ls {
		l := &ls[i]
		cells[featurestore.StatKey{Offer: l.Offer, Channel: l.Channel, Key: l.Key}] = l.Counts()
	}
	return featurestore.NewLearnTable(cells)
}

// Difference is one way a decision decided again differs from the
// logged one.
type Difference struct {
	// What differs: offers (the set returned), order, score, draw,
	// propensity, segments, variants, learn_key, holdout.
	What string `json:"what"`
	// Offer is the offer it concerns, for score, draw and propensity.
	Offer    string `json:"offer,omitempty"`
	Logged   string `json:"logged"`
	Replayed string `json:"replayed"`
}

func (d Difference) String() string {
	what := d.What
	if d.Offer != "" {
		what += " of " + d.Offer
	}
	return fmt.Sprintf("%s: logged %s, replayed %s", what, d.Logged, d.Replayed)
}

// Compare returns how re differs from the logged decision e: nil when
// it is identical — the same offers in the same order, with the same
// scores, draws and propensities (to the bit), the same segments,
// experiment variants, learn key and holdout.
func Compare(e *decisionlog.Entry, re *Reenactment) []Difference {
	var diffs []Difference
	res := &re.Result
	logged := make([]string, len(e.Offers))
	for i, o := range e.Offers {
		logged[i] = o.ID
	}
	replayed := make([]string, len(res.Offers))
	for i, o := range res.Offers {
		replayed[i] = o.Offer.ID
	}
	switch {
	case slices.Equal(logged, replayed):
		for i, o := range e.Offers {
			c := &res.Offers[i]
			for _, f := range [...]struct {
				what   string
				logged float64
				got    float64
			}{{"score", o.Score, c.Score}, {"draw", o.Draw, c.Propensity}, {"propensity", o.Propensity, c.Selection}} {
				// The log writes NaN and infinities as null (0).
				if f.logged != f.got && !(f.logged == 0 && !finite(f.got)) &&
					// A static decision's score is value × weight: no
					// draw is made (Draw is 0), though an explained
					// re-run shows the posterior mean.
					!(f.what == "draw" && e.Explore == "static" && f.logged == 0) {
					diffs = append(diffs, Difference{What: f.what, Offer: o.ID, Logged: formatFloat(f.logged), Replayed: formatFloat(f.got)})
				}
			}
		}
	case sameSet(logged, replayed):
		diffs = append(diffs, Difference{What: "order", Logged: listOf(logged), Replayed: listOf(replayed)})
	default:
		diffs = append(diffs, Difference{What: "offers", Logged: listOf(logged), Replayed: listOf(replayed)})
	}
	if !slices.Equal(e.Segments, res.Segments) && len(e.Segments)+len(res.Segments) > 0 {
		diffs = append(diffs, Difference{What: "segments", Logged: listOf(e.Segments), Replayed: listOf(res.Segments)})
	}
	var lv, rv []string
	for _, v := range e.Variants {
		lv = append(lv, v.Experiment+"="+v.Variant)
	}
	for _, a := range res.Assignments {
		rv = append(rv, a.Experiment.ID+"="+a.Variant.Name)
	}
	if !slices.Equal(lv, rv) {
		diffs = append(diffs, Difference{What: "variants", Logged: listOf(lv), Replayed: listOf(rv)})
	}
	if e.LearnKey != res.LearnKey {
		diffs = append(diffs, Difference{What: "learn_key", Logged: strconv.Quote(e.LearnKey), Replayed: strconv.Quote(res.LearnKey)})
	}
	if e.Holdout != res.Holdout {
		diffs = append(diffs, Difference{What: "holdout", Logged: strconv.FormatBool(e.Holdout), Replayed: strconv.FormatBool(res.Holdout)})
	}
	return diffs
}

func finite(f float64) bool { return f-f == 0 }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func listOf(ss []string) string { return "[" + strings.Join(ss, ", ") + "]" }

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// CatalogVersions compiles catalogs for replay: the versions a node
// keeps, and catalogs proposed to compare with. *catalogs.Registry
// implements it.
type CatalogVersions interface {
	// CompiledVersion returns the version kept as id, compiled; an error
	// wrapping ErrUnknownCatalogVersion when it is not kept.
	CompiledVersion(id string) (*rules.Catalog, error)
	// Compile compiles a catalog source under the node's limits without
	// putting it in force; one with problems returns rules.Errors.
	Compile(src []byte) (*rules.Catalog, error)
}

// Replay is a logged decision decided again: on the catalog version
// that made it, and on a proposed catalog when one is given, each
// explained.
type Replay struct {
	Entry *decisionlog.Entry
	// Replayed is the decision decided again on the logged catalog
	// version; nil when that version is not kept (Missing says why).
	// Differences are how it differs from the logged answer: none when
	// it is identical.
	Replayed    *Reenactment
	Differences []Difference
	// Missing says why the logged version could not be replayed: ""
	// when it was.
	Missing string
	// Proposed is the decision a proposed catalog would have made, nil
	// when none was given; ProposedDifferences how it differs from the
	// logged answer.
	Proposed            *Reenactment
	ProposedDifferences []Difference
}

// Identical reports whether the replay on the logged catalog version
// gave the logged answer.
func (r *Replay) Identical() bool { return r.Replayed != nil && len(r.Differences) == 0 }

// ReplayEntry replays the logged decision e on logged, the catalog
// version that made it (nil when it is not kept: missing says why), and
// on proposed when not nil, explaining both: what `nextbest replay` and
// Service.Replay answer.
func ReplayEntry(e *decisionlog.Entry, logged *rules.Catalog, missing string, proposed *rules.Catalog) (*Replay, error) {
	r := &Replay{Entry: e, Missing: missing}
	var err error
	if logged != nil {
		if logged.Version != e.Catalog {
			return nil, fmt.Errorf("decision %s was made by catalog version %s, not %s", e.ID, e.Catalog, logged.Version)
		}
		if r.Replayed, err = Reenact(logged, e, ReenactOptions{Explain: true}); err != nil {
			return nil, err
		}
		r.Differences = Compare(e, r.Replayed)
	} else if r.Missing == "" {
		r.Missing = "catalog version " + e.Catalog + " is not kept"
	}
	if proposed != nil {
		if r.Proposed, err = Reenact(proposed, e, ReenactOptions{Explain: true}); err != nil {
			return nil, err
		}
		r.ProposedDifferences = Compare(e, r.Proposed)
	}
	return r, nil
}

// ErrNoCatalogVersions is wrapped by Replay's error for a decision of a
// catalog other than the one in force when the service keeps no
// versions (Options.CatalogVersions).
var ErrNoCatalogVersions = errors.New("no catalog versions are kept")

// Replay replays the logged decision id on the catalog version that
// made it and, when proposed is not empty, on that catalog source. Its
// errors: those of LoggedDecision (ErrNoDecisionLog, ErrBadDecisionID,
// decisionlog.ErrNotFound), rules.Errors for a proposed catalog with
// problems, ErrNotReplayable. A decision whose catalog version is no
// longer kept replays on the proposed catalog only, with Missing saying
// why; without one, it is an error wrapping ErrUnknownCatalogVersion.
func (s *Service) Replay(id string, proposed []byte) (*Replay, error) {
	e, err := s.LoggedDecision(id)
	if err != nil {
		return nil, err
	}
	var next *rules.Catalog
	if len(proposed) > 0 {
		if s.versions != nil {
			next, err = s.versions.Compile(proposed)
		} else if next, err = rules.Compile("catalog", proposed, rules.Options{}); err == nil {
			next.Version = CatalogVersionOf(proposed)
		}
		if err != nil {
			return nil, err
		}
	}
	logged, err := s.catalogVersion(e.Catalog)
	missing := ""
	if err != nil {
		if next == nil || !errors.Is(err, ErrUnknownCatalogVersion) {
			return nil, fmt.Errorf("decision %s: %w", id, err)
		}
		missing = err.Error()
	}
	return ReplayEntry(e, logged, missing, next)
}

// catalogVersion returns the catalog of version id: the one in force,
// or one the service's CatalogVersions keeps.
func (s *Service) catalogVersion(id string) (*rules.Catalog, error) {
	if cat := s.catalog.Load(); cat != nil && cat.Version == id {
		return cat, nil
	}
	if s.versions == nil {
		return nil, fmt.Errorf("%w %s: the node keeps only the catalog in force (%w)", ErrUnknownCatalogVersion, id, ErrNoCatalogVersions)
	}
	return s.versions.CompiledVersion(id)
}
