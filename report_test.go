package nextbest

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
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
// channels with their decisions and offers' outcomes, and each variant of
// the example's experiment by decision (descriptive) and by customer,
// with its uplift over the control (the first variant, "learned": none is
// named control) from the cohort cells: customers first exposed in the
// period, whatever their decisions.
func TestReport(t *testing.T) {
	hour := featurestore.Hour(testNow)
	at := testNow.UnixNano()
	learned, holdout := featurestore.CohortKey("ranking", "learned", at), featurestore.CohortKey("ranking", "holdout", at)
	day := func(k featurestore.StatKey, d string) featurestore.StatKey {
		k.Key = featurestore.RetentionKeyPrefix + d
		return k
	}
	reader := hourly{cells: map[featurestore.StatKey]featurestore.Counts{
		{Hour: hour, Offer: "winback-20", Channel: "web"}:                       {Impressions: 200, Clicks: 20, Conversions: 5},
		{Hour: hour - 1, Offer: "winback-20", Channel: "web"}:                   {Impressions: 100, Clicks: 10},
		{Hour: hour - 48, Offer: "winback-20", Channel: "web"}:                  {Impressions: 1000},
		{Hour: hour, Channel: "web"}:                                            {Decisions: 2000},
		{Hour: hour, Channel: "web", Experiment: "ranking", Variant: "learned"}: {Decisions: 1000, Conversions: 100},
		{Hour: hour, Channel: "web", Experiment: "ranking", Variant: "holdout"}: {Decisions: 1000, Conversions: 50},
		// 200 customers each; learned: 40 converters, 100 conversions
		// (Σx² 400), value 1000 (Σv² 60000); holdout: 20, 50 (Σx² 150),
		// value 400 (Σv² 20000).
		learned:            {Customers: 200, Converters: 40, Conversions: 100, ConversionsSq: 400, Value: 1000, ValueSq: 60000},
		holdout:            {Customers: 200, Converters: 20, Conversions: 50, ConversionsSq: 150, Value: 400, ValueSq: 20000},
		day(learned, "0"):  {Converters: 30},
		day(learned, "40"): {Converters: 10},
		day(holdout, "2"):  {Converters: 20},
	}}
	s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = reader })
	r, err := s.Report(context.Background(), ReportQuery{From: testNow.Add(-24 * time.Hour), To: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Offers) != 1 || r.Offers[0].Impressions != 300 || r.Offers[0].Clicks != 30 || r.Offers[0].Decisions != 0 || r.Offers[0].CTR == nil || math.Abs(*r.Offers[0].CTR-0.1) > 1e-12 {
		t.Errorf("offers over the last 24h: %+v, want one row with 300 impressions, 30 clicks, no decisions, ctr 0.1", r.Offers)
	}
	if i := slices.IndexFunc(r.Channels, func(c ChannelReport) bool { return c.Channel == "web" }); i < 0 || r.Channels[i].Decisions != 2000 || r.Channels[i].Impressions != 300 {
		t.Errorf("channels: %+v, want web with 2000 decisions and 300 impressions", r.Channels)
	}
	i := slices.IndexFunc(r.Experiments, func(x ExperimentReport) bool { return x.ID == "ranking" })
	if i < 0 || r.Experiments[i].Control != "learned" || len(r.Experiments[i].Variants) != 3 {
		t.Fatalf("experiments: %+v", r.Experiments)
	}
	vs := r.Experiments[i].Variants
	if vs[0].Uplift != nil {
		t.Error("the control has an uplift over itself")
	}
	if c := vs[0].Customers; c.Exposed != 200 || c.Retention == nil || *c.Retention != 30.0/200 || *c.ConversionsPerCustomer != 0.5 {
		t.Errorf("control's customers %+v, want 200 exposed, 0.5 conversions each, retention (30 days) 0.15", c)
	}
	if vs[1].Uplift.ConversionRate != nil || vs[1].ConversionsPerDecision != nil || vs[1].Customers.ConversionRate != nil {
		t.Errorf("a variant without decisions or customers: %+v, want no rate and no uplift", vs[1])
	}
	u := vs[2].Uplift
	// Conversion rate: 0.1 − 0.2 = −0.1 (Newcombe). Conversions per
	// customer: 0.25 − 0.5; s₁² = (150 − 50²/200)/199 = 0.69095,
	// s₀² = (400 − 100²/200)/199 = 1.75879, se = sqrt((s₁²+s₀²)/200) =
	// 0.110674, df = 334.5, t = 1.96714: ±0.21771.
	if u.ConversionRate == nil || math.Abs(u.ConversionRate.Difference+0.1) > 1e-12 || u.ConversionRate.CI95[1] >= 0 {
		t.Errorf("holdout conversion-rate uplift %+v, want -0.1 with an interval below 0", u.ConversionRate)
	}
	if c := u.ConversionsPerCustomer; c == nil || math.Abs(c.Difference+0.25) > 1e-12 || math.Abs(c.CI95[0]-(-0.25-0.21771)) > 1e-4 || c.Relative == nil || math.Abs(*c.Relative+0.5) > 1e-12 {
		t.Errorf("holdout conversions-per-customer uplift %+v, want -0.25 ± 0.2177, relative -0.5", c)
	}
	if v := u.ValuePerCustomer; v == nil || math.Abs(v.Difference+3) > 1e-12 {
		t.Errorf("holdout value-per-customer uplift %+v, want -3", v)
	}
	if !r.From.Equal(testNow.Add(-24*time.Hour)) || !r.To.Equal(testNow) {
		t.Errorf("period: %v to %v", r.From, r.To)
	}
	// The retention KPI's N, and a channel filter: per-decision rows of
	// that channel only; customers are the experiment's.
	r, err = s.Report(context.Background(), ReportQuery{From: testNow.Add(-24 * time.Hour), To: testNow, Channel: "app", RetentionDays: 41})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Offers) != 0 || len(r.Channels) != 1 || r.Channels[0].Channel != "app" || r.Channels[0].Decisions != 0 {
		t.Errorf("channel=app: offers %+v channels %+v, want none and one empty app row", r.Offers, r.Channels)
	}
	if c := r.Experiments[i].Variants[0].Customers; c.Exposed != 200 || *c.Retention != 40.0/200 {
		t.Errorf("control's customers over 41 days %+v, want retention 0.2", c)
	}
}

