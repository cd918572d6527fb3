package nextbest

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
		{"unknown segment", hourly{}, testNow, testNow, "segment:gone", 0, &RequestError{Field: "segment", Reason: `"gone" is not a segment of the catalog, one of vip, new_customer, lapsed, cart_abandoner, at_risk, high_intent, app_user, vip_at_risk`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = tt.reader })
			q := ReportQuery{From: tt.from, To: tt.to, Channel: tt.channel, RetentionDays: tt.retention}
			if seg, ok := strings.CutPrefix(tt.channel, "segment:"); ok {
				q.Channel, q.Segment = "", seg
			}
			_, err := s.Report(context.Background(), q)
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

// TestReportBySegment: a segment filter keeps the cells of that segment
// (decisions and outcomes, per channel, offer and variant), alone or with
// a channel filter; without one, segment cells are not counted again;
// the figures by customer are the experiment's, flagged as in the
// segment only for an experiment scoped to it.
func TestReportBySegment(t *testing.T) {
	hour := featurestore.Hour(testNow)
	at := testNow.UnixNano()
	reader := hourly{cells: map[featurestore.StatKey]featurestore.Counts{
		// All traffic.
		{Hour: hour, Channel: "web"}:                                                                         {Decisions: 100},
		{Hour: hour, Channel: "email"}:                                                                       {Decisions: 50},
		{Hour: hour, Offer: "winback-20", Channel: "web"}:                                                    {Impressions: 80, Clicks: 8},
		{Hour: hour, Offer: "winback-20", Channel: "email"}:                                                  {Impressions: 50, Clicks: 10, Conversions: 2, Value: 30},
		{Hour: hour, Channel: "email", Experiment: "winback-email", Variant: "control"}:                      {Decisions: 20},
		{Hour: hour, Offer: "winback-20", Channel: "email", Experiment: "winback-email", Variant: "control"}: {Impressions: 20, Clicks: 4},
		// lapsed: 30 of the web decisions, 20 of email's.
		{Hour: hour, Channel: "web", Segment: "lapsed"}:                                                                         {Decisions: 30},
		{Hour: hour, Channel: "email", Segment: "lapsed"}:                                                                       {Decisions: 20},
		{Hour: hour, Offer: "winback-20", Channel: "web", Segment: "lapsed"}:                                                    {Impressions: 25, Clicks: 5},
		{Hour: hour, Offer: "winback-20", Channel: "email", Segment: "lapsed"}:                                                  {Impressions: 20, Clicks: 4, Conversions: 2, Value: 30},
		{Hour: hour, Channel: "email", Experiment: "winback-email", Variant: "control", Segment: "lapsed"}:                      {Decisions: 20},
		{Hour: hour, Offer: "winback-20", Channel: "email", Experiment: "winback-email", Variant: "control", Segment: "lapsed"}: {Impressions: 20, Clicks: 4},
		// vip: 10 web decisions, some of the same customers' as lapsed.
		{Hour: hour, Channel: "web", Segment: "vip"}:                      {Decisions: 10},
		{Hour: hour, Offer: "winback-20", Channel: "web", Segment: "vip"}: {Impressions: 10, Clicks: 1},
		// Customers are not split by segment.
		featurestore.CohortKey("winback-email", "control", at): {Customers: 40, Converters: 4, Conversions: 4},
		featurestore.CohortKey("ranking", "learned", at):       {Customers: 90},
	}}
	s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = reader })
	type row struct{ decisions, impressions, clicks int64 }
	tests := []struct {
		name             string
		segment, channel string
		channels         map[string]row // per channel row
		offers           map[string]row // per offer row "offer/channel/experiment/variant"
		winback          row            // winback-email's control, by decision
		inSegment        *bool          // winback-email's CustomersInSegment
		rankingInSegment *bool
	}{
		{name: "every customer",
			channels: map[string]row{"web": {100, 80, 8}, "email": {50, 50, 10}},
			offers:   map[string]row{"winback-20/web//": {0, 80, 8}, "winback-20/email//": {0, 50, 10}, "winback-20/email/winback-email/control": {0, 20, 4}},
			winback:  row{20, 20, 4}},
		{name: "lapsed", segment: "lapsed",
			channels: map[string]row{"web": {30, 25, 5}, "email": {20, 20, 4}},
			offers:   map[string]row{"winback-20/web//": {0, 25, 5}, "winback-20/email//": {0, 20, 4}, "winback-20/email/winback-email/control": {0, 20, 4}},
			winback:  row{20, 20, 4}, inSegment: ptr(true), rankingInSegment: ptr(false)},
		{name: "lapsed by email", segment: "lapsed", channel: "email",
			channels: map[string]row{"email": {20, 20, 4}},
			offers:   map[string]row{"winback-20/email//": {0, 20, 4}, "winback-20/email/winback-email/control": {0, 20, 4}},
			winback:  row{20, 20, 4}, inSegment: ptr(true), rankingInSegment: ptr(false)},
		{name: "vip", segment: "vip",
			channels:  map[string]row{"web": {10, 10, 1}, "email": {}},
			offers:    map[string]row{"winback-20/web//": {0, 10, 1}},
			inSegment: ptr(false), rankingInSegment: ptr(false)},
		{name: "vip by email", segment: "vip", channel: "email",
			channels: map[string]row{"email": {}}, offers: map[string]row{},
			inSegment: ptr(false), rankingInSegment: ptr(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Report(context.Background(), ReportQuery{From: testNow.Add(-time.Hour), To: testNow, Segment: tt.segment, Channel: tt.channel})
			if err != nil {
				t.Fatal(err)
			}
			if r.Segment != tt.segment {
				t.Errorf("report's segment %q, want %q", r.Segment, tt.segment)
			}
			got := map[string]row{}
			for _, c := range r.Channels {
				if _, named := tt.channels[c.Channel]; named || c.Decisions+c.Impressions+c.Clicks > 0 {
					got[c.Channel] = row{c.Decisions, c.Impressions, c.Clicks}
				}
			}
			if tt.channel != "" && len(r.Channels) != 1 {
				t.Errorf("%d channel rows, want the one filtered for", len(r.Channels))
			}
			if !maps.Equal(got, tt.channels) {
				t.Errorf("channels %v, want %v", got, tt.channels)
			}
			got = map[string]row{}
			for _, o := range r.Offers {
				got[o.OfferID+"/"+o.Channel+"/"+o.Experiment+"/"+o.Variant] = row{o.Decisions, o.Impressions, o.Clicks}
			}
			if !maps.Equal(got, tt.offers) {
				t.Errorf("offers %v, want %v", got, tt.offers)
			}
			for _, x := range r.Experiments {
				want := tt.rankingInSegment
				if x.ID == "winback-email" {
					want = tt.inSegment
					if c := x.Variants[0].Counts; (row{c.Decisions, c.Impressions, c.Clicks}) != tt.winback {
						t.Errorf("winback-email's control by decision %+v, want %v", c, tt.winback)
					}
					if cu := x.Variants[0].Customers; cu.Exposed != 40 || cu.Converters != 4 {
						t.Errorf("winback-email's control's customers %+v, want every one of the experiment's: 40, 4 converters", cu)
					}
				}
				if (x.CustomersInSegment == nil) != (want == nil) || want != nil && *x.CustomersInSegment != *want {
					t.Errorf("%s: customers_in_segment %v, want %v", x.ID, x.CustomersInSegment, want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// corruptReach is a StatsReader whose reach has a corrupt cell: it returns
// the web's sketch and featurestore.ErrCorruptSketch, as the stores do.
type corruptReach struct{ hourly }

func (corruptReach) Reach(context.Context, int64, int64) (map[featurestore.ReachKey]*featurestore.Sketch, error) {
	s := new(featurestore.Sketch)
	s.Add(0x9e3779b97f4a7c15)
	return map[featurestore.ReachKey]*featurestore.Sketch{{Channel: "web"}: s},
		fmt.Errorf("store: reach: skipped 1 corrupt cells: %w", featurestore.ErrCorruptSketch)
}

// TestReportCorruptReach: a corrupt reach sketch does not fail the report;
// the other cells' reach stands and the report says reach undercounts.
func TestReportCorruptReach(t *testing.T) {
	s, _ := newTestService(t, false, func(o *Options) { o.StatsReader = corruptReach{} })
	r, err := s.Report(context.Background(), ReportQuery{From: testNow.Add(-time.Hour), To: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.ReachNote, "undercounts") || !strings.Contains(r.ReachNote, "corrupt") {
		t.Errorf("ReachNote %q, want it to say reach undercounts and why", r.ReachNote)
	}
	for _, c := range r.Channels {
		if c.Channel == "web" && (c.Reach == nil || *c.Reach != 1) {
			t.Errorf("web reach %v, want 1 from the cell that was not corrupt", c.Reach)
		}
	}
}
