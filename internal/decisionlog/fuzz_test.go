package decisionlog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// FuzzReader: any bytes read as a log give entries with ids or errors,
// never a panic or a loop.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"id":"a","time":"2026-12-01T10:00:00Z","channel":"web","offers":[{"id":"x","score":1,"draw":0.1,"propensity":0.5}]}` + "\n"))
	f.Add([]byte("{\"id\":\"b\"\n\n{}\n[1,2]\nnull\n"))
	f.Add([]byte(`{"id":"c","features":{"a":[1,"x",null]},"context":{"k":{"n":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := decisionlog.NewReader(bytes.NewReader(data))
		var e decisionlog.Entry
		for range bytes.Count(data, []byte("\n")) + 2 {
			err := r.Next(&e)
			if err == io.EOF {
				return
			}
			if err == nil && e.ID == "" {
				t.Fatal("an entry without an id")
			}
			if err != nil && !errors.Is(err, decisionlog.ErrCorrupt) {
				return
			}
		}
		t.Fatal("more entries than lines")
	})
}

// FuzzAppendJSON: an entry of any strings encodes to one line of valid
// JSON that decodes to what encoding/json makes of the same strings.
func FuzzAppendJSON(f *testing.F) {
	f.Add("d1", "web", "tier", "gold\n\"x\"\x00\xff", 0.5)
	f.Fuzz(func(t *testing.T, id, channel, name, value string, p float64) {
		if id == "" || name == "n" || name == "l" {
			return // an entry's feature names are the schema's: unique
		}
		e := decisionlog.Entry{ID: id, Channel: channel, Offers: []decisionlog.Offer{{ID: value, Score: p, Propensity: p}},
			Features: decisionlog.Fields{{Name: name, Value: value}, {Name: "n", Value: p}, {Name: "l", Value: []string{value}}}}
		b, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("not one line of JSON: %q", b)
		}
		var got decisionlog.Entry
		if err := decisionlog.NewReader(bytes.NewReader(b)).Next(&got); err != nil {
			t.Fatal(err)
		}
		var want string
		j, _ := json.Marshal(value)
		_ = json.Unmarshal(j, &want)
		if v, _ := got.Features.Get("l"); got.Offers[0].ID != want || len(v.([]any)) != 1 || v.([]any)[0] != want {
			t.Fatalf("round trip of %q: %+v", value, got)
		}
	})
}
