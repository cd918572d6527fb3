package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
)

// statsResponse is the body of GET /v1/stats.
type statsResponse struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	Offers      []offerStats      `json:"offers"`
	Experiments []experimentStats `json:"experiments"`
	Method      string            `json:"uplift_method"`
}

type offerStats struct {
	OfferID    string `json:"offer_id"`
	Channel    string `json:"channel"`
	Experiment string `json:"experiment,omitempty"`
	Variant    string `json:"variant,omitempty"`
	rates
}

type rates struct {
	Decisions      int64    `json:"decisions,omitempty"`
	Impressions    int64    `json:"impressions"`
	Clicks         int64    `json:"clicks"`
	Conversions    int64    `json:"conversions"`
	Dismisses      int64    `json:"dismisses"`
	Value          float64  `json:"value"`
	CTR            *float64 `json:"ctr"`             // clicks per impression; null without impressions
	ConversionRate *float64 `json:"conversion_rate"` // conversions per impression
}

type experimentStats struct {
	ID       string         `json:"id"`
	Control  string         `json:"control"`
	Variants []variantStats `json:"variants"`
}

type variantStats struct {
	Name                   string   `json:"name"`
	Decisions              int64    `json:"decisions"`
	Impressions            int64    `json:"impressions"`
	Clicks                 int64    `json:"clicks"`
	Conversions            int64    `json:"conversions"`
	Value                  float64  `json:"value"`
	ConversionsPerDecision *float64 `json:"conversions_per_decision"`
	ValuePerDecision       *float64 `json:"value_per_decision"`
	Uplift                 *uplift  `json:"uplift,omitempty"`
}

type uplift struct {
	Difference float64    `json:"difference"` // conversions per decision, variant minus control
	CI95       [2]float64 `json:"ci95"`
	Relative   *float64   `json:"relative"` // difference / control's rate
}

// fill copies the service's figures of an offer.
func (r *rates) fill(o *nextbest.OfferReport) {
	c := o.Counts
	*r = rates{Decisions: c.Decisions, Impressions: c.Impressions, Clicks: c.Clicks, Conversions: c.Conversions, Dismisses: c.Dismisses, Value: c.Value,
		CTR: o.CTR, ConversionRate: o.ConversionRate}
}

// stats answers GET /v1/stats?from=...&to=... (RFC 3339 times; default
// the last 24 hours).
func (s *Server) statsHandler(ctx *fasthttp.RequestCtx) {
	now := s.svc.Now()
	to, from := now, now.Add(-24*time.Hour)
	args := ctx.QueryArgs()
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := args.Peek(p.name); v != nil {
			t, err := time.Parse(time.RFC3339, string(v))
			if err != nil {
				writeError(ctx, invalid("%s: %q is not an RFC 3339 time like 2026-11-23T00:00:00Z", p.name, v))
				return
			}
			*p.dst = t
		}
	}
	rep, err := s.svc.Report(context.Background(), from, to)
	var refused *nextbest.RequestError
	switch {
	case errors.Is(err, nextbest.ErrNoStats):
		writeError(ctx, &apiError{code: CodeNotFound, msg: "statistics are not enabled on this server"})
		return
	case errors.As(err, &refused):
		writeError(ctx, refused)
		return
	case err != nil:
		s.storeErrs.error("stats", err)
		writeError(ctx, &apiError{code: CodeStoreUnavailable, msg: "feature store unavailable: statistics could not be read; retry"})
		return
	}
	b, err := json.Marshal(statsOf(rep))
	if err != nil {
		s.log.Error("stats encode", "err", err)
		writeError(ctx, errInternal)
		return
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}

// statsOf is the body of the service's report.
func statsOf(rep *nextbest.Report) *statsResponse {
	resp := &statsResponse{From: rep.From, To: rep.To, Offers: make([]offerStats, len(rep.Offers)), Experiments: make([]experimentStats, len(rep.Experiments)), Method: nextbest.UpliftMethod}
	for i := range rep.Offers {
		o := &rep.Offers[i]
		resp.Offers[i] = offerStats{OfferID: o.OfferID, Channel: o.Channel, Experiment: o.Experiment, Variant: o.Variant}
		resp.Offers[i].fill(o)
	}
	for i, x := range rep.Experiments {
		es := experimentStats{ID: x.ID, Control: x.Control}
		for _, v := range x.Variants {
			c := v.Counts
			vs := variantStats{Name: v.Name, Decisions: c.Decisions, Impressions: c.Impressions, Clicks: c.Clicks, Conversions: c.Conversions, Value: c.Value,
				ConversionsPerDecision: v.ConversionsPerDecision, ValuePerDecision: v.ValuePerDecision}
			if u := v.Uplift; u != nil {
				vs.Uplift = &uplift{Difference: u.Difference, CI95: u.CI95, Relative: u.Relative}
			}
			es.Variants = append(es.Variants, vs)
		}
		resp.Experiments[i] = es
	}
	return resp
}
