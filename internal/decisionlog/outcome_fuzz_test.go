package decisionlog_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// FuzzNextRecord: any bytes read as a log give decisions with an id,
// outcomes with a decision id, or errors, never a panic; and an outcome
// read back writes the same line.
func FuzzNextRecord(f *testing.F) {
	f.Add([]byte(`{"outcome":"click","decision_id":"d1","offer_id":"a","time":"2026-12-01T10:00:00Z"}` + "\n" +
		`{"id":"d1","time":"2026-12-01T10:00:00Z","channel":"web","limit":1,"catalog":"v","explore":"static","offers":[],"propensity_samples":0}`))
	f.Add([]byte(`{"outcome":"conversion","decision_id":"d","value":1e308,"event_id":"\u0000"}`))
	f.Add([]byte("{\"outcome\":\n{\"outcome\":null}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := decisionlog.NewReader(bytes.NewReader(b))
		var e decisionlog.Entry
		var o decisionlog.Outcome
		for range 1000 {
			rec, err := r.NextRecord(&e, &o)
			if err == io.EOF {
				return
			}
			if err != nil {
				continue
			}
			switch {
			case rec.Entry != nil && rec.Entry.ID == "":
				t.Fatalf("an entry without an id: %+v", rec.Entry)
			case rec.Outcome != nil && rec.Outcome.DecisionID == "":
				t.Fatalf("an outcome without a decision id: %+v", rec.Outcome)
			case rec.Outcome != nil:
				// Written again through a log's encoding, it reads back
				// the same.
				var buf bytes.Buffer
				l := *rec.Outcome
				line, err := decisionlog.OutcomeLine(&l)
				if err != nil {
					return // e.g. a type but no outcome kind: not written
				}
				buf.Write(line)
				var o2, o3 decisionlog.Outcome
				var e2 decisionlog.Entry
				rec2, err := decisionlog.NewReader(&buf).NextRecord(&e2, &o2)
				if err != nil || rec2.Outcome == nil {
					t.Fatalf("%s read back: %v", line, err)
				}
				o3 = *rec2.Outcome
				if o3.Outcome != l.Outcome || o3.DecisionID != l.DecisionID || o3.OfferID != l.OfferID || !o3.Time.Equal(l.Time) {
					t.Fatalf("%+v read back as %+v", l, o3)
				}
			}
		}
	})
}
