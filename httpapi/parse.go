package httpapi

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// parseObject parses body, which must be one strict JSON object. fastjson's
// parser is lenient (it takes NaN, bad escapes and numbers like 1.2.3) but
// bounds nesting depth; its validator is strict but unbounded in depth, so
// the parser runs first and the validator only on what it accepted.
func parseObject(p *fastjson.Parser, body []byte) (*fastjson.Object, error) {
	if len(body) == 0 {
		return nil, invalid("request body is empty; send a JSON object")
	}
	v, err := p.ParseBytes(body)
	if err == nil {
		err = fastjson.ValidateBytes(body)
	}
	if err != nil {
		return nil, invalid("malformed JSON: %s", strings.TrimPrefix(err.Error(), "cannot parse JSON: "))
	}
	if !utf8.Valid(body) {
		return nil, invalid("malformed JSON: not valid UTF-8")
	}
	o, err := v.Object()
	if err != nil {
		return nil, invalid("request body must be a JSON object, got %s", kind(v))
	}
	return o, nil
}

// kind names v's JSON type for error messages.
func kind(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "a bool"
	case fastjson.TypeNull:
		return "null"
	case fastjson.TypeObject:
		return "an object"
	case fastjson.TypeArray:
		return "an array"
	case fastjson.TypeString:
		return "a string"
	}
	return "a number"
}

// stringValue returns the string v holds.
func stringValue(field string, v *fastjson.Value) ([]byte, error) {
	b, err := v.StringBytes()
	if err != nil {
		return nil, invalid("%s: must be a string, got %s", field, kind(v))
	}
	return b, nil
}

// customerToken returns the customer_token of a decide request or an
// event: nil when absent or null, else a string (any other type is a
// 400). A request made with a public key must carry a valid one to name
// a customer; other keys' may carry one, which is then unused.
func customerToken(o *fastjson.Object) ([]byte, error) {
	v := o.Get("customer_token")
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	return stringValue("customer_token", v)
}

// requiredString returns the non-empty string v holds; v is nil when the
// field is absent.
func requiredString(field string, v *fastjson.Value) ([]byte, error) {
	if v == nil {
		return nil, invalid("%s: is required", field)
	}
	b, err := stringValue(field, v)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, invalid("%s: must not be empty", field)
	}
	return b, nil
}

// idField returns a required id of at most maxIDLen bytes.
func idField(field string, v *fastjson.Value) ([]byte, error) {
	b, err := requiredString(field, v)
	if err != nil {
		return nil, err
	}
	if len(b) > maxIDLen {
		return nil, invalid("%s: longer than %d bytes", field, maxIDLen)
	}
	return b, nil
}

// fieldsError explains why o has more keys than the known fields found in
// it: a key that is not one of allowed, or a field given twice.
func fieldsError(o *fastjson.Object, allowed []string) error {
	var err *apiError
	var seen []string
	o.Visit(func(key []byte, _ *fastjson.Value) {
		if err != nil {
			return
		}
		k := string(key)
		switch {
		case !slices.Contains(allowed, k):
			err = invalid("%s: unknown field; allowed: %s", k, strings.Join(allowed, ", "))
		case slices.Contains(seen, k):
			err = invalid("%s: given more than once", k)
		}
		seen = append(seen, k)
	})
	if err == nil {
		err = invalid("unexpected fields")
	}
	return err
}

// objectMap converts a JSON object into the map[string]any that
// encoding/json would produce (float64 numbers, []any arrays), which is
// what rules and featurestore.Coerce expect. A number too large for a
// float64 is an error: JSON allows it, nothing downstream could use it.
func objectMap(o *fastjson.Object) (map[string]any, error) {
	m := make(map[string]any, o.Len())
	var err error
	o.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		m[string(key)], err = plain(v)
	})
	return m, err
}

func plain(v *fastjson.Value) (any, error) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		return objectMap(o)
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			x, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b), nil
	case fastjson.TypeNumber:
		f, err := number(v)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("number %s is out of range", v)
		}
		return f, nil
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	}
	return nil, nil
}

// number returns the JSON number v, correctly rounded: fastjson's own
// Float64 is not (valyala/fastjson#110: 1.1e-299 comes back as
// 1.1000000000000001e-299), so a value a client sends would not be the
// value stored or compared.
func number(v *fastjson.Value) (float64, error) {
	var buf [64]byte
	return strconv.ParseFloat(string(v.MarshalTo(buf[:0])), 64)
}

// maxContextValues bounds the values (scalars, arrays and objects, nested
// ones included) of a decide request's context: rules may iterate over
// it, so its size bounds their cost.
const maxContextValues = 1024

// countValues counts v and the values nested in it, stopping past limit.
func countValues(v *fastjson.Value, limit int) int {
	n := 1
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		o.Visit(func(_ []byte, e *fastjson.Value) {
			if n <= limit {
				n += countValues(e, limit-n)
			}
		})
	case fastjson.TypeArray:
		a, _ := v.Array()
		for _, e := range a {
			if n > limit {
				break
			}
			n += countValues(e, limit-n)
		}
	}
	return n
}

// countFields returns how many of names o holds. When it is less than
// o.Len(), o has an unknown or repeated key (see fieldsError).
func countFields(o *fastjson.Object, names []string) int {
	n := 0
	for _, name := range names {
		if o.Get(name) != nil {
			n++
		}
	}
	return n
}
