package nextbest

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// hourly is a StatsReader of fixed hourly cells.
type hourly struct {
	cells map[featurestore.StatKey]featurestore.Counts
	err   error
}

func (h hourly) HourlyStats(_ context.Context, from, to int64) (map[featurestore.StatKey]featurestore.Counts, error) {
	if h.err != nil {
		return nil, h.err
	}
	out := map[featurestore.StatKey]featurestore.Counts{}
	for k, c := range h.cells {
		if k.Hour >= from && k.Hour <= to {
			out[k] = c
		}
	}
	return out, nil
}

// TestReport: offers summed per offer × channel × variant over the period,
// each variant of the example's experiment with its uplift over the
// control (the first variant, "learned": none is named control).
func TestReport(t *testing.T) {
	hour := featurestore.Hour(testNow)
	reader := hourly{cells: map[featurestore.StatKey]featurestore.Counts{
		{Hour: hour, Offer: "winback-20", Channel: "web"}:                       {Impressions: 200, Clicks: 20, Conversions: 5, Decisions: 7},
		{Hour: hour - 1, Offer: "winback-20", Channel: "web"}:                   {Impressions: 100, Clicks: 10},
		{Hour: hour - 48, Offer: "winback-20", Channel: "web"}:                  {Impressions: 1000},
		{Hour: hour, Channel: "web", Experiment: "ranking", Variant: "learned"}: {Decisions: 1000, Conversions: 100},
		{Hour: hour, Channel: "web", Experiment: "ranking", Variant: "holdout"}: {Decisions: 1000, Conversions: 50},
	}}
	s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = reader })
	r, err := s.Report(context.Background(), testNow.Add(-24*time.Hour), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Offers) != 1 || r.Offers[0].Impressions != 300 || r.Offers[0].Clicks != 30 || r.Offers[0].Decisions != 0 || r.Offers[0].CTR == nil || math.Abs(*r.Offers[0].CTR-0.1) > 1e-12 {
		t.Errorf("offers over the last 24h: %+v, want one row with 300 impressions, 30 clicks, no decisions, ctr 0.1", r.Offers)
	}
	i := slices.IndexFunc(r.Experiments, func(x ExperimentReport) bool { return x.ID == "ranking" })
	if i < 0 || r.Experiments[i].Control != "learned" || len(r.Experiments[i].Variants) != 3 {
		t.Fatalf("experiments: %+v", r.Experiments)
	}
	vs := r.Experiments[i].Variants
	if vs[0].Uplift != nil {
		t.Error("the control has an uplift over itself")
	}
	if vs[1].Uplift != nil || vs[1].ConversionsPerDecision != nil {
		t.Errorf("a variant without decisions: %+v, want no rate and no uplift", vs[1])
	}
	// p1 = 0.05, p0 = 0.1: diff -0.05, se = sqrt(.05*.95/1000 + .1*.9/1000) = 0.011726
	if u := vs[2].Uplift; u == nil || math.Abs(u.Difference+0.05) > 1e-12 || math.Abs(u.CI95[0]-(-0.05-1.96*0.0117260)) > 1e-5 || u.Relative == nil || math.Abs(*u.Relative+0.5) > 1e-12 {
		t.Errorf("holdout uplift %+v, want -0.05 with ci95 ±0.02298, relative -0.5", vs[2].Uplift)
	}
	if !r.From.Equal(testNow.Add(-24*time.Hour)) || !r.To.Equal(testNow) {
		t.Errorf("period: %v to %v", r.From, r.To)
	}
}

func TestReportRefuses(t *testing.T) {
	down := errors.New("store down")
	tests := []struct {
		name     string
		reader   StatsReader
		from, to time.Time
		want     error // compared with errors.Is, or a *RequestError's message
	}{
		{"no statistics", nil, testNow, testNow, ErrNoStats},
		{"store down", hourly{err: down}, testNow, testNow, down},
		{"backwards", hourly{}, testNow, testNow.Add(-time.Hour), &RequestError{Field: "to", Reason: "must not be before from"}},
		{"too long", hourly{}, testNow.Add(-401 * 24 * time.Hour), testNow, &RequestError{Field: "from, to", Reason: "a period of at most 400 days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = tt.reader })
			_, err := s.Report(context.Background(), tt.from, tt.to)
			var re *RequestError
			switch want := tt.want.(type) {
			case *RequestError:
				if !errors.As(err, &re) || *re != *want {
					t.Errorf("got %v, want %v", err, want)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("got %v, want %v", err, want)
				}
			}
		})
	}
}
