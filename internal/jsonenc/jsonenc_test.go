package jsonenc_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nextbest/nextbest/internal/jsonenc"
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
		if got := string(jsonenc.AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {50, "50"}, {-2.5, "-2.5"}, {12.345, "12.345"},
		{1e21, "1e+21"}, {1e20, "100000000000000000000"}, {1e-7, "1e-07"}, {0.000001, "0.000001"},
		{math.NaN(), "null"}, {math.Inf(1), "null"},
	}
	for _, tt := range tests {
		if got := string(jsonenc.AppendFloat(nil, tt.in)); got != tt.want {
			t.Errorf("AppendFloat(%v): got %s, want %s", tt.in, got, tt.want)
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
		b := jsonenc.AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, b, err)
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

// FuzzAppendFloat checks every float64 against the shortest-digits
// formatting the integer fast path must equal, and that the JSON decodes
// to the same number.
func FuzzAppendFloat(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1, 42, 1e15 - 1, 1e15, 1e15 + 1, 1e21, 1e-7, 0.5, -123456789, math.MaxInt64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		got := string(jsonenc.AppendFloat(nil, x))
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if got != "null" {
				t.Fatalf("AppendFloat(%v) = %s, want null", x, got)
			}
			return
		}
		format := byte('f')
		if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
		if want := strconv.FormatFloat(x, format, -1, 64); got != want {
			t.Fatalf("AppendFloat(%v) = %s, want %s", x, got, want)
		}
		var back float64
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != x {
			t.Fatalf("AppendFloat(%v) = %s decodes to %v (%v)", x, got, back, err)
		}
	})
}

func BenchmarkAppendFloat(b *testing.B) {
	for _, x := range []float64{42, 1234.5, 0.001234} {
		b.Run(fmt.Sprint(x), func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf = jsonenc.AppendFloat(buf[:0], x)
			}
		})
	}
}
