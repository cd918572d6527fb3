package featurestore_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// now is the tests' clock: a multiple of 22.5 h (81,000 s), so that the
// bucket boundaries of every window used here (1 h → 1 min, 1 d → 15 min,
// 30 d → 7.5 h, 90 d → 22.5 h) fall on whole widths before it.
var now = time.Unix(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).Unix()/81000*81000, 0).UTC()

const day = 24 * time.Hour

func testSchema(t testing.TB) *featurestore.Schema {
	t.Helper()
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString, Default: featurestore.String("none")},
		{Name: "lifetime_value", Type: featurestore.TypeNumber},
		{Name: "last_purchase_at", Type: featurestore.TypeTime, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpLastTime}},
		{Name: "purchases", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpCount}},
		{Name: "purchases_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpCount, Window: 30 * day}},
		{Name: "spend_90d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpSum, Field: "amount", Window: 90 * day}},
		{Name: "cart_items", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "cart_add", Op: featurestore.OpCount, ResetOn: []string{"purchase", "cart_clear"}}},
		{Name: "last_category", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpLast, Field: "category"}},
		{Name: "recent_category", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpLast, Field: "category", Window: time.Hour}},
		{Name: "views_1h", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpCount, Window: time.Hour}},
		{Name: "views_1d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpCount, Window: day}},
		{Name: "last_sizes", Type: featurestore.TypeList, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpLast, Field: "sizes"}},
		{Name: "subscribed", Type: featurestore.TypeBool, From: &featurestore.Aggregation{Event: "newsletter", Op: featurestore.OpLast, Field: "on"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// event returns an event of typ at now+d.
func event(typ string, d time.Duration, props map[string]any) featurestore.Event {
	return featurestore.Event{CustomerID: "c-1", Type: typ, Time: now.Add(d), Properties: props}
}

func amount(a float64) map[string]any { return map[string]any{"amount": a} }

func category(c string) map[string]any { return map[string]any{"category": c} }

// apply folds events into r at server time applyAt.
func apply(t testing.TB, s *featurestore.Schema, r *featurestore.Record, applyAt time.Time, events ...featurestore.Event) {
	t.Helper()
	for i := range events {
		if err := s.CheckEvent(&events[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		r.Apply(s, &events[i], applyAt)
	}
}

// feature returns the named feature of r at at.
func feature(t testing.TB, s *featurestore.Schema, r *featurestore.Record, at time.Time, name string) featurestore.Value {
	t.Helper()
	f, ok := s.Lookup(name)
	if !ok {
		t.Fatalf("no feature %q", name)
	}
	return r.Features(s, at, nil)[f.Index]
}

type want map[string]featurestore.Value

func check(t *testing.T, s *featurestore.Schema, r *featurestore.Record, at time.Time, w want) {
	t.Helper()
	for name, wv := range w {
		if got := feature(t, s, r, at, name); !got.Equal(wv) {
			t.Errorf("%s = %v, want %v", name, got, wv)
		}
	}
}

func num(f float64) featurestore.Value { return featurestore.Number(f) }

func TestWindows(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		name   string
		events []featurestore.Event
		at     time.Duration // read at now+at
		want   want
	}{
		{"nothing", nil, 0, want{"purchases_30d": num(0), "spend_90d": num(0), "views_1h": num(0)}},
		{"on the oldest boundary counts",
			[]featurestore.Event{event("purchase", -30*day, amount(5)), event("product_view", -time.Hour, nil)},
			0, want{"purchases_30d": num(1), "spend_90d": num(5), "views_1h": num(1)}},
		{"a second before it does not",
			[]featurestore.Event{event("purchase", -30*day-time.Second, amount(5)), event("product_view", -time.Hour-time.Second, nil)},
			0, want{"purchases_30d": num(0), "spend_90d": num(5), "views_1h": num(0)}},
		{"now counts", []featurestore.Event{event("purchase", 0, amount(2.5))}, 0, want{"purchases_30d": num(1), "spend_90d": num(2.5)}},
		{"sums add within a bucket and across",
			[]featurestore.Event{event("purchase", -time.Minute, amount(1.25)), event("purchase", -time.Second, amount(2)), event("purchase", -40*day, amount(10))},
			0, want{"purchases": num(3), "purchases_30d": num(2), "spend_90d": num(13.25)}},
		{"the boundary bucket slides out one width later",
			[]featurestore.Event{event("product_view", -time.Hour, nil), event("product_view", -time.Hour+59*time.Second, nil), event("product_view", -time.Hour+time.Minute, nil)},
			time.Minute, want{"views_1h": num(1), "views_1d": num(3)}},
		{"a width less a second later it is still in",
			[]featurestore.Event{event("product_view", -time.Hour, nil)},
			time.Minute - time.Second, want{"views_1h": num(1)}},
		{"all slide out, totals stay",
			[]featurestore.Event{event("purchase", -time.Hour, amount(3)), event("product_view", 0, nil)},
			365 * day, want{"purchases": num(1), "purchases_30d": num(0), "spend_90d": num(0), "views_1h": num(0), "views_1d": num(0)}},
		{"a late event inside the window counts",
			[]featurestore.Event{event("purchase", 0, amount(1)), event("purchase", -20*day, amount(1))},
			0, want{"purchases_30d": num(2)}},
		{"a late event outside the window is dropped",
			[]featurestore.Event{event("purchase", 0, amount(1)), event("purchase", -100*day, amount(1))},
			0, want{"purchases": num(2), "purchases_30d": num(1), "spend_90d": num(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &featurestore.Record{}
			apply(t, s, r, now, tt.events...)
			check(t, s, r, now.Add(tt.at), tt.want)
		})
	}
}

// TestWindowMatchesBruteForce applies events arriving out of order, up to
// two windows late, while the clock advances over many windows, and
// compares every windowed count with a count over all events, and the
// state kept with its bound.
func TestWindowMatchesBruteForce(t *testing.T) {
	s := testSchema(t)
	f, _ := s.Lookup("views_1d")
	width := int64(f.From.BucketWidth() / time.Second)
	bucket := func(t time.Time) int64 {
		u := t.Unix()
		if u < 0 {
			return (u - width + 1) / width * width
		}
		return u / width * width
	}
	rng := rand.New(rand.NewPCG(1, 2))
	r := &featurestore.Record{}
	var times []time.Time
	clock := now
	maxBuckets := int(day/f.From.BucketWidth()) + 1
	for i := range 3000 {
		clock = clock.Add(time.Duration(rng.Int64N(int64(20 * time.Minute))))
		ts := clock.Add(-time.Duration(rng.Int64N(int64(2 * day))))
		apply(t, s, r, clock, event("product_view", ts.Sub(now), nil))
		times = append(times, ts)

		if n := len(r.Aggs["views_1d"].Buckets); n > maxBuckets {
			t.Fatalf("event %d: %d buckets kept, want at most %d", i, n, maxBuckets)
		}
		if i%50 != 0 {
			continue
		}
		for _, at := range []time.Time{clock, clock.Add(7 * time.Hour), clock.Add(day)} {
			oldest := bucket(at.Add(-day))
			want := 0
			for _, e := range times {
				if bucket(e) >= oldest && !e.After(at) {
					want++
				}
			}
			if got := feature(t, s, r, at, "views_1d"); got.Num != float64(want) {
				t.Fatalf("event %d, at %v: views_1d = %v, want %d", i, at, got, want)
			}
		}
	}
}

func TestResetOn(t *testing.T) {
	s := testSchema(t)
	steps := []struct {
		name   string
		events []featurestore.Event
		want   float64
	}{
		{"adds", []featurestore.Event{event("cart_add", -5*time.Hour, nil), event("cart_add", -4*time.Hour, nil)}, 2},
		{"purchase resets", []featurestore.Event{event("purchase", -3*time.Hour, nil)}, 0},
		{"add after the reset", []featurestore.Event{event("cart_add", -2*time.Hour, nil)}, 1},
		{"a late add from before the reset is ignored", []featurestore.Event{event("cart_add", -4*time.Hour, nil)}, 1},
		{"a late reset older than the last reset is ignored", []featurestore.Event{event("cart_clear", -3*time.Hour-time.Minute, nil)}, 1},
		{"any reset_on type resets", []featurestore.Event{event("cart_clear", -time.Hour, nil)}, 0},
		{"an add at the reset's own time counts", []featurestore.Event{event("cart_add", -time.Hour, nil)}, 1},
	}
	r := &featurestore.Record{}
	for _, step := range steps {
		apply(t, s, r, now, step.events...)
		if got := feature(t, s, r, now, "cart_items"); got.Num != step.want {
			t.Errorf("%s: cart_items = %v, want %v", step.name, got, step.want)
		}
	}
}

func TestLast(t *testing.T) {
	s := testSchema(t)
	view := func(d time.Duration, props map[string]any) featurestore.Event { return event("product_view", d, props) }
	steps := []struct {
		name   string
		events []featurestore.Event
		at     time.Duration
		want   want
	}{
		{"no events", nil, 0, want{"last_category": featurestore.String(""), "last_purchase_at": featurestore.Time(time.Time{})}},
		{"first", []featurestore.Event{view(-2*time.Hour, category("shoes")), event("purchase", -2*time.Hour, nil)}, 0,
			want{"last_category": featurestore.String("shoes"), "last_purchase_at": featurestore.Time(now.Add(-2 * time.Hour))}},
		{"older arrives late", []featurestore.Event{view(-3*time.Hour, category("hats")), event("purchase", -3*time.Hour, nil)}, 0,
			want{"last_category": featurestore.String("shoes"), "last_purchase_at": featurestore.Time(now.Add(-2 * time.Hour))}},
		{"without the field, last keeps its value", []featurestore.Event{view(-time.Hour, nil)}, 0,
			want{"last_category": featurestore.String("shoes"), "views_1d": num(3)}},
		{"newer", []featurestore.Event{view(-30*time.Minute, category("bags")), event("purchase", -30*time.Minute, nil)}, 0,
			want{"last_category": featurestore.String("bags"), "recent_category": featurestore.String("bags"), "last_purchase_at": featurestore.Time(now.Add(-30 * time.Minute))}},
		{"a windowed last expires", nil, time.Hour, want{"last_category": featurestore.String("bags"), "recent_category": featurestore.String("")}},
		{"same time: the later arrival wins", []featurestore.Event{view(-30*time.Minute, category("coats"))}, 0,
			want{"last_category": featurestore.String("coats")}},
		{"lists and bools", []featurestore.Event{view(0, map[string]any{"sizes": []any{"m", "l"}}), event("newsletter", 0, map[string]any{"on": true})}, 0,
			want{"last_sizes": featurestore.List([]string{"m", "l"}), "subscribed": featurestore.Bool(true)}},
	}
	r := &featurestore.Record{}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			apply(t, s, r, now, step.events...)
			check(t, s, r, now.Add(step.at), step.want)
		})
	}
}

func TestApplyReportsChange(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		name string
		ev   featurestore.Event
		want bool
	}{
		{"feeds features", event("purchase", 0, amount(1)), true},
		{"resets", event("cart_clear", 0, nil), true},
		{"unknown type", event("page_view", 0, nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &featurestore.Record{}
			if got := r.Apply(s, &tt.ev, now); got != tt.want {
				t.Errorf("Apply = %v, want %v", got, tt.want)
			}
			if !tt.want && (r.Attrs != nil || r.Aggs != nil) {
				t.Errorf("Apply changed the record and said it did not: %+v", r)
			}
		})
	}
}

