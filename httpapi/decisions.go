package httpapi

import (
	"errors"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/internal/keys"
)

const decisionsPrefix = "/v1/decisions/"

// decisionGet serves GET /v1/decisions/{id}: the decision log's entry of
// a decision, as the log holds it (docs/api.md).
func (s *Server) decisionGet(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	raw := ctx.URI().PathOriginal()[len(decisionsPrefix):]
	id, err := url.PathUnescape(string(raw))
	if err != nil || id == "" {
		writeError(ctx, invalid("decision id %q: not a decision id", raw))
		return
	}
	e, err := s.svc.LoggedDecision(id)
	switch {
	case errors.Is(err, nextbest.ErrNoDecisionLog):
		writeError(ctx, &apiError{code: CodeNotFound, msg: "this server keeps no decision log (--decision-log-sample 0)"})
		return
	case errors.Is(err, nextbest.ErrBadDecisionID):
		writeError(ctx, invalid("decision id %q: not a decision id", id))
		return
	case errors.Is(err, decisionlog.ErrNotFound):
		writeError(ctx, &apiError{code: CodeNotFound, msg: "decision " + id + " is not in the log (not sampled, dropped, past retention, or not written yet: the log is written within a second)"})
		return
	case err != nil:
		s.log.Error("decision log lookup", "err", err)
		writeError(ctx, errInternal)
		return
	}
	b, err := e.AppendJSON(make([]byte, 0, 1024))
	if err != nil {
		s.log.Error("decision log entry", "err", err)
		writeError(ctx, errInternal)
		return
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}
