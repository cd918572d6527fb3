package storetest

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
)

// RunStats runs the contract suite of featurestore.StatsStore. open
// returns a new store, empty of statistics, for one subtest and arranges
// its cleanup with t.Cleanup.
func RunStats(t *testing.T, open func(t *testing.T) featurestore.StatsStore) {
	t.Run("Empty", func(t *testing.T) { statsEmpty(t, open(t)) })
	t.Run("Accumulate", func(t *testing.T) { statsAccumulate(t, open(t)) })
	t.Run("LearnAndHourly", func(t *testing.T) { statsLearnAndHourly(t, open(t)) })
	t.Run("Keys", func(t *testing.T) { statsKeys(t, open(t)) })
	t.Run("Invalid", func(t *testing.T) { statsInvalid(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { statsConcurrent(t, open(t)) })
	t.Run("Cohorts", func(t *testing.T) { statsCohorts(t, open(t)) })
	t.Run("Reach", func(t *testing.T) { statsReach(t, open(t)) })
	t.Run("Segments", func(t *testing.T) { statsSegments(t, open(t)) })
	t.Run("ReachSegments", func(t *testing.T) { reachSegments(t, open(t)) })
	t.Run("Model", func(t *testing.T) { statsModel(t, open(t)) })
}

// hour is an hourly cell of the suite's clock.
var hour = featurestore.Hour(Now)

type cells = map[featurestore.StatKey]featurestore.Counts

func addStats(t *testing.T, st featurestore.StatsStore, deltas ...featurestore.StatDelta) {
	t.Helper()
	if err := st.AddStats(context.Background(), deltas); err != nil {
		t.Fatalf("AddStats: %v", err)
	}
}

func learnStats(t *testing.T, st featurestore.StatsStore) cells {
	t.Helper()
	got, err := st.LearnStats(context.Background())
	if err != nil {
		t.Fatalf("LearnStats: %v", err)
	}
	if got == nil {
		t.Fatal("LearnStats returned a nil map")
	}
	return got
}

func hourlyStats(t *testing.T, st featurestore.StatsStore, from, to int64) cells {
	t.Helper()
	got, err := st.HourlyStats(context.Background(), from, to)
	if err != nil {
		t.Fatalf("HourlyStats(%d, %d): %v", from, to, err)
	}
	if got == nil {
		t.Fatalf("HourlyStats(%d, %d) returned a nil map", from, to)
	}
	return got
}

func diffCells(t *testing.T, what string, got, want cells) {
	t.Helper()
	if want == nil {
		want = cells{}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func statsEmpty(t *testing.T, st featurestore.StatsStore) {
	diffCells(t, "LearnStats", learnStats(t, st), nil)
	diffCells(t, "HourlyStats", hourlyStats(t, st, hour-24, hour), nil)
	addStats(t, st) // no deltas
	addStats(t, st, featurestore.StatDelta{Key: featurestore.StatKey{Offer: "o"}})
	diffCells(t, "LearnStats after zero deltas", learnStats(t, st), nil)
}

func statsAccumulate(t *testing.T, st featurestore.StatsStore) {
	a := featurestore.StatKey{Offer: "o-1", Channel: "web"}
	b := featurestore.StatKey{Offer: "o-2", Channel: "email", Key: "gold"}
	h := featurestore.StatKey{Hour: hour, Offer: "o-1", Channel: "web"}
	tests := []struct {
		name        string
		deltas      []featurestore.StatDelta
		learn, hour cells // the statistics after this and the earlier steps
	}{
		{
			name: "first",
			deltas: []featurestore.StatDelta{
				{Key: a, Counts: featurestore.Counts{Decisions: 1, Impressions: 1}},
				{Key: h, Counts: featurestore.Counts{Decisions: 1}},
			},
			learn: cells{a: {Decisions: 1, Impressions: 1}},
			hour:  cells{h: {Decisions: 1}},
		},
		{
			name: "one cell twice in a call",
			deltas: []featurestore.StatDelta{
				{Key: a, Counts: featurestore.Counts{Clicks: 1}},
				{Key: a, Counts: featurestore.Counts{Clicks: 2, Value: 0.5}},
				{Key: b, Counts: featurestore.Counts{Dismisses: 1}},
			},
			learn: cells{a: {Decisions: 1, Impressions: 1, Clicks: 3, Value: 0.5}, b: {Dismisses: 1}},
			hour:  cells{h: {Decisions: 1}},
		},
		{
			name: "float values and every metric",
			deltas: []featurestore.StatDelta{
				{Key: a, Counts: featurestore.Counts{Conversions: 1, Value: 1.25}},
				{Key: h, Counts: featurestore.Counts{Decisions: 2, Impressions: 3, Clicks: 4, Conversions: 5, Dismisses: 6, Value: 99.75}},
			},
			learn: cells{a: {Decisions: 1, Impressions: 1, Clicks: 3, Conversions: 1, Value: 1.75}, b: {Dismisses: 1}},
			hour:  cells{h: {Decisions: 3, Impressions: 3, Clicks: 4, Conversions: 5, Dismisses: 6, Value: 99.75}},
		},
		{
			name: "negative corrections",
			deltas: []featurestore.StatDelta{
				{Key: b, Counts: featurestore.Counts{Dismisses: -1, Value: -0.25}},
			},
			learn: cells{a: {Decisions: 1, Impressions: 1, Clicks: 3, Conversions: 1, Value: 1.75}, b: {Value: -0.25}},
			hour:  cells{h: {Decisions: 3, Impressions: 3, Clicks: 4, Conversions: 5, Dismisses: 6, Value: 99.75}},
		},
	}
	for _, tt := range tests {
		addStats(t, st, tt.deltas...)
		diffCells(t, tt.name+": LearnStats", learnStats(t, st), tt.learn)
		diffCells(t, tt.name+": HourlyStats", hourlyStats(t, st, hour, hour), tt.hour)
	}
}

func statsLearnAndHourly(t *testing.T, st featurestore.StatsStore) {
	at := func(h int64) featurestore.StatKey {
		return featurestore.StatKey{Hour: h, Offer: "o", Channel: "web", Experiment: "exp", Variant: "b"}
	}
	one := featurestore.Counts{Impressions: 1}
	var deltas []featurestore.StatDelta
	for _, h := range []int64{0, hour - 1, hour, hour + 1, hour + 2, hour + 5, -2, -1, 1} {
		deltas = append(deltas, featurestore.StatDelta{Key: at(h), Counts: one})
	}
	addStats(t, st, deltas...)
	diffCells(t, "LearnStats", learnStats(t, st), cells{at(0): one})
	tests := []struct {
		name     string
		from, to int64
		want     cells
	}{
		{"one hour", hour, hour, cells{at(hour): one}},
		{"bounds inclusive", hour, hour + 2, cells{at(hour): one, at(hour + 1): one, at(hour + 2): one}},
		{"gap", hour + 3, hour + 4, nil},
		{"wide", hour - 100, hour + 100, cells{at(hour - 1): one, at(hour): one, at(hour + 1): one, at(hour + 2): one, at(hour + 5): one}},
		{"reversed", hour + 2, hour, nil},
		{"around zero, without the learning cells", -2, 1, cells{at(-2): one, at(-1): one, at(1): one}},
		{"longest", hour - featurestore.MaxStatHours + 1, hour, cells{at(hour - 1): one, at(hour): one}},
	}
	for _, tt := range tests {
		diffCells(t, tt.name, hourlyStats(t, st, tt.from, tt.to), tt.want)
	}
	if _, err := st.HourlyStats(context.Background(), hour-featurestore.MaxStatHours, hour); !errors.Is(err, featurestore.ErrStatRange) {
		t.Errorf("HourlyStats over %d hours: err = %v, want ErrStatRange", featurestore.MaxStatHours+1, err)
	}
	if _, err := st.HourlyStats(context.Background(), math.MinInt64, math.MaxInt64); !errors.Is(err, featurestore.ErrStatRange) {
		t.Errorf("HourlyStats over every hour: err = %v, want ErrStatRange", err)
	}
}

func statsKeys(t *testing.T, st featurestore.StatsStore) {
	full := featurestore.StatKey{Offer: "offer-1", Channel: "web", Experiment: "exp-1", Variant: "treatment", Key: "gold"}
	tests := []struct {
		name string
		key  featurestore.StatKey
		want featurestore.StatKey // as read back
	}{
		{"every field", full, full},
		{"variant cell", featurestore.StatKey{Channel: "web", Experiment: "exp-1", Variant: "control"}, featurestore.StatKey{Channel: "web", Experiment: "exp-1", Variant: "control"}},
		{"learn_by with spaces and unicode", featurestore.StatKey{Offer: "o", Channel: "app", Key: "Île-de-France 75 🗼"}, featurestore.StatKey{Offer: "o", Channel: "app", Key: "Île-de-France 75 🗼"}},
		{"learn_by with the separator", featurestore.StatKey{Offer: "o", Channel: "app", Key: "a\x1fb"}, featurestore.StatKey{Offer: "o", Channel: "app", Key: "a_b"}},
		{"learn_by with braces and colons", featurestore.StatKey{Offer: "o", Channel: "app", Key: "{x}:stats:h:1"}, featurestore.StatKey{Offer: "o", Channel: "app", Key: "{x}:stats:h:1"}},
	}
	learn, hourly := cells{}, cells{}
	for i, tt := range tests {
		c := featurestore.Counts{Clicks: int64(i + 1)}
		h := tt.key
		h.Hour = hour
		addStats(t, st, featurestore.StatDelta{Key: tt.key, Counts: c}, featurestore.StatDelta{Key: h, Counts: c})
		learn[tt.want] = c
		tt.want.Hour = hour
		hourly[tt.want] = c
	}
	diffCells(t, "LearnStats", learnStats(t, st), learn)
	diffCells(t, "HourlyStats", hourlyStats(t, st, hour, hour), hourly)
}

func statsInvalid(t *testing.T, st featurestore.StatsStore) {
	good := featurestore.StatDelta{Key: featurestore.StatKey{Offer: "o"}, Counts: featurestore.Counts{Clicks: 1}}
	tests := []struct {
		name string
		bad  featurestore.StatDelta
	}{
		{"NaN value", featurestore.StatDelta{Key: featurestore.StatKey{Offer: "o"}, Counts: featurestore.Counts{Value: math.NaN()}}},
		{"infinite value", featurestore.StatDelta{Key: featurestore.StatKey{Offer: "o"}, Counts: featurestore.Counts{Value: math.Inf(1)}}},
		{"separator in an offer", featurestore.StatDelta{Key: featurestore.StatKey{Offer: "o\x1fp"}, Counts: featurestore.Counts{Clicks: 1}}},
		{"separator in a variant", featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Experiment: "e", Variant: "v\x1f"}, Counts: featurestore.Counts{Decisions: 1}}},
	}
	for _, tt := range tests {
		if err := st.AddStats(context.Background(), []featurestore.StatDelta{good, tt.bad}); err == nil {
			t.Errorf("%s: AddStats succeeded", tt.name)
		}
	}
	diffCells(t, "LearnStats after refused calls", learnStats(t, st), nil)
	diffCells(t, "HourlyStats after refused calls", hourlyStats(t, st, hour, hour), nil)
}

func statsConcurrent(t *testing.T, st featurestore.StatsStore) {
	const workers, calls = 8, 200
	learn := featurestore.StatKey{Offer: "o", Channel: "web", Key: "k"}
	hourly := featurestore.StatKey{Hour: hour, Offer: "o", Channel: "web"}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range calls {
				err := st.AddStats(context.Background(), []featurestore.StatDelta{
					{Key: learn, Counts: featurestore.Counts{Impressions: 1, Value: 0.5}},
					{Key: hourly, Counts: featurestore.Counts{Clicks: 2}},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AddStats: %v", err)
	}
	const n = workers * calls
	diffCells(t, "LearnStats", learnStats(t, st), cells{learn: {Impressions: n, Value: n * 0.5}})
	diffCells(t, "HourlyStats", hourlyStats(t, st, hour, hour), cells{hourly: {Clicks: 2 * n}})
}

// statsCohorts: the per-customer counts of cohort cells (customers,
// converters, Σx², Σv²) add up like the others, beside per-decision
// counts of the same experiment, and retention cells keep their key.
func statsCohorts(t *testing.T, st featurestore.StatsStore) {
	at := Now.UnixNano()
	cohort := featurestore.CohortKey("exp", "b", at)
	retention := cohort
	retention.Key = featurestore.RetentionKeyPrefix + "3"
	decisions := featurestore.StatKey{Hour: hour, Channel: "web", Experiment: "exp", Variant: "b"}
	first := featurestore.Counts{Customers: 1, Converters: 1, Conversions: 2, ConversionsSq: 4, Value: 2.5, ValueSq: 6.25}
	second := featurestore.Counts{Customers: 1, Conversions: 1, ConversionsSq: 1, Value: -0.5, ValueSq: 0.25}
	addStats(t, st,
		featurestore.StatDelta{Key: cohort, Counts: first},
		featurestore.StatDelta{Key: decisions, Counts: featurestore.Counts{Decisions: 3}},
		featurestore.StatDelta{Key: retention, Counts: featurestore.Counts{Converters: 1}})
	addStats(t, st, featurestore.StatDelta{Key: cohort, Counts: second})
	sum := first
	sum.Add(second)
	diffCells(t, "HourlyStats", hourlyStats(t, st, hour, hour), cells{
		cohort:    sum,
		decisions: {Decisions: 3},
		retention: {Converters: 1},
	})
	if _, ok := featurestore.RetentionDay(retention); !ok {
		t.Errorf("RetentionDay(%+v) is not a retention cell", retention)
	}
	bad := featurestore.StatDelta{Key: cohort, Counts: featurestore.Counts{ValueSq: math.Inf(1)}}
	if err := st.AddStats(context.Background(), []featurestore.StatDelta{bad}); err == nil {
		t.Error("AddStats of an infinite ValueSq: no error")
	}
}

// statsModel: the cells of a learning model's sums (featurestore.ModelKey,
// a key starting with a NUL byte) and its total round-trip, their
// fractional values summed across calls.
func statsModel(t *testing.T, st featurestore.StatsStore) {
	sum := featurestore.StatKey{Offer: "o", Channel: "web", Key: featurestore.ModelKey("k3x", 'a', 0, 2)}
	total := featurestore.StatKey{Offer: "o", Channel: "web", Key: featurestore.ModelTotalKey("k3x")}
	addStats(t, st, featurestore.StatDelta{Key: sum, Counts: featurestore.Counts{Value: 0.25}},
		featurestore.StatDelta{Key: total, Counts: featurestore.Counts{Impressions: 1}})
	addStats(t, st, featurestore.StatDelta{Key: sum, Counts: featurestore.Counts{Value: -1.5}},
		featurestore.StatDelta{Key: total, Counts: featurestore.Counts{Impressions: 1, Conversions: 1}})
	diffCells(t, "LearnStats", learnStats(t, st), cells{
		sum:   {Value: -1.25},
		total: {Impressions: 2, Conversions: 1},
	})
}
