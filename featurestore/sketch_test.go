package featurestore_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// propertyIs is a where filter for tests: the property Name equals Value.
type propertyIs struct{ name, value string }

func (p propertyIs) Match(ev *featurestore.Event) bool { return ev.Properties[p.name] == p.value }

// sketchSchema has the keyed ops, windowed or not, and a where on every op.
func sketchSchema(t testing.TB) *featurestore.Schema {
	t.Helper()
	outdoor := propertyIs{"category", "outdoor"}
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "favorite_category", Type: featurestore.TypeString, Default: featurestore.String("none"), From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpTop, Field: "category", Window: 30 * day}},
		{Name: "favorite_ever", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpTop, Field: "category"}},
		{Name: "categories_7d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpDistinct, Field: "category", Window: 7 * day}},
		{Name: "channels_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpDistinct, Field: featurestore.FieldChannel, Window: 30 * day}},
		{Name: "channels_ever", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpDistinct, Field: featurestore.FieldChannel}},
		{Name: "outdoor_views_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpCount, Window: 30 * day, Where: outdoor}},
		{Name: "outdoor_views", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpCount, Where: outdoor}},
		{Name: "outdoor_spend", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpSum, Field: "price", Where: outdoor}},
		{Name: "last_outdoor_sku", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpLast, Field: "sku", Where: outdoor}},
		{Name: "last_outdoor_at", Type: featurestore.TypeTime, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpLastTime, Where: outdoor}},
		{Name: "outdoor_channels", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpDistinct, Field: featurestore.FieldChannel, Where: outdoor}},
		{Name: "favorite_brand_outdoor", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpTop, Field: "brand", Where: outdoor}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// view is a product_view at now+d on channel ch.
func view(d time.Duration, ch string, props ...string) featurestore.Event {
	p := map[string]any{}
	for i := 0; i+1 < len(props); i += 2 {
		p[props[i]] = props[i+1]
	}
	return featurestore.Event{CustomerID: "c-1", Type: "product_view", Channel: ch, Time: now.Add(d), Properties: p}
}

func str(s string) featurestore.Value { return featurestore.String(s) }

