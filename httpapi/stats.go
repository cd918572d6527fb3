package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
)

// statsResponse is the body of GET /v1/stats.
type statsResponse struct {
	From          time.Time         `json:"from"`
	To            time.Time         `json:"to"`
	Channel       string            `json:"channel,omitempty"` // the filter asked for
	Segment       string            `json:"segment,omitempty"` // the filter asked for
	RetentionDays int               `json:"retention_days"`
	Channels      []channelStats    `json:"channels"`
	Offers        []offerStats      `json:"offers"`
	Experiments   []experimentStats `json:"experiments"`
	Unit          string            `json:"unit"` // of the uplift: "customer"
	// ReachError is the relative standard error of every reach figure;
	// absent when the store keeps no reach.
	ReachError *float64 `json:"reach_relative_error,omitempty"`
	Method     string   `json:"uplift_method"`
	// SegmentNote says, with a segment filter, what it filters and that
	// the figures by customer are not split by segment.
	SegmentNote string `json:"segment_note,omitempty"`
	// ReachNote says that the reach figures undercount: a stored sketch of
	// the period was corrupt and is left out.
	ReachNote string `json:"reach_note,omitempty"`
}

type channelStats struct {
	Channel string `json:"channel"`
	Reach   *int64 `json:"reach,omitempty"` // distinct customers decided for, estimated
	// Decisions shadows rates' (omitted on offer rows, which count
	// none): a channel row always says how many it made, 0 included.
	Decisions int64 `json:"decisions"`
	rates
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
	ID       string                `json:"id"`
	Control  string                `json:"control"`
	Variants []variantStats        `json:"variants"`
	Channels []variantChannelStats `json:"channels"`
	// CustomersInSegment, with a segment filter: whether the variants'
	// customers and uplift are the segment's (an experiment scoped to
	// it) or every customer of the experiment's.
	CustomersInSegment *bool `json:"customers_in_segment,omitempty"`
}

type variantStats struct {
	Name                   string        `json:"name"`
	Decisions              int64         `json:"decisions"`
	Impressions            int64         `json:"impressions"`
	Clicks                 int64         `json:"clicks"`
	Conversions            int64         `json:"conversions"`
	Value                  float64       `json:"value"`
	ConversionsPerDecision *float64      `json:"conversions_per_decision"`
	ValuePerDecision       *float64      `json:"value_per_decision"`
	Customers              customerStats `json:"customers"`
	Uplift                 *uplift       `json:"uplift,omitempty"` // absent for the control
}

type customerStats struct {
	Exposed                int64    `json:"exposed"`
	Converters             int64    `json:"converters"`
	Conversions            int64    `json:"conversions"`
	Value                  float64  `json:"value"`
	ConversionRate         *float64 `json:"conversion_rate"`
	ConversionsPerCustomer *float64 `json:"conversions_per_customer"`
	ValuePerCustomer       *float64 `json:"value_per_customer"`
	Retention              *float64 `json:"retention"`
}

type uplift struct {
	ConversionRate         *interval `json:"conversion_rate"`
	ConversionsPerCustomer *interval `json:"conversions_per_customer"`
	ValuePerCustomer       *interval `json:"value_per_customer"`
}

type interval struct {
	Difference float64    `json:"difference"` // variant minus control
	CI95       [2]float64 `json:"ci95"`
	Relative   *float64   `json:"relative"` // difference / control's figure
}

func intervalOf(i *nextbest.Interval) *interval {
	if i == nil {
		return nil
	}
	return &interval{Difference: i.Difference, CI95: i.CI95, Relative: i.Relative}
}

type variantChannelStats struct {
	Variant                string   `json:"variant"`
	Channel                string   `json:"channel"`
	Reach                  *int64   `json:"reach,omitempty"` // the variant's distinct customers decided for on the channel, estimated
	Decisions              int64    `json:"decisions"`
	Impressions            int64    `json:"impressions"`
	Clicks                 int64    `json:"clicks"`
	Conversions            int64    `json:"conversions"`
	Value                  float64  `json:"value"`
	CTR                    *float64 `json:"ctr"`
	ConversionsPerDecision *float64 `json:"conversions_per_decision"`
}

// ratesOf is the figures of a row.
func ratesOf(c featurestore.Counts, ctr, conversionRate *float64) rates {
	return rates{Decisions: c.Decisions, Impressions: c.Impressions, Clicks: c.Clicks, Conversions: c.Conversions, Dismisses: c.Dismisses, Value: c.Value,
		CTR: ctr, ConversionRate: conversionRate}
}

