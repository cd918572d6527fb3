package featurestore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nextbest/nextbest/featurestore"
)

// recordDiff compares records by value: floats by their bits (so NaN
// equals itself, where Value.Equal says it does not), nil and empty alike.
func recordDiff(a, b *featurestore.Record) string {
	sameFloat := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	return cmp.Diff(a, b,
		cmp.Comparer(sameFloat),
		cmp.Comparer(func(x, y featurestore.Value) bool {
			return x.Kind == y.Kind && sameFloat(x.Num, y.Num) && x.Int == y.Int && x.Str == y.Str &&
				cmp.Equal(x.List, y.List, cmpopts.EquateEmpty())
		}),
		cmpopts.EquateEmpty(),
		cmpopts.IgnoreUnexported(featurestore.Record{}))
}

// sampleRecords are records of every shape the codec must carry.
func sampleRecords(t testing.TB) map[string]*featurestore.Record {
	s := testSchema(t)
	full := &featurestore.Record{}
	full.SetAttr("tier", featurestore.String("gold"))
	full.SetAttr("lifetime_value", featurestore.Number(1500.25))
	full.SetAttr("interests", featurestore.List([]string{"shoes", "", "héllo wörld"}))
	full.SetAttr("opted_out_sms", featurestore.Bool(true))
	full.SetAttr("birthday", featurestore.Time(now.AddDate(-30, 0, 0)))
	full.SetAttr("empty_list", featurestore.List(nil))
	apply(t, s, full, now,
		event("purchase", -40*day, amount(10)),
		event("purchase", -time.Hour, amount(-2.5)),
		event("product_view", 0, map[string]any{"category": "shoes", "sizes": []any{"m"}}),
		event("cart_add", 0, nil), event("newsletter", 0, map[string]any{"on": false}),
	)
	full.AddContact(featurestore.Contact{OfferID: "promo", Channel: "web", Kind: featurestore.Impression, At: now.Add(-time.Hour).UnixNano()}, 0, now)
	full.AddContact(featurestore.Contact{OfferID: "promo", Channel: "sms", Kind: featurestore.Click, At: now.UnixNano()}, 0, now)
	full.AddContact(featurestore.Contact{OfferID: "", Channel: "", Kind: featurestore.Dismiss, At: -5}, 0, now)

	keyed := &featurestore.Record{}
	ks := sketchSchema(t)
	apply(t, ks, keyed, now,
		view(-40*day, "web", "category", "outdoor", "brand", "acme"), view(-day, "app", "category", "outdoor", "brand", "zed"),
		view(-time.Hour, "sms", "category", "héllo wörld"), view(0, "web", "category", "shoes"),
	)

	return map[string]*featurestore.Record{
		"empty": {},
		"full":  full,
		"keyed": keyed,
		"odd keys": {Aggs: map[string]*featurestore.AggState{"k": {Keys: []featurestore.KeyCount{
			{Start: -81000, Key: "", N: 0}, {Start: 0, Key: "a", N: 1<<64 - 1}, {Start: math.MaxInt64 / 2, Key: "b", N: 7},
		}}}},
		"odd floats": {
			Attrs: map[string]featurestore.Value{"nan": featurestore.Number(math.NaN()), "inf": featurestore.Number(math.Inf(-1)), "negzero": featurestore.Number(math.Copysign(0, -1))},
			Aggs:  map[string]*featurestore.AggState{"x": {Total: math.MaxFloat64, Buckets: []featurestore.Bucket{{Start: -81000, Sum: math.SmallestNonzeroFloat64}, {Start: 0}, {Start: math.MaxInt64 / 2, Sum: 1}}}},
		},
		"exposed": {Exposures: []featurestore.Exposure{
			{Experiment: "ranking", Variant: "learned", At: now.UnixNano(), Conversions: 3, Value: 12.5},
			{Experiment: "", Variant: "", At: -5, Conversions: 0, Value: math.Copysign(0, -1)},
		}},
		"decided": {Decided: []featurestore.DecisionSegments{
			{Channel: "web", Segments: []string{"lapsed", "vip"}, At: now.UnixNano()},
			{Channel: "email", Segments: nil, At: -5},
		}},
		"exposed and decided": {
			Exposures: []featurestore.Exposure{{Experiment: "ranking", Variant: "learned", At: now.UnixNano()}},
			Decided:   []featurestore.DecisionSegments{{Channel: "", Segments: []string{""}, At: 0}},
		},
		"zero values": {
			Attrs: map[string]featurestore.Value{"": {}, "t": featurestore.Zero(featurestore.TypeTime), "b": featurestore.Bool(false)},
			Aggs:  map[string]*featurestore.AggState{"": {}},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for name, r := range sampleRecords(t) {
		t.Run(name, func(t *testing.T) {
			b := featurestore.AppendRecord([]byte("prefix"), r)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("AppendRecord overwrote dst")
			}
			got, err := featurestore.UnmarshalRecord(b[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if d := recordDiff(r, got); d != "" {
				t.Errorf("round trip changed the record (-want +got):\n%s", d)
			}
		})
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	valid := featurestore.AppendRecord(nil, sampleRecords(t)["full"])
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"unknown version", []byte{5, 0, 0, 0}},
		{"version 0", []byte{0, 0, 0, 0}},
		{"bad outcome", []byte{2, 0, 0, 0, 1, 1, 'o', 1, 'w', 9, 2}},
		{"bad outcome, version 3", []byte{3, 0, 0, 1, 1, 'o', 1, 'w', 9, 2}},
		// An aggregation "a" whose Last is flagged with keys, and none.
		{"keys flagged, none", []byte{4, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0}},
		{"trailing bytes", append(append([]byte(nil), valid...), 0)},
		{"huge count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"count beyond input", []byte{1, 5, 0, 0}},
		{"string beyond input", []byte{1, 1, 10, 'a'}},
		{"bad value kind", []byte{1, 1, 1, 'a', 9, 0, 0}},
		{"overlong varint", []byte{1, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	// Every proper prefix of a valid encoding is corrupt.
	for i := range len(valid) {
		tests = append(tests, struct {
			name string
			in   []byte
		}{"prefix", valid[:i]})
	}
	for _, tt := range tests {
		r, err := featurestore.UnmarshalRecord(tt.in)
		if !errors.Is(err, featurestore.ErrCorrupt) {
			t.Errorf("%s (% x): UnmarshalRecord = %v, %v; want ErrCorrupt", tt.name, tt.in, r, err)
		}
	}
}

// FuzzUnmarshalRecord feeds the decoder arbitrary bytes, as a damaged
// disk or a foreign writer would. It must never panic; what it accepts
// must survive a round trip unchanged, and the model must be able to use
// it.
func FuzzUnmarshalRecord(f *testing.F) {
	for _, r := range sampleRecords(f) {
		f.Add(featurestore.AppendRecord(nil, r))
	}
	s := testSchema(f)
	ks := sketchSchema(f)
	var v featurestore.View
	f.Fuzz(func(t *testing.T, b []byte) {
		// The cache hands decisions its packed bytes through a View:
		// whatever a store holds, reading them gives one value per
		// feature and never panics.
		if vec, _ := v.Read(featurestore.Packed(b), s, now); len(vec) != s.Len() {
			t.Fatalf("View.Read: %d features, want %d", len(vec), s.Len())
		}
		r, err := featurestore.UnmarshalRecord(b)
		if err != nil {
			if !errors.Is(err, featurestore.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		r.Seen = nil // a record of version 2 or earlier: the ids are not written again
		enc := featurestore.AppendRecord(nil, r)
		r2, err := featurestore.UnmarshalRecord(enc)
		if err != nil {
			t.Fatalf("re-decoding its own encoding: %v", err)
		}
		if d := recordDiff(r, r2); d != "" {
			t.Fatalf("round trip changed the record (-first +second):\n%s", d)
		}
		if enc2 := featurestore.AppendRecord(nil, r2); len(enc2) != len(enc) {
			t.Fatalf("re-encoding is %d bytes, first encoding %d", len(enc2), len(enc))
		}
		// A decoded record, however odd, must not upset the model.
		r.Features(s, now, nil)
		c := r.Clone()
		for _, typ := range []string{"purchase", "cart_add", "product_view", "cart_clear"} {
			ev := event(typ, -time.Hour, map[string]any{"amount": 1.0, "category": "x"})
			c.Apply(s, &ev, now)
		}
		c.Features(s, now, nil)
		// And the keyed ops, whatever keys it holds.
		if vec, _ := v.Read(featurestore.Packed(b), ks, now); len(vec) != ks.Len() {
			t.Fatalf("View.Read: %d features, want %d", len(vec), ks.Len())
		}
		r.Features(ks, now, nil)
		ev := view(-time.Hour, "web", "category", "x", "brand", "y")
		c.Apply(ks, &ev, now)
		c.Features(ks, now, nil)
	})
}

// TestCodecReadsOldVersions: records written before the keys of top and
// distinct (version 3: the same bytes as version 4 for aggregations
// without keys), before the event ids left the record (version 2:
// attributes, aggregations, the ids applied, contacts) and before
// contact history existed (version 1: the same without the trailing
// contacts) still decode, their ids into Seen, and the current encoding
// drops the ids.
func TestCodecReadsOldVersions(t *testing.T) {
	r := sampleRecords(t)["full"].Clone()
	r.Contacts = nil
	v4 := featurestore.AppendRecord(nil, r)
	if v4[0] != 4 || v4[len(v4)-1] != 0 {
		t.Fatalf("version 4 encoding starts % x, ends % x; want version 4 and an empty contact count", v4[:1], v4[len(v4)-1:])
	}
	seen := []featurestore.SeenEvent{{ID: "e-1", At: now.UnixNano()}, {ID: "", At: now.Add(time.Second).UnixNano()}}
	ids := binary.AppendUvarint(nil, uint64(len(seen)))
	prev := int64(0)
	for _, s := range seen {
		ids = binary.AppendUvarint(ids, uint64(len(s.ID)))
		ids = append(ids, s.ID...)
		ids = binary.AppendVarint(ids, s.At-prev)
		prev = s.At
	}
	body := v4[1 : len(v4)-1] // attributes and aggregations
	tests := []struct {
		name string
		enc  []byte
		seen []featurestore.SeenEvent
	}{
		{"version 1", slices.Concat([]byte{1}, body, ids), seen},
		{"version 2", slices.Concat([]byte{2}, body, ids, []byte{0}), seen},
		{"version 3", slices.Concat([]byte{3}, body, []byte{0}), nil},
	}
	for _, tt := range tests {
		want := r.Clone()
		want.Seen = tt.seen
		got, err := featurestore.UnmarshalRecord(tt.enc)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if d := recordDiff(want, got); d != "" {
			t.Errorf("%s record decoded differently (-want +got):\n%s", tt.name, d)
		}
		// Map order varies: the same length tells the ids were dropped.
		if again := featurestore.AppendRecord(nil, got); again[0] != 4 || len(again) != len(v4) {
			t.Errorf("%s record re-encoded in %d bytes, version %d; want %d bytes, version 4 (no ids)", tt.name, len(again), again[0], len(v4))
		}
		var v featurestore.View
		if vec, _ := v.Read(featurestore.Packed(tt.enc), testSchema(t), now); !slices.EqualFunc(vec, want.Features(testSchema(t), now, nil), featurestore.Value.Equal) {
			t.Errorf("%s record viewed as %v", tt.name, vec)
		}
	}
	// A version 3 record has no keys: the flag is not one there.
	flagged := featurestore.AppendRecord(nil, sampleRecords(t)["keyed"])
	flagged[0] = 3
	if _, err := featurestore.UnmarshalRecord(flagged); !errors.Is(err, featurestore.ErrCorrupt) {
		t.Errorf("a version 3 record with keys: %v, want ErrCorrupt", err)
	}
}