func TestKeyedOps(t *testing.T) {
	s := sketchSchema(t)
	tests := []struct {
		name   string
		events []featurestore.Event
		at     time.Duration
		want   want
	}{
		{name: "no events: defaults", want: want{"favorite_category": str("none"), "favorite_ever": str(""), "channels_30d": num(0), "outdoor_views": num(0)}},
		{
			name: "the most viewed category, channels used",
			events: []featurestore.Event{
				view(-3*day, "web", "category", "shoes"), view(-2*day, "app", "category", "outdoor"),
				view(-day, "web", "category", "outdoor"), view(-time.Hour, "web", "category", "kids"),
			},
			want: want{"favorite_category": str("outdoor"), "favorite_ever": str("outdoor"), "categories_7d": num(3), "channels_30d": num(2), "channels_ever": num(2)},
		},
		{
			name:   "a tie reads the smaller value",
			events: []featurestore.Event{view(-2*day, "web", "category", "shoes"), view(-day, "web", "category", "kids")},
			want:   want{"favorite_category": str("kids"), "categories_7d": num(2)},
		},
		{
			name: "older views slide out of the window",
			events: []featurestore.Event{
				view(-40*day, "sms", "category", "shoes"), view(-39*day, "email", "category", "shoes"),
				view(-day, "web", "category", "outdoor"),
			},
			want: want{"favorite_category": str("outdoor"), "favorite_ever": str("shoes"), "channels_30d": num(1), "channels_ever": num(3), "categories_7d": num(1)},
		},
		{
			name:   "the window empties",
			events: []featurestore.Event{view(-day, "web", "category", "outdoor")},
			at:     40 * day,
			want:   want{"favorite_category": str("none"), "favorite_ever": str("outdoor"), "channels_30d": num(0), "channels_ever": num(1)},
		},
		{
			name: "no value, no key: absent, empty or not a string",
			events: []featurestore.Event{
				view(-day, "", "category", ""), view(-day, ""),
				{CustomerID: "c-1", Type: "product_view", Time: now.Add(-day), Properties: map[string]any{"category": 3.0}},
			},
			want: want{"favorite_category": str("none"), "categories_7d": num(0), "channels_ever": num(0)},
		},
		{
			name: "where: only the matching events feed, whatever the op",
			events: []featurestore.Event{
				view(-40*day, "web", "category", "outdoor", "sku", "tent", "brand", "acme"),
				view(-2*day, "app", "category", "outdoor", "sku", "boots", "brand", "acme"),
				view(-day, "web", "category", "outdoor", "sku", "stove", "brand", "zed"),
				view(-time.Hour, "sms", "category", "shoes", "sku", "heels", "brand", "zed"),
			},
			want: want{
				"outdoor_views_30d": num(2), "outdoor_views": num(3), "last_outdoor_sku": str("stove"),
				"last_outdoor_at": featurestore.Time(now.Add(-day)), "outdoor_channels": num(2), "favorite_brand_outdoor": str("acme"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &featurestore.Record{}
			for i := range tt.events {
				r.Apply(s, &tt.events[i], now)
			}
			check(t, s, r, now.Add(tt.at), tt.want)
			// The packed form reads the same.
			var v featurestore.View
			got, _ := v.Read(r.Pack(), s, now.Add(tt.at))
			if want := r.Features(s, now.Add(tt.at), nil); !slices.EqualFunc(got, want, featurestore.Value.Equal) {
				t.Errorf("view %v, record %v", got, want)
			}
		})
	}
}

// TestWhereSum pins the number a sum with where adds.
func TestWhereSum(t *testing.T) {
	s := sketchSchema(t)
	r := &featurestore.Record{}
	for _, ev := range []featurestore.Event{
		{Type: "product_view", Time: now, Properties: map[string]any{"category": "outdoor", "price": 10.0}},
		{Type: "product_view", Time: now, Properties: map[string]any{"category": "shoes", "price": 99.0}},
		{Type: "product_view", Time: now, Properties: map[string]any{"category": "outdoor", "price": 2.5}},
	} {
		r.Apply(s, &ev, now)
	}
	check(t, s, r, now, want{"outdoor_spend": num(12.5)})
}

// TestTopOverflow: a bucket that sees more than TopK values keeps TopK,
// and a value seen more often than 1/TopK of its events stays the top.
func TestTopOverflow(t *testing.T) {
	s := sketchSchema(t)
	r := &featurestore.Record{}
	for i := range 200 {
		cat := fmt.Sprint("rare-", i)
		if i%4 == 0 {
			cat = "outdoor"
		}
		ev := view(-time.Hour, "web", "category", cat)
		r.Apply(s, &ev, now)
	}
	check(t, s, r, now, want{"favorite_category": str("outdoor"), "favorite_ever": str("outdoor"), "categories_7d": num(featurestore.MaxDistinct)})
	if n := len(r.Aggs["favorite_category"].Keys); n != featurestore.TopK {
		t.Errorf("top keeps %d keys in one bucket, want %d", n, featurestore.TopK)
	}
	if n := len(r.Aggs["categories_7d"].Keys); n != featurestore.MaxDistinct {
		t.Errorf("distinct keeps %d hashes in one bucket, want %d", n, featurestore.MaxDistinct)
	}
}

// TestKeyedMatchesBruteForce: with at most TopK values, top reads
// exactly the most frequent value of the window (ties: the smaller), and
// distinct the number of distinct values up to MaxDistinct, as events
// arrive out of order while the clock moves; the state stays within its
// bound.
func TestKeyedMatchesBruteForce(t *testing.T) {
	s := sketchSchema(t)
	top, _ := s.Lookup("favorite_category")
	width := top.From.BucketWidth()
	if width != 30*time.Hour {
		t.Fatalf("a 30d window of top is kept in buckets of %v, want 30h", width)
	}
	w := int64(width / time.Second)
	bucket := func(t time.Time) int64 { return t.Unix() / w * w }
	rng := rand.New(rand.NewPCG(9, 10))
	r := &featurestore.Record{}
	type seen struct {
		at       time.Time
		cat, tag string
	}
	var evs []seen
	clock := now
	for i := range 2000 {
		clock = clock.Add(time.Duration(rng.Int64N(int64(6 * time.Hour))))
		at := clock.Add(-time.Duration(rng.Int64N(int64(40 * day))))
		e := seen{at: at, cat: fmt.Sprint("c", rng.IntN(featurestore.TopK)), tag: fmt.Sprint("t", rng.IntN(40))}
		ev := view(at.Sub(now), e.tag, "category", e.cat)
		r.Apply(s, &ev, clock)
		evs = append(evs, e)
		if n := len(r.Aggs["favorite_category"].Keys); n > 25*featurestore.TopK {
			t.Fatalf("event %d: top keeps %d keys", i, n)
		}
		if n := len(r.Aggs["channels_30d"].Keys); n > 25*featurestore.MaxDistinct {
			t.Fatalf("event %d: distinct keeps %d hashes", i, n)
		}
		if i%40 != 0 {
			continue
		}
		oldest := bucket(clock.Add(-30 * day))
		counts := map[string]int{}
		tags := map[string]bool{}
		for _, e := range evs {
			if bucket(e.at) >= oldest {
				counts[e.cat]++
				tags[e.tag] = true
			}
		}
		best := "none"
		for c, n := range counts {
			if best == "none" || n > counts[best] || (n == counts[best] && c < best) {
				best = c
			}
		}
		check(t, s, r, clock, want{"favorite_category": str(best), "channels_30d": num(float64(min(len(tags), featurestore.MaxDistinct)))})
		if t.Failed() {
			t.Fatalf("after event %d", i)
		}
	}
}

// TestKeyedLateReset: a reset older than the newest event keeps the
// state; a newer one empties it.
func TestKeyedReset(t *testing.T) {
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "top", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpTop, Field: "c", ResetOn: []string{"clear"}}},
		{Name: "n", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpDistinct, Field: "c", ResetOn: []string{"clear"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &featurestore.Record{}
	for _, ev := range []featurestore.Event{
		{Type: "view", Time: now.Add(-time.Hour), Properties: map[string]any{"c": "a"}},
		{Type: "clear", Time: now.Add(-2 * time.Hour)},
	} {
		r.Apply(s, &ev, now)
	}
	check(t, s, r, now, want{"top": str("a"), "n": num(1)})
	ev := featurestore.Event{Type: "clear", Time: now}
	r.Apply(s, &ev, now)
	check(t, s, r, now, want{"top": str(""), "n": num(0)})
}

// TestCheckEventKeyed: top and distinct read strings of at most
// MaxKeyLen bytes; a declared property must have its type.
func TestCheckEventKeyed(t *testing.T) {
	s := sketchSchema(t)
	if err := s.DeclareProperties("product_view", map[string]featurestore.Type{"category": featurestore.TypeString, "price": featurestore.TypeNumber}); err != nil {
		t.Fatal(err)
	}
	long := string(make([]byte, featurestore.MaxKeyLen+1))
	tests := []struct {
		props map[string]any
		err   string
	}{
		{props: map[string]any{"category": "outdoor", "price": 3.0}},
		{props: map[string]any{"category": nil, "brand": nil}},
		{props: map[string]any{"category": 3.0}, err: `property "category" (feeds feature "favorite_category"): got a number, want string`},
		{props: map[string]any{"brand": long}, err: `property "brand" (feeds feature "favorite_brand_outdoor"): a string of 129 bytes, at most 128 for top`},
		{props: map[string]any{"price": "3"}, err: `property "price" (feeds feature "outdoor_spend"): got a string, want number`},
	}
	for _, tt := range tests {
		ev := featurestore.Event{Type: "product_view", Time: now, Properties: tt.props}
		err := s.CheckEvent(&ev)
		if (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("CheckEvent(%v) = %v, want %q", tt.props, err, tt.err)
		}
	}
	// A declared property no feature reads is checked too.
	d, err := featurestore.NewSchema(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DeclareProperties("visit", map[string]featurestore.Type{"page": featurestore.TypeString}); err != nil {
		t.Fatal(err)
	}
	ev := featurestore.Event{Type: "visit", Time: now, Properties: map[string]any{"page": true}}
	if err := d.CheckEvent(&ev); err == nil || err.Error() != `property "page" (declared a string for visit events): got a bool, want string` {
		t.Errorf("CheckEvent of a bad declared property: %v", err)
	}
	for _, bad := range []map[string]featurestore.Type{{"channel": featurestore.TypeString}, {"at": featurestore.TypeTime}} {
		if err := d.DeclareProperties("visit", bad); err == nil {
			t.Errorf("DeclareProperties(%v) succeeded", bad)
		}
	}
}

func BenchmarkApplyKeyed(b *testing.B) {
	s := sketchSchema(b)
	r := &featurestore.Record{}
	evs := make([]featurestore.Event, 64)
	for i := range evs {
		evs[i] = view(-time.Duration(i)*time.Hour, []string{"web", "app", "sms"}[i%3], "category", fmt.Sprint("c", i%12), "brand", "acme", "sku", "x")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Apply(s, &evs[i%len(evs)], now)
		i++
	}
}
