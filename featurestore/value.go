package featurestore

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nextbest/nextbest/internal/jsonenc"
)

// Value is a typed feature value. Only the field of its Kind is meaningful.
type Value struct {
	Kind Type
	Num  float64  // TypeNumber
	Int  int64    // TypeBool: 0 or 1; TypeTime: Unix nanoseconds, 0 for the zero time
	Str  string   // TypeString
	List []string // TypeList
}

// Zero returns the zero value of t: 0, "", false, the zero time, the empty list.
func Zero(t Type) Value { return Value{Kind: t} }

// Number returns a number value.
func Number(f float64) Value { return Value{Kind: TypeNumber, Num: f} }

// String returns a string value.
func String(s string) Value { return Value{Kind: TypeString, Str: s} }

// Bool returns a bool value.
func Bool(b bool) Value {
	v := Value{Kind: TypeBool}
	if b {
		v.Int = 1
	}
	return v
}

// Time returns a time value; the zero time.Time is kept as the zero value.
func Time(t time.Time) Value {
	if t.IsZero() {
		return Value{Kind: TypeTime}
	}
	return Value{Kind: TypeTime, Int: t.UnixNano()}
}

// List returns a list value.
func List(l []string) Value { return Value{Kind: TypeList, List: l} }

// AsBool returns the value of a bool.
func (v Value) AsBool() bool { return v.Int != 0 }

// AsTime returns the value of a time; the zero value is the zero time.Time.
func (v Value) AsTime() time.Time {
	if v.Int == 0 {
		return time.Time{}
	}
	return time.Unix(0, v.Int).UTC()
}

// Interface returns v as a plain Go value: float64, string, bool,
// time.Time or []string.
func (v Value) Interface() any {
	switch v.Kind {
	case TypeNumber:
		return v.Num
	case TypeString:
		return v.Str
	case TypeBool:
		return v.AsBool()
	case TypeTime:
		return v.AsTime()
	case TypeList:
		if v.List == nil {
			return []string{}
		}
		return v.List
	}
	return nil
}

// JSON returns v as a value encoding/json renders as the API shows it:
// times as RFC 3339 strings (null for the zero time), lists never null.
func (v Value) JSON() any {
	if v.Kind == TypeTime {
		if v.Int == 0 {
			return nil
		}
		return v.AsTime().Format(time.RFC3339Nano)
	}
	return v.Interface()
}

// AppendJSON appends v to b as JSON, as JSON renders it (times as RFC
// 3339 strings, null for the zero time; lists never null), without
// allocating: the encoding of every surface that writes feature values
// by hand (the decide answer's features, the decision log).
func (v *Value) AppendJSON(b []byte) []byte {
	switch v.Kind {
	case TypeNumber:
		return jsonenc.AppendFloat(b, v.Num)
	case TypeString:
		return jsonenc.AppendString(b, v.Str)
	case TypeBool:
		return strconv.AppendBool(b, v.AsBool())
	case TypeTime:
		if v.Int == 0 {
			return append(b, "null"...)
		}
		b = append(b, '"')
		b = v.AsTime().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	case TypeList:
		b = append(b, '[')
		for i, s := range v.List {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, s)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

// Equal reports whether v and w hold the same typed value.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind || v.Num != w.Num || v.Int != w.Int || v.Str != w.Str || len(v.List) != len(w.List) {
		return false
	}
	for i := range v.List {
		if v.List[i] != w.List[i] {
			return false
		}
	}
	return true
}

func (v Value) String() string {
	switch v.Kind {
	case TypeNumber:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case TypeString:
		return strconv.Quote(v.Str)
	case TypeBool:
		return strconv.FormatBool(v.AsBool())
	case TypeTime:
		if v.Int == 0 {
			return "never"
		}
		return v.AsTime().Format(time.RFC3339Nano)
	case TypeList:
		return fmt.Sprintf("%q", v.List)
	}
	return "invalid"
}

// Limits of a feature value. Values come from clients (profiles, event
// properties), are stored with the customer and read by every decision for
// them, and rules may iterate over lists: their size bounds a decision's
// cost and a record's.
const (
	MaxStringLen = 1024 // bytes of a string, and of each list element
	MaxListLen   = 256  // elements of a list
)

// Coerce converts x, a value decoded from JSON or YAML (float64, int,
// string, bool, []any, time.Time, nil), into a Value of type t. Times may
// be RFC 3339 strings or Unix seconds. A nil x gives the zero value.
// Strings and lists beyond MaxStringLen and MaxListLen are errors.
func Coerce(t Type, x any) (Value, error) {
	if x == nil {
		return Zero(t), nil
	}
	switch t {
	case TypeNumber:
		switch n := x.(type) {
		case float64:
			if math.IsNaN(n) || math.IsInf(n, 0) {
				return Value{}, fmt.Errorf("%v is not a finite number", n)
			}
			return Number(n), nil
		case int:
			return Number(float64(n)), nil
		case int64:
			return Number(float64(n)), nil
		case uint64:
			return Number(float64(n)), nil
		}
	case TypeString:
		if s, ok := x.(string); ok {
			if len(s) > MaxStringLen {
				return Value{}, fmt.Errorf("a string of %d bytes, at most %d", len(s), MaxStringLen)
			}
			return String(s), nil
		}
	case TypeBool:
		if b, ok := x.(bool); ok {
			return Bool(b), nil
		}
	case TypeTime:
		switch tv := x.(type) {
		case time.Time:
			return Time(tv), nil
		case string:
			p, err := time.Parse(time.RFC3339Nano, tv)
			if err != nil {
				return Value{}, fmt.Errorf("%q is not an RFC 3339 time", tv)
			}
			return Time(p), nil
		case float64:
			if math.IsNaN(tv) || math.IsInf(tv, 0) || tv < 0 || tv > 1e11 {
				return Value{}, fmt.Errorf("%v is not a Unix time in seconds", tv)
			}
			sec, frac := math.Modf(tv)
			return Time(time.Unix(int64(sec), int64(frac*1e9))), nil
		case int:
			return Time(time.Unix(int64(tv), 0)), nil
		}
	case TypeList:
		switch l := x.(type) {
		case []string:
			if err := checkList(len(l), func(i int) string { return l[i] }); err != nil {
				return Value{}, err
			}
			return List(append([]string(nil), l...)), nil
		case []any:
			out := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return Value{}, fmt.Errorf("list element %d is %s, want string", i, describe(e))
				}
				out[i] = s
			}
			if err := checkList(len(out), func(i int) string { return out[i] }); err != nil {
				return Value{}, err
			}
			return List(out), nil
		}
	default:
		return Value{}, fmt.Errorf("invalid type %s", t)
	}
	return Value{}, fmt.Errorf("got %s, want %s", describe(x), t)
}

// describe names the JSON kind of x for error messages.
func describe(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case float64, int, int64, uint64:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case []any, []string:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

// Vector holds one value per schema feature, indexed by Feature.Index.
type Vector []Value

// checkList applies MaxListLen and MaxStringLen to a list of n elements.
func checkList(n int, elem func(int) string) error {
	if n > MaxListLen {
		return fmt.Errorf("a list of %d elements, at most %d", n, MaxListLen)
	}
	for i := range n {
		if s := elem(i); len(s) > MaxStringLen {
			return fmt.Errorf("list element %d is a string of %d bytes, at most %d", i, len(s), MaxStringLen)
		}
	}
	return nil
}
