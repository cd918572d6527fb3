package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/internal/jsonenc"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// replayRoute serves POST /v1/admin/replay (issue 14): the logged
// decision {"decision_id"} decided again on the catalog version that
// made it, and on {"catalog"} (YAML source) when given, each explained
// (docs/api.md).
func (s *Server) replayRoute(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	var req struct {
		DecisionID string `json:"decision_id"`
		Catalog    string `json:"catalog"`
	}
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(ctx, invalid("replay: want {\"decision_id\": \"...\", \"catalog\": \"<YAML, optional>\"}: %v", err))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(ctx, invalid("replay: one JSON object, nothing after it"))
		return
	}
	if req.DecisionID == "" {
		writeError(ctx, invalid("decision_id: required"))
		return
	}
	if req.Catalog != "" && strings.TrimSpace(req.Catalog) == "" {
		writeError(ctx, invalid("catalog: empty; send the YAML of a catalog, or leave it out"))
		return
	}
	r, err := s.svc.Replay(req.DecisionID, []byte(req.Catalog))
	var errs rules.Errors
	switch {
	case err == nil:
	case errors.Is(err, nextbest.ErrNoDecisionLog):
		writeError(ctx, &apiError{code: CodeNotFound, msg: "this server keeps no decision log (--decision-log-sample 0): nothing to replay"})
		return
	case errors.Is(err, nextbest.ErrBadDecisionID):
		writeError(ctx, invalid("decision_id: %q is not a decision id", req.DecisionID))
		return
	case errors.Is(err, decisionlog.ErrNotFound):
		writeError(ctx, &apiError{code: CodeNotFound, msg: "decision " + req.DecisionID + " is not in the log (not sampled, dropped, past retention, or not written yet: the log is written within a second)"})
		return
	case errors.Is(err, nextbest.ErrUnknownCatalogVersion):
		writeError(ctx, &apiError{code: CodeNotFound, msg: err.Error() + "; send a \"catalog\" to see what it would answer"})
		return
	case errors.As(err, &errs):
		writeCatalogErrors(ctx, errs)
		return
	case errors.Is(err, nextbest.ErrNotReplayable):
		writeError(ctx, &apiError{code: CodeConflict, msg: fmt.Sprintf("decision %s: %v", req.DecisionID, err)})
		return
	default:
		s.log.Error("replay", "decision_id", req.DecisionID, "err", err)
		writeError(ctx, errInternal)
		return
	}
	b, err := AppendReplay(make([]byte, 0, 4096), r)
	if err != nil {
		s.log.Error("replay", "decision_id", req.DecisionID, "err", err)
		writeError(ctx, errInternal)
		return
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}

// AppendReplay appends r as the JSON POST /v1/admin/replay answers and
// `nextbest replay --json` prints.
func AppendReplay(dst []byte, r *nextbest.Replay) ([]byte, error) {
	e := r.Entry
	body := replayJSON{
		DecisionID:  e.ID,
		Time:        e.Time,
		CustomerID:  e.CustomerID,
		DecidedFor:  e.DecidedFor,
		Channel:     e.Channel,
		Placement:   e.Placement,
		Limit:       e.Limit,
		Catalog:     e.Catalog,
		Identical:   r.Identical(),
		Differences: nonNil(r.Differences),
		Missing:     r.Missing,
		Logged:      make([]offerJSON, len(e.Offers)),
	}
	for i, o := range e.Offers {
		body.Logged[i] = offerJSON{ID: o.ID, Score: jsonFloat(o.Score), Draw: jsonFloat(o.Draw), Propensity: jsonFloat(o.Propensity)}
	}
	if r.Replayed != nil {
		body.Replayed = runOf(r.Replayed)
	}
	if r.Proposed != nil {
		body.Proposed = runOf(r.Proposed)
		same := len(r.ProposedDifferences) == 0
		body.Proposed.Identical, body.Proposed.Differences = &same, nonNil(r.ProposedDifferences)
	}
	b, err := json.Marshal(body)
	return append(dst, b...), err
}

type replayJSON struct {
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	CustomerID string    `json:"customer_id,omitempty"`
	DecidedFor string    `json:"decided_for,omitempty"`
	Channel    string    `json:"channel"`
	Placement  string    `json:"placement,omitempty"`
	Limit      int       `json:"limit"`
	Catalog    string    `json:"catalog"` // the version that made the decision
	// Identical: the logged version decided again gave the logged
	// answer; Differences otherwise.
	Identical   bool                  `json:"identical"`
	Differences []nextbest.Difference `json:"differences"`
	Missing     string                `json:"missing,omitempty"` // why the logged version was not replayed
	Logged      []offerJSON           `json:"logged"`
	Replayed    *runJSON              `json:"replayed,omitempty"`
	Proposed    *runJSON              `json:"proposed,omitempty"`
}

type offerJSON struct {
	ID         string    `json:"id"`
	Score      jsonFloat `json:"score"`
	Draw       jsonFloat `json:"draw"`
	Propensity jsonFloat `json:"propensity"`
}

// runJSON is one catalog's decision, explained. Its offers' draw is
// the propensity the score used, propensity the selection probability.
type runJSON struct {
	Catalog   string                      `json:"catalog"`
	Offers    []offerJSON                 `json:"offers"`
	Segments  []string                    `json:"segments"`
	LearnKey  string                      `json:"learn_key,omitempty"`
	Holdout   bool                        `json:"holdout,omitempty"`
	Suppress  string                      `json:"suppressed,omitempty"`
	Explain   []json.RawMessage           `json:"explain"`
	Defaulted []nextbest.DefaultedFeature `json:"defaulted_features,omitempty"`
	Unlearned []string                    `json:"unlearned_offers,omitempty"`
	// Contacts the log left out that the catalog's look-back reaches.
	OmittedContacts int `json:"omitted_contacts,omitempty"`
	// A proposed catalog's: whether it answers as the logged decision.
	Identical   *bool                 `json:"identical,omitempty"`
	Differences []nextbest.Difference `json:"differences,omitempty"`
}

func runOf(re *nextbest.Reenactment) *runJSON {
	res := &re.Result
	run := &runJSON{Catalog: re.Catalog, Offers: make([]offerJSON, len(res.Offers)), Segments: nonNil(res.Segments),
		LearnKey: res.LearnKey, Holdout: res.Holdout, Defaulted: re.Defaulted, Unlearned: re.Unlearned,
		OmittedContacts: re.OmittedContacts,
		Explain:         make([]json.RawMessage, len(res.Explain))}
	if res.Suppressed.Reason != decision.Chosen {
		run.Suppress = string(res.Suppressed.Reason)
		if res.Suppressed.Rule != "" {
			run.Suppress += ": " + res.Suppressed.Rule
		}
	}
	for i, o := range res.Offers {
		run.Offers[i] = offerJSON{ID: o.Offer.ID, Score: jsonFloat(o.Score), Draw: jsonFloat(o.Propensity), Propensity: jsonFloat(o.Selection)}
	}
	for i := range res.Explain {
		run.Explain[i] = appendExplanation(nil, &res.Explain[i])
	}
	return run
}

// jsonFloat is a float64 that encodes as the API writes numbers: null for
// NaN and the infinities, which JSON has not.
type jsonFloat float64

func (n jsonFloat) MarshalJSON() ([]byte, error) { return jsonenc.AppendFloat(nil, float64(n)), nil }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