// stats answers GET /v1/stats?from=...&to=... (RFC 3339 times; default
// the last 24 hours), with channel= (one channel of the catalog),
// segment= (one segment of the catalog) and retention_days= (the retention KPI's N, default
// nextbest.DefaultRetentionDays).
func (s *Server) statsHandler(ctx *fasthttp.RequestCtx) {
	now := s.svc.Now()
	q := nextbest.ReportQuery{To: now, From: now.Add(-24 * time.Hour)}
	args := ctx.QueryArgs()
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := args.Peek(p.name); v != nil {
			t, err := time.Parse(time.RFC3339, string(v))
			if err != nil {
				writeError(ctx, invalid("%s: %q is not an RFC 3339 time like 2026-11-23T00:00:00Z", p.name, v))
				return
			}
			*p.dst = t
		}
	}
	q.Channel = string(args.Peek("channel"))
	q.Segment = string(args.Peek("segment"))
	if v := args.Peek("retention_days"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 {
			writeError(ctx, invalid("retention_days: %q is not a whole number of days of at least 1", v))
			return
		}
		q.RetentionDays = n
	}
	rep, err := s.svc.Report(context.Background(), q)
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
	resp := &statsResponse{From: rep.From, To: rep.To, Channel: rep.Channel, Segment: rep.Segment, RetentionDays: rep.RetentionDays,
		Channels: make([]channelStats, len(rep.Channels)), Offers: make([]offerStats, len(rep.Offers)),
		Experiments: make([]experimentStats, len(rep.Experiments)), Unit: "customer", Method: nextbest.UpliftMethod}
	for i := range rep.Channels {
		c := &rep.Channels[i]
		resp.Channels[i] = channelStats{Channel: c.Channel, Reach: c.Reach, Decisions: c.Decisions}
		if c.Reach != nil {
			e := featurestore.ReachRelativeError
			resp.ReachError = &e
		}
		resp.Channels[i].rates = ratesOf(c.Counts, c.CTR, c.ConversionRate)
	}
	for i := range rep.Offers {
		o := &rep.Offers[i]
		resp.Offers[i] = offerStats{OfferID: o.OfferID, Channel: o.Channel, Experiment: o.Experiment, Variant: o.Variant}
		resp.Offers[i].rates = ratesOf(o.Counts, o.CTR, o.ConversionRate)
	}
	for i, x := range rep.Experiments {
		es := experimentStats{ID: x.ID, Control: x.Control, Channels: make([]variantChannelStats, len(x.Channels)), CustomersInSegment: x.CustomersInSegment}
		for _, v := range x.Variants {
			c, cu := v.Counts, v.Customers
			vs := variantStats{Name: v.Name, Decisions: c.Decisions, Impressions: c.Impressions, Clicks: c.Clicks, Conversions: c.Conversions, Value: c.Value,
				ConversionsPerDecision: v.ConversionsPerDecision, ValuePerDecision: v.ValuePerDecision,
				Customers: customerStats{Exposed: cu.Exposed, Converters: cu.Converters, Conversions: cu.Conversions, Value: cu.Value,
					ConversionRate: cu.ConversionRate, ConversionsPerCustomer: cu.ConversionsPerCustomer, ValuePerCustomer: cu.ValuePerCustomer,
					Retention: cu.Retention}}
			if u := v.Uplift; u != nil {
				vs.Uplift = &uplift{ConversionRate: intervalOf(u.ConversionRate),
					ConversionsPerCustomer: intervalOf(u.ConversionsPerCustomer), ValuePerCustomer: intervalOf(u.ValuePerCustomer)}
			}
			es.Variants = append(es.Variants, vs)
		}
		for j, vc := range x.Channels {
			c := vc.Counts
			es.Channels[j] = variantChannelStats{Variant: vc.Variant, Channel: vc.Channel, Reach: vc.Reach, Decisions: c.Decisions, Impressions: c.Impressions,
				Clicks: c.Clicks, Conversions: c.Conversions, Value: c.Value, CTR: vc.CTR, ConversionsPerDecision: vc.ConversionsPerDecision}
		}
		resp.Experiments[i] = es
	}
	if rep.Segment != "" {
		resp.SegmentNote = nextbest.SegmentCustomersNote
	}
	resp.ReachNote = rep.ReachNote
	return resp
}
