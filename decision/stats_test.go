package decision_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// segmentCatalog has two segments a customer can be in at once and an
// experiment on every decision.
const segmentCatalog = `
channels: [web, email]
features:
  spend: {type: number}
  visits: {type: number}
segments:
  lapsed: customer.spend > 0
  frequent: customer.visits > 3
experiments:
  - id: x
    variants: [{name: a}, {name: b}]
offers:
  - id: promo
    channels: [web, email]
    content: {web: {h: promo}, email: {subject: promo}}
defaults:
  web: {h: welcome}
  email: {subject: newsletter}
`

// cellsOf sums deltas by cell, the hour left out, as "offer/channel/
// experiment/variant/segment".
func cellsOf(deltas []featurestore.StatDelta) map[string]featurestore.Counts {
	m := map[string]featurestore.Counts{}
	for _, d := range deltas {
		if d.Key.Hour == 0 {
			continue // learning cells: not split by segment
		}
		k := strings.Join([]string{d.Key.Offer, d.Key.Channel, d.Key.Experiment, d.Key.Variant, d.Key.Segment}, "/")
		c := m[k]
		c.Add(d.Counts)
		m[k] = c
	}
	return m
}

// TestSegmentAttribution: a decision counts for all traffic and once
// for each segment its customer is in, and an outcome counts in the
// segments of the decision it follows (Outcome.Segments), whatever the
// customer is in when it is reported.
func TestSegmentAttribution(t *testing.T) {
	c, err := rules.Load("x.yaml", []byte(segmentCatalog))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	one := featurestore.Counts{Decisions: 1}
	click := featurestore.Counts{Clicks: 1}
	tests := []struct {
		name          string
		spend, visits float64
		channel       string
		segments      []string // of the decision
		decisions     map[string]featurestore.Counts
		outcome       decision.Outcome // credited with the decision's segments
		outcomes      map[string]featurestore.Counts
	}{
		{
			name: "in no segment", channel: "web",
			decisions: map[string]featurestore.Counts{"/web///": one, "/web/x/V/": one},
			outcome:   decision.Outcome{Kind: featurestore.Click, OfferID: "promo", Channel: "web"},
			outcomes:  map[string]featurestore.Counts{"promo/web///": click, "promo/web/x/V/": click},
		},
		{
			name: "in one", spend: 10, channel: "email", segments: []string{"lapsed"},
			decisions: map[string]featurestore.Counts{"/email///": one, "/email/x/V/": one, "/email///lapsed": one, "/email/x/V/lapsed": one},
			outcome:   decision.Outcome{Kind: featurestore.Click, OfferID: "promo", Channel: "email"},
			outcomes: map[string]featurestore.Counts{"promo/email///": click, "promo/email/x/V/": click,
				"promo/email///lapsed": click, "promo/email/x/V/lapsed": click},
		},
		{
			name: "in both", spend: 10, visits: 5, channel: "web", segments: []string{"lapsed", "frequent"},
			decisions: map[string]featurestore.Counts{"/web///": one, "/web/x/V/": one, "/web///lapsed": one, "/web/x/V/lapsed": one,
				"/web///frequent": one, "/web/x/V/frequent": one},
			outcome: decision.Outcome{Kind: featurestore.Conversion, OfferID: "promo", Channel: "web", Value: 4},
			outcomes: map[string]featurestore.Counts{
				"promo/web///": {Conversions: 1, Value: 4}, "promo/web/x/V/": {Conversions: 1, Value: 4},
				"promo/web///lapsed": {Conversions: 1, Value: 4}, "promo/web/x/V/lapsed": {Conversions: 1, Value: 4},
				"promo/web///frequent": {Conversions: 1, Value: 4}, "promo/web/x/V/frequent": {Conversions: 1, Value: 4}},
		},
		{
			name: "organic conversion", spend: 10, channel: "web", segments: []string{"lapsed"},
			decisions: map[string]featurestore.Counts{"/web///": one, "/web/x/V/": one, "/web///lapsed": one, "/web/x/V/lapsed": one},
			outcome:   decision.Outcome{Kind: featurestore.Conversion, Channel: "web", Value: 2},
			// No offer: experiment cells only, as for all traffic.
			outcomes: map[string]featurestore.Counts{"/web/x/V/": {Conversions: 1, Value: 2}, "/web/x/V/lapsed": {Conversions: 1, Value: 2}},
		},
	}
	var e decision.Engine
	for _, tt := range tests {
		f := c.Schema.Defaults(nil)
		f[0], f[1] = featurestore.Number(tt.spend), featurestore.Number(tt.visits)
		var res decision.Result
		req := decision.Request{CustomerID: "c1", Channel: tt.channel, Now: now}
		if err := e.Decide(c, f, &req, &res); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Segments, tt.segments) && len(res.Segments)+len(tt.segments) > 0 {
			t.Fatalf("%s: segments %q, want %q", tt.name, res.Segments, tt.segments)
		}
		if len(res.Assignments) != 1 {
			t.Fatalf("%s: assignments %v, want one", tt.name, res.Assignments)
		}
		variant := res.Assignments[0].Variant.Name
		tt.decisions, tt.outcomes = inVariant(tt.decisions, variant), inVariant(tt.outcomes, variant)
		if got := cellsOf(decision.AppendDecisionDeltas(nil, &res, now)); !equalCells(got, tt.decisions) {
			t.Errorf("%s: decision cells %v, want %v", tt.name, got, tt.decisions)
		}
		// The outcome is reported once the customer has left every
		// segment: it still counts in the decision's.
		o := tt.outcome
		o.Assignments, o.Segments, o.Time = res.Assignments, res.Segments, now.Add(time.Hour)
		deltas := decision.AppendOutcomeDeltas(nil, &o)
		if got := cellsOf(deltas); !equalCells(got, tt.outcomes) {
			t.Errorf("%s: outcome cells %v, want %v", tt.name, got, tt.outcomes)
		}
		for _, d := range deltas {
			if d.Key.Hour == 0 && d.Key.Segment != "" {
				t.Errorf("%s: learning cell %+v split by segment", tt.name, d.Key)
			}
			if d.Key.Hour != 0 && d.Key.Hour != featurestore.Hour(o.Time) {
				t.Errorf("%s: cell %+v not of the outcome's hour", tt.name, d.Key)
			}
		}
	}
}

