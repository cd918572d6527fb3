package jsonenc_test

import (
	"encoding/json"
	"math"
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
