package decisionlog_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// TestFind: Find yields the entries of the ids asked for, each once, in
// the order written, across segments; not outcome lines naming them,
// nor ids not asked for; a corrupt line of an id asked for is an error
// naming it, and finding goes on.
func TestFind(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l, err := decisionlog.Open(decisionlog.Options{Dir: dir, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for i := range 30 {
		for !l.Append(entry(i, t0.Add(time.Duration(i)*time.Second))) {
			time.Sleep(time.Millisecond)
		}
		l.AppendOutcome(&decisionlog.Outcome{Outcome: "click", DecisionID: fmt.Sprintf("d%05d", i), OfferID: "a", Time: t0})
	}
	stop()
	// A crash in mid-write left half a line of d00031 in a segment of
	// its own; an entry whose id has an escape follows.
	half := `{"id":"d00031","time":"2026-` + "\n" + `{"id":"d\u00300032","time":"2026-12-01T10:00:00Z","channel":"web","offers":[]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "00000000000000009999.jsonl"), []byte(half), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ids  []string
		want string // ids found, then errors
	}{
		{[]string{"d00007"}, "d00007"},
		{[]string{"d00029", "d00003", "d00029", "d00017"}, "d00003 d00017 d00029"},
		{[]string{"d99999", "nope", ""}, ""},
		{[]string{"d00031", "d00001", "d00032"}, "d00001 d00032 error: 00000000000000009999.jsonl: line 1: not a decision log entry"},
		{nil, ""},
	} {
		var got []string
		var errs []string
		for e, err := range decisionlog.Find(dir, tt.ids) {
			if err != nil {
				errs = append(errs, "error: "+strings.TrimPrefix(err.Error(), "decision log: "))
				continue
			}
			got = append(got, e.ID)
		}
		s := strings.Join(append(got, errs...), " ")
		if len(errs) > 0 {
			s = strings.Join(got, " ") + " " + errs[0][:strings.Index(errs[0], "entry")+len("entry")]
		}
		if s != tt.want {
			t.Errorf("Find(%q) = %q, want %q", tt.ids, s, tt.want)
		}
	}
	// Stopping early stops.
	for e, err := range decisionlog.Find(dir, []string{"d00002", "d00004"}) {
		if err != nil || e.ID != "d00002" {
			t.Fatalf("first found: %v, %v", e, err)
		}
		break
	}
	for _, err := range decisionlog.Find(filepath.Join(dir, "missing"), []string{"d00001"}) {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a missing directory: %v", err)
		}
	}
}

// BenchmarkFind is finding one decision in a log of 100,000 entries
// (the one written in the middle), by decoding every entry (Read, what
// nextbest replay ID did) and by Find.
func BenchmarkFind(b *testing.B) {
	dir := b.TempDir()
	ids := bigLog(b, dir, 100_000)
	id := ids[len(ids)/2]
	if fi, err := os.Stat(filepath.Join(dir, "00000000000000000001.jsonl")); err == nil {
		b.Logf("log of %d entries, %d bytes", len(ids), fi.Size())
	}
	for _, tt := range []struct {
		name string
		find func() (*decisionlog.Entry, error)
	}{
		{"read", func() (*decisionlog.Entry, error) {
			for e, err := range decisionlog.Read(dir) {
				if err != nil {
					return nil, err
				}
				if e.ID == id {
					return e, nil
				}
			}
			return nil, io.EOF
		}},
		{"find", func() (*decisionlog.Entry, error) {
			for e, err := range decisionlog.Find(dir, []string{id}) {
				return e, err
			}
			return nil, io.EOF
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e, err := tt.find()
				if err != nil || e.ID != id {
					b.Fatal(e, err)
				}
			}
		})
	}
}
