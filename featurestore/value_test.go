package featurestore_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

func TestCoerce(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		typ     featurestore.Type
		in      any
		want    featurestore.Value
		wantErr string
	}{
		{featurestore.TypeNumber, 1.5, featurestore.Number(1.5), ""},
		{featurestore.TypeNumber, 3, featurestore.Number(3), ""},
		{featurestore.TypeNumber, int64(-4), featurestore.Number(-4), ""},
		{featurestore.TypeNumber, uint64(5), featurestore.Number(5), ""},
		{featurestore.TypeNumber, nil, featurestore.Number(0), ""},
		{featurestore.TypeNumber, math.NaN(), featurestore.Value{}, "NaN is not a finite number"},
		{featurestore.TypeNumber, math.Inf(1), featurestore.Value{}, "+Inf is not a finite number"},
		{featurestore.TypeNumber, "12", featurestore.Value{}, "got a string, want number"},
		{featurestore.TypeNumber, true, featurestore.Value{}, "got a bool, want number"},

		{featurestore.TypeString, "gold", featurestore.String("gold"), ""},
		{featurestore.TypeString, "", featurestore.String(""), ""},
		{featurestore.TypeString, 1.0, featurestore.Value{}, "got a number, want string"},
		{featurestore.TypeString, map[string]any{}, featurestore.Value{}, "got an object, want string"},
		{featurestore.TypeString, strings.Repeat("x", featurestore.MaxStringLen), featurestore.String(strings.Repeat("x", featurestore.MaxStringLen)), ""},
		{featurestore.TypeString, strings.Repeat("x", featurestore.MaxStringLen+1), featurestore.Value{}, "a string of 1025 bytes, at most 1024"},
		{featurestore.TypeList, make([]any, featurestore.MaxListLen+1), featurestore.Value{}, "list element 0 is null, want string"},
		{featurestore.TypeList, manyStrings(featurestore.MaxListLen + 1), featurestore.Value{}, "a list of 257 elements, at most 256"},
		{featurestore.TypeList, []any{"a", strings.Repeat("x", featurestore.MaxStringLen+1)}, featurestore.Value{}, "list element 1 is a string of 1025 bytes, at most 1024"},
		{featurestore.TypeList, []string{strings.Repeat("x", featurestore.MaxStringLen+1)}, featurestore.Value{}, "list element 0 is a string of 1025 bytes, at most 1024"},

		{featurestore.TypeBool, true, featurestore.Bool(true), ""},
		{featurestore.TypeBool, false, featurestore.Bool(false), ""},
		{featurestore.TypeBool, "true", featurestore.Value{}, "got a string, want bool"},

		{featurestore.TypeTime, "2026-11-22T10:00:00Z", featurestore.Time(ts), ""},
		{featurestore.TypeTime, "2026-11-22T11:00:00+01:00", featurestore.Time(ts), ""},
		{featurestore.TypeTime, ts, featurestore.Time(ts), ""},
		{featurestore.TypeTime, time.Time{}, featurestore.Zero(featurestore.TypeTime), ""},
		{featurestore.TypeTime, float64(ts.Unix()), featurestore.Time(ts), ""},
		{featurestore.TypeTime, float64(ts.Unix()) + 0.5, featurestore.Time(ts.Add(500 * time.Millisecond)), ""},
		{featurestore.TypeTime, int(ts.Unix()), featurestore.Time(ts), ""},
		{featurestore.TypeTime, nil, featurestore.Zero(featurestore.TypeTime), ""},
		{featurestore.TypeTime, "yesterday", featurestore.Value{}, `"yesterday" is not an RFC 3339 time`},
		{featurestore.TypeTime, -1.0, featurestore.Value{}, "-1 is not a Unix time in seconds"},
		{featurestore.TypeTime, 1e12, featurestore.Value{}, "1e+12 is not a Unix time in seconds"},
		{featurestore.TypeTime, true, featurestore.Value{}, "got a bool, want time"},

		{featurestore.TypeList, []any{"a", "b"}, featurestore.List([]string{"a", "b"}), ""},
		{featurestore.TypeList, []string{"a"}, featurestore.List([]string{"a"}), ""},
		{featurestore.TypeList, []any{}, featurestore.List([]string{}), ""},
		{featurestore.TypeList, []any{"a", 1.0}, featurestore.Value{}, "list element 1 is a number, want string"},
		{featurestore.TypeList, []any{nil}, featurestore.Value{}, "list element 0 is null, want string"},
		{featurestore.TypeList, "a", featurestore.Value{}, "got a string, want list"},

		{featurestore.Type(0), "x", featurestore.Value{}, "invalid type type(0)"},
	}
	for _, tt := range tests {
		got, err := featurestore.Coerce(tt.typ, tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Coerce(%s, %#v) error = %v, want %q", tt.typ, tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("Coerce(%s, %#v): %v", tt.typ, tt.in, err)
		case !got.Equal(tt.want):
			t.Errorf("Coerce(%s, %#v) = %v, want %v", tt.typ, tt.in, got, tt.want)
		}
	}
}