func TestReportRefuses(t *testing.T) {
	down := errors.New("store down")
	tests := []struct {
		name      string
		reader    StatsReader
		from, to  time.Time
		channel   string
		retention int
		want      error // compared with errors.Is, or a *RequestError's message
	}{
		{"no statistics", nil, testNow, testNow, "", 0, ErrNoStats},
		{"store down", hourly{err: down}, testNow, testNow, "", 0, down},
		{"backwards", hourly{}, testNow, testNow.Add(-time.Hour), "", 0, &RequestError{Field: "to", Reason: "must not be before from"}},
		{"too long", hourly{}, testNow.Add(-401 * 24 * time.Hour), testNow, "", 0, &RequestError{Field: "from, to", Reason: "a period of at most 400 days"}},
		{"unknown channel", hourly{}, testNow, testNow, "fax", 0, &RequestError{Field: "channel", Reason: `"fax" is not a channel of the catalog, one of web, app, call_center, email, sms`}},
		{"retention too long", hourly{}, testNow, testNow, "", 367, &RequestError{Field: "retention_days", Reason: "a number of days from 1 to 366"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = tt.reader })
			_, err := s.Report(context.Background(), ReportQuery{From: tt.from, To: tt.to, Channel: tt.channel, RetentionDays: tt.retention})
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

// TestUpliftMethodDocumented: docs/catalog.md quotes UpliftMethod
// verbatim, so the docs cannot drift from what the API says.
func TestUpliftMethodDocumented(t *testing.T) {
	b, err := os.ReadFile("docs/catalog.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), UpliftMethod) {
		t.Error("docs/catalog.md does not quote UpliftMethod verbatim (section Measuring experiments)")
	}
}
