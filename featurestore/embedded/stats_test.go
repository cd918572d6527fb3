package embedded

import (
	"bytes"
	"context"
	"math"
	"slices"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// sameCounts is a == b, except that a NaN Value equals itself (-0 and 0
// are one value, and the encoding does not keep the sign of a zero).
func sameCounts(a, b featurestore.Counts) bool {
	return a.Decisions == b.Decisions && a.Impressions == b.Impressions && a.Clicks == b.Clicks &&
		a.Conversions == b.Conversions && a.Dismisses == b.Dismisses &&
		a.Customers == b.Customers && a.Converters == b.Converters && a.ConversionsSq == b.ConversionsSq &&
		(a.Value == b.Value || math.IsNaN(a.Value) && math.IsNaN(b.Value)) &&
		(a.ValueSq == b.ValueSq || math.IsNaN(a.ValueSq) && math.IsNaN(b.ValueSq))
}

func TestCountsEncoding(t *testing.T) {
	tests := []struct {
		name string
		c    featurestore.Counts
		size int
	}{
		{"zero", featurestore.Counts{}, 2},
		{"one click", featurestore.Counts{Clicks: 1}, 3},
		{"impressions and clicks", featurestore.Counts{Impressions: 1000, Clicks: 12}, 5},
		{"every field", featurestore.Counts{Decisions: 1 << 40, Impressions: 5, Clicks: 4, Conversions: 3, Dismisses: 2, Value: 12.5}, 2 + 6 + 4 + 8},
		{"negative", featurestore.Counts{Dismisses: -1, Value: -0.25}, 2 + 1 + 8},
		{"extremes", featurestore.Counts{Decisions: math.MaxInt64, Impressions: math.MinInt64, Value: math.SmallestNonzeroFloat64}, 2 + 10 + 10 + 8},
		// Version 2: a cohort cell (a 2-byte mask from bit 7 on).
		{"cohort", featurestore.Counts{Customers: 200, Converters: 40, Conversions: 100, ConversionsSq: 400, Value: 1000, ValueSq: 60000}, 1 + 2 + 2 + 2 + 1 + 2 + 8 + 8},
		{"customers only", featurestore.Counts{Customers: 1}, 1 + 1 + 1},
	}
	for _, tt := range tests {
		b := appendCounts(nil, tt.c)
		if len(b) != tt.size {
			t.Errorf("%s: encoded in %d bytes, want %d", tt.name, len(b), tt.size)
		}
		got, err := decodeCounts(b)
		if err != nil || got != tt.c {
			t.Errorf("%s: decodeCounts(appendCounts(%+v)) = %+v, %v", tt.name, tt.c, got, err)
		}
	}
}

func TestDecodeCountsRejectsCorruption(t *testing.T) {
	valid := appendCounts(nil, featurestore.Counts{Clicks: 300, Value: 1.5})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version only", []byte{countsV1}},
		{"unknown version", []byte{3, 0}},
		{"v2 unknown field", []byte{countsV2, 0x80, 0x08}},
		{"v2 bad mask", []byte{countsV2, 0x80}},
		{"v2 truncated value", appendCounts(nil, featurestore.Counts{Customers: 1, ValueSq: 2})[:5]},
		{"unknown field", []byte{countsV1, 1 << 6}},
		{"truncated varint", []byte{countsV1, 1, 0x80}},
		{"overlong varint", append([]byte{countsV1, 1}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"truncated value", valid[:len(valid)-1]},
		{"trailing bytes", append(slices.Clone(valid), 0)},
	}
	for _, tt := range tests {
		if c, err := decodeCounts(tt.b); err == nil {
			t.Errorf("%s: decodeCounts(%x) = %+v, want an error", tt.name, tt.b, c)
		}
	}
}

func FuzzDecodeCounts(f *testing.F) {
	f.Add(appendCounts(nil, featurestore.Counts{}))
	f.Add(appendCounts(nil, featurestore.Counts{Decisions: 1, Impressions: 2, Clicks: 3, Conversions: 4, Dismisses: 5, Value: 6.5}))
	f.Add([]byte{countsV1, 0x3f, 0x80})
	f.Add(appendCounts(nil, featurestore.Counts{Customers: 2, Converters: 1, Conversions: 3, ConversionsSq: 9, Value: 4.5, ValueSq: 20.25}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCounts(b)
		if err != nil {
			return
		}
		again, err := decodeCounts(appendCounts(nil, c))
		if err != nil || !sameCounts(again, c) {
			t.Fatalf("re-encoding %+v gives %+v, %v", c, again, err)
		}
	})
}

func TestHourKeysSortByHour(t *testing.T) {
	hours := []int64{math.MinInt64, -1 << 40, -2, -1, 1, 2, 255, 256, 1 << 40, math.MaxInt64}
	for i := 1; i < len(hours); i++ {
		a, b := appendHour(nil, hours[i-1]), appendHour(nil, hours[i])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key of hour %d (%x) does not sort before that of %d (%x)", hours[i-1], a, hours[i], b)
		}
	}
}

func TestStatKeyRoundTrip(t *testing.T) {
	tests := []featurestore.StatKey{
		{Offer: "o", Channel: "web", Key: "gold"},
		{Channel: "web", Experiment: "e", Variant: "v"},
		{Hour: 1, Offer: "o"},
		{Hour: -5, Offer: "o", Channel: "c", Experiment: "e", Variant: "v", Key: "k"},
		{Hour: math.MaxInt64, Offer: "o", Key: "\xff\x00"},
		{Hour: 1, Offer: "o", Channel: "web", Segment: "lapsed"},
		{Hour: 1, Channel: "web", Experiment: "e", Variant: "v", Segment: "vip"},
	}
	for _, k := range tests {
		b := statKey(nil, k)
		got, err := parseStatKey(b)
		if err != nil || got != k {
			t.Errorf("parseStatKey(statKey(%+v)) = %+v, %v", k, got, err)
		}
	}
	for _, bad := range []string{"c/customer", "s/h/short", "s/l/no separators", "s/x/" + featurestore.EncodeStatKey(featurestore.StatKey{})} {
		if k, err := parseStatKey([]byte(bad)); err == nil {
			t.Errorf("parseStatKey(%q) = %+v, want an error", bad, k)
		}
	}
}

// TestStatsBesideRecords checks that statistics and customer records do
// not see each other, and that statistics survive reopening.
func TestStatsBesideRecords(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	key := featurestore.StatKey{Offer: "o", Channel: "web"}
	if err := s.AddStats(ctx, []featurestore.StatDelta{{Key: key, Counts: featurestore.Counts{Clicks: 2}}}); err != nil {
		t.Fatal(err)
	}
	muts := []featurestore.Mutation{featurestore.AttrsMutation("s/l/x", map[string]featurestore.Value{"tier": featurestore.String("gold")})}
	if _, err := s.Mutate(ctx, muts); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.LearnStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[featurestore.StatKey]featurestore.Counts{key: {Clicks: 2}}); len(got) != 1 || got[key] != want[key] {
		t.Errorf("LearnStats after reopening = %v, want %v", got, want)
	}
	if _, err := s.Load(ctx, "s/l/x"); err != nil {
		t.Errorf("Load of a customer whose id looks like a statistics key: %v", err)
	}
}