// TestCoerceListCopies: a coerced list must not alias the caller's slice,
// which a decoder may reuse.
func TestCoerceListCopies(t *testing.T) {
	in := []string{"a"}
	v, err := featurestore.Coerce(featurestore.TypeList, in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = "changed"
	if v.List[0] != "a" {
		t.Errorf("List[0] = %q after the input changed, want \"a\"", v.List[0])
	}
}

func TestValueRendering(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		v     featurestore.Value
		str   string
		json  any
		iface any
	}{
		{featurestore.Number(2.5), "2.5", 2.5, 2.5},
		{featurestore.String("a\"b"), `"a\"b"`, "a\"b", "a\"b"},
		{featurestore.Bool(true), "true", true, true},
		{featurestore.Time(ts), "2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z", ts},
		{featurestore.Zero(featurestore.TypeTime), "never", nil, time.Time{}},
		{featurestore.List(nil), "[]", []string{}, []string{}},
		{featurestore.List([]string{"x"}), `["x"]`, []string{"x"}, []string{"x"}},
		{featurestore.Value{}, "invalid", nil, nil},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.str {
			t.Errorf("%#v.String() = %q, want %q", tt.v, got, tt.str)
		}
		if got := tt.v.JSON(); !sameAny(got, tt.json) {
			t.Errorf("%#v.JSON() = %#v, want %#v", tt.v, got, tt.json)
		}
		if got := tt.v.Interface(); !sameAny(got, tt.iface) {
			t.Errorf("%#v.Interface() = %#v, want %#v", tt.v, got, tt.iface)
		}
	}
}

func sameAny(a, b any) bool {
	la, oka := a.([]string)
	lb, okb := b.([]string)
	if oka || okb {
		if !oka || !okb || len(la) != len(lb) || la == nil || lb == nil {
			return false
		}
		for i := range la {
			if la[i] != lb[i] {
				return false
			}
		}
		return true
	}
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

func TestParseNames(t *testing.T) {
	for _, typ := range []featurestore.Type{featurestore.TypeNumber, featurestore.TypeString, featurestore.TypeBool, featurestore.TypeTime, featurestore.TypeList} {
		if got, ok := featurestore.ParseType(typ.String()); !ok || got != typ {
			t.Errorf("ParseType(%q) = %v, %v; want %v", typ.String(), got, ok, typ)
		}
	}
	for _, op := range []featurestore.Op{featurestore.OpCount, featurestore.OpSum, featurestore.OpLast, featurestore.OpLastTime} {
		if got, ok := featurestore.ParseOp(op.String()); !ok || got != op {
			t.Errorf("ParseOp(%q) = %v, %v; want %v", op.String(), got, ok, op)
		}
	}
	for _, bad := range []string{"", "int", "Number", "type(0)"} {
		if _, ok := featurestore.ParseType(bad); ok {
			t.Errorf("ParseType(%q) succeeded", bad)
		}
		if _, ok := featurestore.ParseOp(bad); ok {
			t.Errorf("ParseOp(%q) succeeded", bad)
		}
	}
}

func manyStrings(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = "s"
	}
	return out
}