func TestFeaturesDefaults(t *testing.T) {
	s := testSchema(t)
	defaults := s.Defaults(nil)
	tests := []struct {
		name string
		rec  *featurestore.Record
	}{
		{"nil record", nil},
		{"empty record", &featurestore.Record{}},
		// A catalog changed a feature's type: the stored value no longer
		// fits, so the default stands in.
		{"stored value of another type", &featurestore.Record{
			Attrs: map[string]featurestore.Value{"tier": num(3), "lifetime_value": featurestore.String("x")},
			Aggs:  map[string]*featurestore.AggState{"last_category": {Last: num(1), LastAt: now.UnixNano()}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rec.Features(s, now, nil)
			for i, f := range s.Features() {
				if !got[i].Equal(defaults[i]) {
					t.Errorf("%s = %v, want the default %v", f.Name, got[i], defaults[i])
				}
			}
		})
	}
	if got := defaults[0]; !got.Equal(featurestore.String("none")) {
		t.Errorf("tier default = %v, want \"none\"", got)
	}
}

func TestFeaturesReusesDst(t *testing.T) {
	s := testSchema(t)
	r := &featurestore.Record{}
	apply(t, s, r, now, event("purchase", 0, amount(1)))
	dst := make(featurestore.Vector, 0, 64)
	got := r.Features(s, now, dst)
	if len(got) != s.Len() || &got[:1][0] != &dst[:1][0] {
		t.Errorf("Features did not reuse dst (len %d, cap %d)", len(got), cap(dst))
	}
}

func TestClone(t *testing.T) {
	s := testSchema(t)
	r := &featurestore.Record{}
	r.SetAttr("tier", featurestore.String("gold"))
	apply(t, s, r, now, event("purchase", -time.Hour, amount(1)), event("product_view", 0, category("shoes")))
	r.Seen = []featurestore.SeenEvent{{ID: "e-1", At: now.UnixNano()}}
	before := r.Features(s, now, nil)

	c := r.Clone()
	c.SetAttr("tier", featurestore.String("silver"))
	apply(t, s, c, now, event("purchase", -time.Hour, amount(1)), event("product_view", time.Second, category("hats")))
	c.Seen[0].ID = "e-2"
	c.Aggs["spend_90d"].Buckets[0].Sum = 1000

	after := r.Features(s, now, nil)
	for i, f := range s.Features() {
		if !after[i].Equal(before[i]) {
			t.Errorf("changing the clone changed %s: %v, was %v", f.Name, after[i], before[i])
		}
	}
	if r.Seen[0].ID != "e-1" {
		t.Error("changing the clone changed the original's seen ids")
	}
	if got := (*featurestore.Record)(nil).Clone(); got == nil {
		t.Error("nil.Clone() = nil, want an empty record")
	}
}

func TestTakeLegacySeen(t *testing.T) {
	const window = 24 * time.Hour
	r := &featurestore.Record{Seen: []featurestore.SeenEvent{
		{ID: "old", At: now.Add(-window - time.Second).UnixNano()},
		{ID: "edge", At: now.Add(-window).UnixNano()},
		{ID: "recent", At: now.Add(-time.Hour).UnixNano()},
		{ID: "new", At: now.UnixNano()},
	}}
	got := r.TakeLegacySeen(window, now)
	want := []featurestore.LegacyClaim{{ID: "recent", Expires: now.Add(window - time.Hour)}, {ID: "new", Expires: now.Add(window)}}
	if !slices.EqualFunc(got, want, func(a, b featurestore.LegacyClaim) bool { return a.ID == b.ID && a.Expires.Equal(b.Expires) }) {
		t.Errorf("TakeLegacySeen = %v, want %v (the ids still within the window)", got, want)
	}
	if r.Seen != nil {
		t.Errorf("Seen = %v after TakeLegacySeen, want none", r.Seen)
	}
}

// TestLateResetKeepsLaterEvents: reset_on clears a feature at the reset
// event's time, so a cart_add at 10:00 survives a purchase at 09:00
// delivered late.
func TestLateResetKeepsLaterEvents(t *testing.T) {
	s := testSchema(t)
	r := &featurestore.Record{}
	apply(t, s, r, now, event("cart_add", -time.Hour, nil), event("purchase", -2*time.Hour, nil))
	if got := feature(t, s, r, now, "cart_items"); got.Num != 1 {
		t.Errorf("cart_items = %v after a cart_add and an older purchase delivered late, want 1", got)
	}
}

// TestBucketBound: a window holds at most 97 buckets, even with events
// dated ahead of the server's clock (httpapi accepts up to 24 h of skew).
func TestBucketBound(t *testing.T) {
	s := testSchema(t)
	r := &featurestore.Record{}
	for m := range 24 * 60 {
		apply(t, s, r, now, event("product_view", time.Duration(m)*time.Minute, nil))
	}
	if got := len(r.Aggs["views_1h"].Buckets); got > 97 {
		t.Errorf("views_1h holds %d buckets, want at most 97", got)
	}
}

// TestAddContact: history stays oldest first whatever the arrival order,
// drops what is older than the retention, and is bounded by MaxContacts.
func TestAddContact(t *testing.T) {
	c := func(offer string, d time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: offer, Channel: "web", Kind: featurestore.Impression, At: now.Add(d).UnixNano()}
	}
	ids := func(r *featurestore.Record) []string {
		var out []string
		for _, x := range r.Contacts {
			out = append(out, x.OfferID)
		}
		return out
	}
	tests := []struct {
		name      string
		retention time.Duration
		add       []featurestore.Contact
		want      []string
	}{
		{"in order", 0, []featurestore.Contact{c("a", -3*time.Hour), c("b", -2*time.Hour), c("c", -time.Hour)}, []string{"a", "b", "c"}},
		{"late arrival is placed by time", 0, []featurestore.Contact{c("a", -3*time.Hour), c("c", -time.Hour), c("b", -2*time.Hour)}, []string{"a", "b", "c"}},
		{"equal times keep arrival order", 0, []featurestore.Contact{c("a", -time.Hour), c("b", -time.Hour)}, []string{"a", "b"}},
		{"retention drops old contacts", 24 * time.Hour, []featurestore.Contact{c("old", -48*time.Hour), c("a", -time.Hour)}, []string{"a"}},
		{"a contact older than the retention is not kept", 24 * time.Hour, []featurestore.Contact{c("a", -time.Hour), c("old", -48*time.Hour)}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r featurestore.Record
			for _, x := range tt.add {
				r.AddContact(x, tt.retention, now)
			}
			if got := ids(&r); !slices.Equal(got, tt.want) {
				t.Errorf("contacts %v, want %v", got, tt.want)
			}
		})
	}

	var r featurestore.Record
	for i := range featurestore.MaxContacts + 10 {
		r.AddContact(featurestore.Contact{OfferID: "o", Kind: featurestore.Click, At: int64(i)}, 0, now)
	}
	if len(r.Contacts) != featurestore.MaxContacts || r.Contacts[0].At != 10 {
		t.Errorf("after %d contacts: len %d, oldest at %d; want %d, oldest at 10", featurestore.MaxContacts+10, len(r.Contacts), r.Contacts[0].At, featurestore.MaxContacts)
	}
}
