package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// Statistics by segment: every backend keeps the segment of a cell as a
// dimension of its own, beside the same cell of all traffic, and a
// customer's record keeps the segments of their latest decision per
// channel across writes of other kinds.

// statsSegments: a cell of a segment is distinct from the same cell of
// all traffic and of another segment, in one call and across calls, for
// decisions and outcomes, per channel and per variant; learning and
// cohort cells beside them are untouched; a segment name with the
// separator is refused.
func statsSegments(t *testing.T, st featurestore.StatsStore) {
	key := func(offer, channel, variant, segment string) featurestore.StatKey {
		k := featurestore.StatKey{Hour: hour, Offer: offer, Channel: channel, Segment: segment}
		if variant != "" {
			k.Experiment, k.Variant = "exp", variant
		}
		return k
	}
	decided := featurestore.Counts{Decisions: 1}
	click := featurestore.Counts{Impressions: 1, Clicks: 1, Value: 0.5}
	learn := featurestore.StatKey{Offer: "o", Channel: "web", Key: "lapsed"}
	cohort := featurestore.CohortKey("exp", "b", Now.UnixNano())
	// Three decisions on the web: one in no segment, one lapsed, one
	// lapsed and vip; the latter two clicked.
	var deltas []featurestore.StatDelta
	for _, segs := range [][]string{nil, {"lapsed"}, {"lapsed", "vip"}} {
		for _, seg := range append([]string{""}, segs...) {
			deltas = append(deltas,
				featurestore.StatDelta{Key: key("", "web", "", seg), Counts: decided},
				featurestore.StatDelta{Key: key("", "web", "b", seg), Counts: decided})
			if len(segs) > 0 {
				deltas = append(deltas,
					featurestore.StatDelta{Key: key("o", "web", "", seg), Counts: click},
					featurestore.StatDelta{Key: key("o", "web", "b", seg), Counts: click})
			}
		}
	}
	addStats(t, st, deltas[:len(deltas)/2]...)
	addStats(t, st, deltas[len(deltas)/2:]...)
	addStats(t, st,
		featurestore.StatDelta{Key: learn, Counts: click},
		featurestore.StatDelta{Key: cohort, Counts: featurestore.Counts{Customers: 1}},
		featurestore.StatDelta{Key: key("", "email", "", "vip"), Counts: decided})
	three, two, one := featurestore.Counts{Decisions: 3}, featurestore.Counts{Decisions: 2}, featurestore.Counts{Decisions: 1}
	clicks := func(n int64) featurestore.Counts {
		return featurestore.Counts{Impressions: n, Clicks: n, Value: 0.5 * float64(n)}
	}
	diffCells(t, "HourlyStats", hourlyStats(t, st, hour, hour), cells{
		key("", "web", "", ""): three, key("", "web", "b", ""): three,
		key("o", "web", "", ""): clicks(2), key("o", "web", "b", ""): clicks(2),
		key("", "web", "", "lapsed"): two, key("", "web", "b", "lapsed"): two,
		key("o", "web", "", "lapsed"): clicks(2), key("o", "web", "b", "lapsed"): clicks(2),
		key("", "web", "", "vip"): one, key("", "web", "b", "vip"): one,
		key("o", "web", "", "vip"): clicks(1), key("o", "web", "b", "vip"): clicks(1),
		key("", "email", "", "vip"): one,
		cohort:                      {Customers: 1},
	})
	diffCells(t, "LearnStats", learnStats(t, st), cells{learn: click})
	bad := featurestore.StatDelta{Key: key("", "web", "", "lap\x1fsed"), Counts: decided}
	if err := st.AddStats(context.Background(), []featurestore.StatDelta{bad}); err == nil {
		t.Error("AddStats of a segment with the separator: no error")
	}
}

// reachSegments: the reach of a segment is a cell of its own, beside the
// same cell of all traffic.
func reachSegments(t *testing.T, st featurestore.StatsStore) {
	rs, ok := st.(featurestore.ReachStore)
	if !ok {
		t.Skip("the store keeps no reach sketches")
	}
	ctx := context.Background()
	all := featurestore.ReachKey{Hour: hour, Channel: "web"}
	lapsed := featurestore.ReachKey{Hour: hour, Channel: "web", Segment: "lapsed"}
	lapsedB := featurestore.ReachKey{Hour: hour, Channel: "web", Experiment: "x", Variant: "b", Segment: "lapsed"}
	err := rs.AddReach(ctx, []featurestore.ReachDelta{
		{Key: all, Sketch: sketchOf(0, 100)}, {Key: lapsed, Sketch: sketchOf(0, 30)}, {Key: lapsedB, Sketch: sketchOf(0, 10)}})
	if err != nil {
		t.Fatalf("AddReach: %v", err)
	}
	got, err := rs.Reach(ctx, hour, hour)
	if err != nil {
		t.Fatalf("Reach: %v", err)
	}
	want := map[featurestore.ReachKey]*featurestore.Sketch{
		{Channel: "web"}: sketchOf(0, 100), {Channel: "web", Segment: "lapsed"}: sketchOf(0, 30),
		{Channel: "web", Experiment: "x", Variant: "b", Segment: "lapsed"}: sketchOf(0, 10)}
	if len(got) != len(want) {
		t.Errorf("%d cells, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g := got[k]; g == nil || *g != *w {
			t.Errorf("cell %+v: not the sketch of its customers", k)
		}
	}
	if err := rs.AddReach(ctx, []featurestore.ReachDelta{{Key: featurestore.ReachKey{Hour: hour, Channel: "web", Segment: "a\x1fb"}, Sketch: sketchOf(0, 1)}}); err == nil {
		t.Error("AddReach of a segment with the separator: no error")
	}
}

// decidedSegments: the segments of a customer's latest decision per
// channel survive the store, and writes of events and of other channels'
// segments.
func (s *suite) decidedSegments(t *testing.T) {
	st := s.openStore(t)
	set := func(channel string, segs ...string) featurestore.Mutation {
		return featurestore.Mutation{CustomerID: "c-1", Apply: func(r *featurestore.Record) bool {
			return r.SetDecidedSegments(channel, segs, Now)
		}}
	}
	mutate(t, st, []featurestore.Mutation{set("web", "lapsed", "vip")})
	s.events(t, st, ev("c-1", "cart_add", 0, nil))
	mutate(t, st, []featurestore.Mutation{set("email", "vip")})
	mutate(t, st, []featurestore.Mutation{set("web", "vip")})
	r := load(t, st, "c-1")
	for ch, want := range map[string][]string{"web": {"vip"}, "email": {"vip"}, "sms": nil} {
		if got := r.DecidedSegments(ch); !slices.Equal(got, want) {
			t.Errorf("%s: segments %q, want %q", ch, got, want)
		}
	}
	s.check(t, "features beside the segments", r, Now, want{"cart_items": num(1)})
}
