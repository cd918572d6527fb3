package featurestore

import (
	"errors"
	"math"
	"testing"
)

func TestStatDeltaCheck(t *testing.T) {
	tests := []struct {
		name string
		d    StatDelta
		ok   bool
	}{
		{"zero", StatDelta{}, true},
		{"every field", StatDelta{Key: StatKey{Hour: 1, Offer: "o", Channel: "c", Experiment: "e", Variant: "v", Key: "k"}, Counts: Counts{Clicks: 1, Value: -2.5}}, true},
		{"separator in the learn_by value (rewritten)", StatDelta{Key: StatKey{Offer: "o", Key: "a\x1fb"}}, true},
		{"NaN", StatDelta{Counts: Counts{Value: math.NaN()}}, false},
		{"+Inf", StatDelta{Counts: Counts{Value: math.Inf(1)}}, false},
		{"-Inf", StatDelta{Counts: Counts{Value: math.Inf(-1)}}, false},
		{"separator in the offer", StatDelta{Key: StatKey{Offer: "a\x1fb"}}, false},
		{"separator in the channel", StatDelta{Key: StatKey{Channel: "\x1f"}}, false},
		{"separator in the experiment", StatDelta{Key: StatKey{Experiment: "e\x1f"}}, false},
		{"separator in the variant", StatDelta{Key: StatKey{Variant: "\x1fv"}}, false},
	}
	for _, tt := range tests {
		if err := tt.d.Check(); (err == nil) != tt.ok {
			t.Errorf("%s: Check() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckHourRange(t *testing.T) {
	tests := []struct {
		name     string
		from, to int64
		ok       bool
	}{
		{"one hour", 10, 10, true},
		{"empty", 10, 9, true},
		{"longest", 1, MaxStatHours, true},
		{"one hour too long", 0, MaxStatHours, false},
		{"negative hours", -MaxStatHours, -1, true},
		{"every hour", math.MinInt64, math.MaxInt64, false},
		{"empty extremes", math.MaxInt64, math.MinInt64, true},
	}
	for _, tt := range tests {
		err := CheckHourRange(tt.from, tt.to)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrStatRange) {
			t.Errorf("%s: CheckHourRange(%d, %d) = %v, want ok %v", tt.name, tt.from, tt.to, err, tt.ok)
		}
	}
}

func TestStatKeyEncoding(t *testing.T) {
	tests := []struct {
		name string
		k    StatKey
		want StatKey // decoded with Hour 7
	}{
		{"empty", StatKey{}, StatKey{Hour: 7}},
		{"every field", StatKey{Hour: 3, Offer: "o", Channel: "c", Experiment: "e", Variant: "v", Key: "Île 🗼"}, StatKey{Hour: 7, Offer: "o", Channel: "c", Experiment: "e", Variant: "v", Key: "Île 🗼"}},
		{"separator in the learn_by value", StatKey{Offer: "o", Key: "a\x1fb\x1f"}, StatKey{Hour: 7, Offer: "o", Key: "a_b_"}},
		{"segment", StatKey{Hour: 3, Offer: "o", Channel: "c", Experiment: "e", Variant: "v", Segment: "lapsed"}, StatKey{Hour: 7, Offer: "o", Channel: "c", Experiment: "e", Variant: "v", Segment: "lapsed"}},
		{"segment of a decision cell", StatKey{Hour: 3, Channel: "c", Segment: "vip"}, StatKey{Hour: 7, Channel: "c", Segment: "vip"}},
	}
	for _, tt := range tests {
		got, ok := DecodeStatKey(EncodeStatKey(tt.k), 7)
		if !ok || got != tt.want {
			t.Errorf("%s: DecodeStatKey(EncodeStatKey(%+v)) = %+v, %v; want %+v", tt.name, tt.k, got, ok, tt.want)
		}
	}
}

// TestStatKeyEncodingCompatible pins the encoding of a cell without a
// segment to the five fields stored before segments were counted, and
// the decoding of what was stored then.
func TestStatKeyEncodingCompatible(t *testing.T) {
	tests := []struct {
		name    string
		encoded string
		want    StatKey
		ok      bool
	}{
		{"offer cell", "o\x1fweb\x1f\x1f\x1f", StatKey{Hour: 7, Offer: "o", Channel: "web"}, true},
		{"variant cell", "\x1fweb\x1fx\x1fb\x1f", StatKey{Hour: 7, Channel: "web", Experiment: "x", Variant: "b"}, true},
		{"segment", "o\x1fweb\x1f\x1f\x1f\x1flapsed", StatKey{Hour: 7, Offer: "o", Channel: "web", Segment: "lapsed"}, true},
		{"empty sixth field", "o\x1fweb\x1f\x1f\x1f\x1f", StatKey{}, false},
		{"four fields", "o\x1fweb\x1f\x1f", StatKey{}, false},
		{"seven fields", "o\x1fweb\x1f\x1f\x1f\x1fa\x1fb", StatKey{}, false},
	}
	for _, tt := range tests {
		got, ok := DecodeStatKey(tt.encoded, 7)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: DecodeStatKey(%q) = %+v, %v; want %+v, %v", tt.name, tt.encoded, got, ok, tt.want, tt.ok)
		}
		if tt.ok {
			if enc := EncodeStatKey(tt.want); enc != tt.encoded {
				t.Errorf("%s: EncodeStatKey(%+v) = %q, want %q", tt.name, tt.want, enc, tt.encoded)
			}
		}
	}
}
