package decisionlog_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/nextbest/nextbest/decisionlog"
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
