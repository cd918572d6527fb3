package httpapi

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nextbest/nextbest/decision"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\r\t\x00\x1f", `"\n\r\t\u0000\u001f"`},
		{"é ü 日本", `"é ü 日本"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"<script>", `"<script>"`},
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {50, "50"}, {-2.5, "-2.5"}, {12.345, "12.345"},
		{1e21, "1e+21"}, {1e20, "100000000000000000000"}, {1e-7, "1e-07"}, {0.000001, "0.000001"},
		{math.NaN(), "null"}, {math.Inf(1), "null"},
	}
	for _, tt := range tests {
		if got := string(appendNumber(nil, tt.in)); got != tt.want {
			t.Errorf("appendNumber(%v): got %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendString checks that every string encodes to valid JSON that
// decodes to the same string (with invalid UTF-8 replaced).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\xff", "日本\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, b, err)
		}
		// Each invalid byte becomes U+FFFD, as encoding/json does.
		var want strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			want.WriteRune(r)
			i += n
		}
		if got != want.String() {
			t.Fatalf("round trip of %q: got %q, want %q", s, got, want.String())
		}
	})
}

// TestAppendExplanationFlags: sticky and exploring (learning.min_explore
// put the offer first) are written only when true.
func TestAppendExplanationFlags(t *testing.T) {
	tests := []struct {
		x    decision.Explanation
		want string
	}{
		{decision.Explanation{OfferID: "a", Eligible: true, Reason: decision.Chosen, Score: 1, Propensity: 0.5, Value: 2, Weight: 1},
			`{"offer_id":"a","eligible":true,"reason":"chosen","score":1,"propensity":0.5,"value":2,"weight":1}`},
		{decision.Explanation{OfferID: "a", Eligible: true, Reason: decision.Chosen, Score: 1, Propensity: 0.5, Value: 2, Weight: 1, Exploring: true},
			`{"offer_id":"a","eligible":true,"reason":"chosen","score":1,"propensity":0.5,"value":2,"weight":1,"exploring":true}`},
		{decision.Explanation{OfferID: "a", Eligible: true, Reason: decision.RankedOut, Score: 1, Propensity: 0.5, Value: 2, Weight: 1, Sticky: true, Exploring: true},
			`{"offer_id":"a","eligible":true,"reason":"ranked_out","score":1,"propensity":0.5,"value":2,"weight":1,"sticky":true,"exploring":true}`},
	}
	for _, tt := range tests {
		if got := string(appendExplanation(nil, &tt.x)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}