// inVariant is m with the variant V of its cells' names replaced by
// variant.
func inVariant(m map[string]featurestore.Counts, variant string) map[string]featurestore.Counts {
	out := make(map[string]featurestore.Counts, len(m))
	for k, c := range m {
		out[strings.Replace(k, "/x/V/", "/x/"+variant+"/", 1)] = c
	}
	return out
}

func equalCells(a, b map[string]featurestore.Counts) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// BenchmarkAppendDecisionDeltas is a decision's statistics increments in
// a catalog with two segments and an experiment, for a customer in no
// segment (what a decision paid before segments were counted) and in
// both.
func BenchmarkAppendDecisionDeltas(b *testing.B) {
	c, err := rules.Load("x.yaml", []byte(segmentCatalog))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		spend, visits float64
	}{{"no segment", 0, 0}, {"two segments", 10, 5}} {
		b.Run(tc.name, func(b *testing.B) {
			var e decision.Engine
			f := c.Schema.Defaults(nil)
			f[0], f[1] = featurestore.Number(tc.spend), featurestore.Number(tc.visits)
			var res decision.Result
			req := decision.Request{CustomerID: "c1", Channel: "web", Now: now}
			if err := e.Decide(c, f, &req, &res); err != nil {
				b.Fatal(err)
			}
			var dst []featurestore.StatDelta
			b.ReportAllocs()
			for b.Loop() {
				dst = decision.AppendDecisionDeltas(dst[:0], &res, now)
			}
		})
	}
}
