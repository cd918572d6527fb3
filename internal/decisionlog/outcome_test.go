package decisionlog_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// TestOutcomeLines: outcome lines go into the log among the decisions;
// Read and Lookup still see the decisions alone, Records both, in the
// order written.
func TestOutcomeLines(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l, err := decisionlog.Open(decisionlog.Options{Dir: dir, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	var want []string
	for i := range 10 {
		e := entry(i, t0.Add(time.Duration(i)*time.Second))
		l.Append(e)
		want = append(want, "d:"+e.ID)
		if i%2 == 0 {
			o := &decisionlog.Outcome{Outcome: "conversion", DecisionID: e.ID, OfferID: "a", Time: e.Time.Add(time.Minute),
				CustomerID: "c", Channel: "web", Value: 12.5, EventID: "e" + e.ID}
			if !l.AppendOutcome(o) {
				t.Fatal("outcome not taken")
			}
			want = append(want, "o:"+e.ID)
		}
	}
	// An outcome without its decision id is not written: counted as
	// dropped.
	l.AppendOutcome(&decisionlog.Outcome{Outcome: "click"})
	stop()
	if got := l.Dropped(); got != 1 {
		t.Errorf("dropped %d, want the 1 outcome with no decision id", got)
	}
	if got := ids(t, dir); len(got) != 10 {
		t.Errorf("Read: %v, want the 10 decisions alone", got)
	}
	if e, err := l.Lookup("d00004", t0.Add(4*time.Second)); err != nil || e.ID != "d00004" {
		t.Errorf("Lookup: %v, %v", e, err)
	}
	var got []string
	for rec, err := range decisionlog.Records(dir) {
		switch {
		case err != nil:
			t.Fatalf("Records: %v", err)
		case rec.Entry != nil:
			got = append(got, "d:"+rec.Entry.ID)
		case rec.Outcome != nil:
			o := rec.Outcome
			if o.Outcome != "conversion" || o.OfferID != "a" || o.Value != 12.5 || o.Channel != "web" || o.CustomerID != "c" ||
				!o.Time.Equal(t0.Add(time.Minute+time.Duration(len(got)/3*2)*time.Second)) || o.EventID != "e"+o.DecisionID {
				t.Errorf("outcome read as %+v", o)
			}
			got = append(got, "o:"+o.DecisionID)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Records:\n got %v\nwant %v", got, want)
	}
	// A reopened log scans segments holding outcome lines.
	l2, err := decisionlog.Open(decisionlog.Options{Dir: dir, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := l2.Lookup("d00008", t0.Add(8*time.Second)); err != nil || e.ID != "d00008" {
		t.Errorf("after reopening: %v, %v", e, err)
	}
}

func TestRecordsCorrupt(t *testing.T) {
	dir := t.TempDir()
	lines := `{"id":"d1","time":"2026-12-01T10:00:00Z","channel":"web","limit":1,"catalog":"v","explore":"static","offers":[],"propensity_samples":0}
{"outcome":"click","offer_id":"a","time":"2026-12-01T10:00:00Z"}
{"outcome":"click","decision_id":"d1","offer_id":"a","time":"2026-12-01T10:00:01Z"}
{"outcome":
`
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.jsonl"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var recs, corrupt int
	var msgs []string
	for rec, err := range decisionlog.Records(dir) {
		if err != nil {
			if !errors.Is(err, decisionlog.ErrCorrupt) {
				t.Fatalf("%v, want ErrCorrupt", err)
			}
			corrupt++
			msgs = append(msgs, err.Error())
			continue
		}
		if (rec.Entry == nil) == (rec.Outcome == nil) {
			t.Errorf("record %+v: want one of entry and outcome", rec)
		}
		recs++
	}
	if recs != 2 || corrupt != 2 {
		t.Errorf("%d records, %d corrupt, want 2 and 2", recs, corrupt)
	}
	if len(msgs) == 2 && (!strings.Contains(msgs[0], "00000000000000000001.jsonl: line 2") || !strings.Contains(msgs[1], "line 4")) {
		t.Errorf("errors %q, want them to name the segment and line", msgs)
	}
	// Read skips outcome lines, corrupt or not.
	n := 0
	for _, err := range decisionlog.Read(dir) {
		if err == nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Read: %d decisions, want 1", n)
	}
}
