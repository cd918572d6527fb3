package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nextbest/nextbest/internal/jsonenc"
)

// Fields are named values in order: a JSON object that keeps its keys'
// order (the schema's, for features) and costs no map to build.
type Fields []Field

// Field is one of Fields.
type Field struct {
	Name  string
	Value any // nil, bool, float64, string, []string, or anything encoding/json takes
}

// Get returns the value named name and whether there is one.
func (fs Fields) Get(name string) (any, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// MarshalJSON encodes fs as an object, in order.
func (fs Fields) MarshalJSON() ([]byte, error) {
	return appendFields(nil, fs)
}

// UnmarshalJSON decodes an object into fs, in the order of its keys.
func (fs *Fields) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*fs = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("fields: want an object, got %v", tok)
	}
	out := Fields{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		out = append(out, Field{Name: name, Value: numbers(v)})
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*fs = out
	return nil
}

// numbers turns the json.Numbers of v into float64, as encoding/json
// decodes them without UseNumber (which Fields uses only to keep a
// decoder's token stream simple).
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return v.String()
		}
		return f
	case []any:
		for i := range v {
			v[i] = numbers(v[i])
		}
	case map[string]any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	}
	return v
}

// AppendJSON appends e as one line of JSON, without its newline: what
// the writer writes, by hand rather than by reflection, which cost a
// logged decision three times more (BenchmarkDecideLogged).
func (e *Entry) AppendJSON(b []byte) ([]byte, error) {
	if e.outcome != nil { // an outcome line (outcome.go)
		return e.outcome.appendJSON(b)
	}
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, e.ID)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendOptString(b, "customer_id", e.CustomerID)
	b = appendOptString(b, "decided_for", e.DecidedFor)
	b = append(b, `,"channel":`...)
	b = jsonenc.AppendString(b, e.Channel)
	b = appendOptString(b, "placement", e.Placement)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(e.Limit), 10)
	b = append(b, `,"catalog":`...)
	b = jsonenc.AppendString(b, e.Catalog)
	b = append(b, `,"explore":`...)
	b = jsonenc.AppendString(b, e.Explore)
	if len(e.Variants) > 0 {
		b = append(b, `,"variants":[`...)
		for i, v := range e.Variants {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"experiment":`...)
			b = jsonenc.AppendString(b, v.Experiment)
			b = append(b, `,"variant":`...)
			b = jsonenc.AppendString(b, v.Variant)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if e.Holdout {
		b = append(b, `,"holdout":true`...)
	}
	if len(e.Segments) > 0 {
		b = append(b, `,"segments":`...)
		b = appendStrings(b, e.Segments)
	}
	b = appendOptString(b, "learn_key", e.LearnKey)
	b = appendOptString(b, "degraded", e.Degraded)
	b = append(b, `,"offers":[`...)
	for i, o := range e.Offers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = jsonenc.AppendString(b, o.ID)
		b = append(b, `,"score":`...)
		b = jsonenc.AppendFloat(b, o.Score)
		b = append(b, `,"draw":`...)
		b = jsonenc.AppendFloat(b, o.Draw)
		b = append(b, `,"propensity":`...)
		b = jsonenc.AppendFloat(b, o.Propensity)
		b = append(b, '}')
	}
	b = append(b, `],"propensity_samples":`...)
	b = strconv.AppendInt(b, int64(e.PropensitySamples), 10)
	var err error
	if e.features != nil {
		b = append(b, `,"features":`...)
		b = append(b, e.features...)
	} else if len(e.Features) > 0 {
		b = append(b, `,"features":`...)
		if b, err = appendFields(b, e.Features); err != nil {
			return b, fmt.Errorf("features: %w", err)
		}
	}
	if len(e.Context) > 0 {
		b = append(b, `,"context":`...)
		c, err := json.Marshal(e.Context)
		if err != nil {
			return b, fmt.Errorf("context: %w", err)
		}
		b = append(b, c...)
	}
	b = e.appendReplay(b) // encode_replay.go
	return append(b, '}'), nil
}

func appendOptString(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return jsonenc.AppendString(b, s)
}

func appendFields(b []byte, fs Fields) ([]byte, error) {
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, f.Name)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, f.Value); err != nil {
			return b, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		return jsonenc.AppendFloat(b, v), nil
	case string:
		return jsonenc.AppendString(b, v), nil
	case []string:
		return appendStrings(b, v), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, ']')
}
