package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// StatsRecorder aggregates outcome statistics in memory and shares them
// through the store; the service owns it (nextbest.StatsRecorder).
type StatsRecorder = nextbest.StatsRecorder

// maxStatsRange bounds the period of one GET /v1/stats.
const maxStatsRange = 400 * 24 * time.Hour

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

const upliftMethod = "difference in conversions per decision between a variant and the control " +
	"(the variant named control, else the first), with a 95% confidence interval from the normal " +
	"approximation (Wald): diff ± 1.96·sqrt(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀), decisions taken as independent trials"

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := a / b
	return &r
}

func (r *rates) fill(c featurestore.Counts) {
	*r = rates{Decisions: c.Decisions, Impressions: c.Impressions, Clicks: c.Clicks, Conversions: c.Conversions, Dismisses: c.Dismisses, Value: c.Value}
	r.CTR = ratio(float64(c.Clicks), float64(c.Impressions))
	r.ConversionRate = ratio(float64(c.Conversions), float64(c.Impressions))
}

// stats answers GET /v1/stats?from=...&to=... (RFC 3339 times; default
// the last 24 hours).
func (s *Server) statsHandler(ctx *fasthttp.RequestCtx) {
	if s.statsStore == nil {
		writeError(ctx, &apiError{code: CodeNotFound, msg: "statistics are not enabled on this server"})
		return
	}
	now := s.now()
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
	switch {
	case to.Before(from):
		writeError(ctx, invalid("to: must not be before from"))
		return
	case to.Sub(from) > maxStatsRange:
		writeError(ctx, invalid("from, to: a period of at most %d days", int(maxStatsRange/(24*time.Hour))))
		return
	}
	c, cancel := context.WithTimeout(context.Background(), s.mutateTimeout)
	cells, err := s.statsStore.HourlyStats(c, featurestore.Hour(from), featurestore.Hour(to))
	cancel()
	if err != nil {
		s.storeErrs.error("stats", err)
		writeError(ctx, &apiError{code: CodeStoreUnavailable, msg: "feature store unavailable: statistics could not be read; retry"})
		return
	}
	resp := buildStats(s.catalog.Load(), cells)
	resp.From, resp.To = from.UTC(), to.UTC()
	b, err := json.Marshal(resp)
	if err != nil {
		s.log.Error("stats encode", "err", err)
		writeError(ctx, errInternal)
		return
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}

// buildStats sums hourly cells over the period: per offer × channel ×
// variant, and per experiment variant with its uplift over the control.
func buildStats(cat *rules.Catalog, cells map[featurestore.StatKey]featurestore.Counts) *statsResponse {
	type offerKey struct{ offer, channel, experiment, variant string }
	offers := map[offerKey]featurestore.Counts{}
	type variantKey struct{ experiment, variant string }
	variants := map[variantKey]featurestore.Counts{}
	for k, c := range cells {
		if k.Offer != "" {
			ok := offerKey{k.Offer, k.Channel, k.Experiment, k.Variant}
			sum := offers[ok]
			sum.Add(c)
			offers[ok] = sum
		}
		if k.Experiment != "" {
			vk := variantKey{k.Experiment, k.Variant}
			sum := variants[vk]
			sum.Add(c)
			variants[vk] = sum
		}
	}
	resp := &statsResponse{Offers: []offerStats{}, Experiments: []experimentStats{}, Method: upliftMethod}
	for k, c := range offers {
		os := offerStats{OfferID: k.offer, Channel: k.channel, Experiment: k.experiment, Variant: k.variant}
		os.fill(c)
		os.Decisions = 0 // decisions are counted per channel and variant, not per offer
		resp.Offers = append(resp.Offers, os)
	}
	slices.SortFunc(resp.Offers, func(a, b offerStats) int {
		return strings.Compare(a.OfferID+"\x00"+a.Channel+"\x00"+a.Experiment+"\x00"+a.Variant, b.OfferID+"\x00"+b.Channel+"\x00"+b.Experiment+"\x00"+b.Variant)
	})
	for _, x := range cat.Experiments {
		es := experimentStats{ID: x.ID, Control: x.Variants[0].Name}
		for _, v := range x.Variants {
			if v.Name == "control" {
				es.Control = v.Name
			}
		}
		control := variants[variantKey{x.ID, es.Control}]
		for _, v := range x.Variants {
			c := variants[variantKey{x.ID, v.Name}]
			vs := variantStats{Name: v.Name, Decisions: c.Decisions, Impressions: c.Impressions, Clicks: c.Clicks, Conversions: c.Conversions, Value: c.Value,
				ConversionsPerDecision: ratio(float64(c.Conversions), float64(c.Decisions)),
				ValuePerDecision:       ratio(c.Value, float64(c.Decisions))}
			if v.Name != es.Control {
				vs.Uplift = upliftOf(c, control)
			}
			es.Variants = append(es.Variants, vs)
		}
		resp.Experiments = append(resp.Experiments, es)
	}
	return resp
}

// upliftOf compares a variant's conversions per decision with the
// control's; nil while either has no decisions.
func upliftOf(v, control featurestore.Counts) *uplift {
	if v.Decisions == 0 || control.Decisions == 0 {
		return nil
	}
	p1 := float64(v.Conversions) / float64(v.Decisions)
	p0 := float64(control.Conversions) / float64(control.Decisions)
	// Conversions per decision may exceed 1; the variance term is then
	// taken at 0 rather than negative.
	v1 := max(p1*(1-p1), 0) / float64(v.Decisions)
	v0 := max(p0*(1-p0), 0) / float64(control.Decisions)
	d := p1 - p0
	half := 1.96 * math.Sqrt(v1+v0)
	u := &uplift{Difference: d, CI95: [2]float64{d - half, d + half}, Relative: ratio(d, p0)}
	return u
}
