package decisionlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// run starts l's writer and returns a func that stops it and waits.
func run(t *testing.T, l *decisionlog.Log) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func entry(i int, at time.Time) *decisionlog.Entry {
	return &decisionlog.Entry{
		ID: fmt.Sprintf("d%05d", i), Time: at, CustomerID: "c", Channel: "web", Catalog: "v1", Explore: "thompson",
		Offers:            []decisionlog.Offer{{ID: "a", Score: 1.5, Draw: 0.15, Propensity: 0.75}},
		PropensitySamples: 32,
		Features:          decisionlog.Fields{{Name: "tier", Value: "gold"}, {Name: "spend", Value: 12.5}},
	}
}

func ids(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	for e, err := range decisionlog.Read(dir) {
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		got = append(got, e.ID)
	}
	return got
}

func TestWriteReadLookup(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l, err := decisionlog.Open(decisionlog.Options{Dir: dir, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for i := range 20 {
		for !l.Append(entry(i, t0.Add(time.Duration(i)*time.Second))) {
			time.Sleep(time.Millisecond) // the queue is large: never here
		}
	}
	stop()
	if got := l.Written(); got != 20 {
		t.Fatalf("written %d, want 20", got)
	}
	got := ids(t, dir)
	if len(got) != 20 || got[0] != "d00000" || got[19] != "d00019" {
		t.Fatalf("read %v, want d00000 to d00019 in order", got)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(segs) < 3 {
		t.Errorf("%d segments of at most 1000 bytes for 20 entries, want several", len(segs))
	}
	for _, s := range segs {
		if st, _ := os.Stat(s); st.Size() > 1000 {
			t.Errorf("segment %s is %d bytes, over 1000", filepath.Base(s), st.Size())
		}
	}
	e, err := l.Lookup("d00007", t0.Add(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "d00007" || e.Offers[0].Propensity != 0.75 || func() bool { v, _ := e.Features.Get("tier"); return v != "gold" }() {
		t.Errorf("lookup: %+v", e)
	}
	if _, err := l.Lookup("d99999", t0.Add(7*time.Second)); !errors.Is(err, decisionlog.ErrNotFound) {
		t.Errorf("lookup of an unknown id: %v, want ErrNotFound", err)
	}
	// Reopened, the log finds its segments and writes after them.
	l2, err := decisionlog.Open(decisionlog.Options{Dir: dir, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := l2.Lookup("d00019", t0.Add(19*time.Second)); err != nil || e.ID != "d00019" {
		t.Fatalf("after reopening: %v, %v", e, err)
	}
	stop = run(t, l2)
	l2.Append(entry(20, t0.Add(20*time.Second)))
	stop()
	if got := ids(t, dir); len(got) != 21 || got[20] != "d00020" {
		t.Errorf("after reopening, read %v", got)
	}
}

func TestRetention(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		opts decisionlog.Options
		// entries kept, at least and at most
		min, max int
	}{
		// 30 entries an hour apart in segments of about 4: those older
		// than 10h go, a segment at a time.
		{"age", decisionlog.Options{RetainAge: 10 * time.Hour}, 10, 14},
		{"size", decisionlog.Options{RetainBytes: 2000}, 4, 12},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		opts := tt.opts
		opts.Dir, opts.SegmentBytes = dir, 1000
		opts.Now = func() time.Time { return t0.Add(29 * time.Hour) }
		l, err := decisionlog.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, l)
		for i := range 30 {
			l.Append(entry(i, t0.Add(time.Duration(i)*time.Hour)))
		}
		stop()
		got := ids(t, dir)
		if len(got) < tt.min || len(got) > tt.max || got[len(got)-1] != "d00029" {
			t.Errorf("%s: kept %v, want the newest %d to %d", tt.name, got, tt.min, tt.max)
		}
		var total int64
		segs, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		for _, s := range segs {
			st, _ := os.Stat(s)
			total += st.Size()
		}
		if opts.RetainBytes > 0 && total > opts.RetainBytes+1000 {
			t.Errorf("%s: %d bytes kept, want at most the limit and the open segment", tt.name, total)
		}
	}
}

// TestDropWhenFull: with no writer running the queue fills, and every
// entry past it is dropped and counted, without blocking.
func TestDropWhenFull(t *testing.T) {
	l, err := decisionlog.Open(decisionlog.Options{Dir: t.TempDir(), Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for i := range 10 {
		if l.Append(entry(i, time.Unix(0, 0))) {
			taken++
		}
	}
	if taken != 4 || l.Dropped() != 6 {
		t.Errorf("taken %d, dropped %d; want 4 and 6", taken, l.Dropped())
	}
}

func TestReadCorrupt(t *testing.T) {
	dir := t.TempDir()
	data := `{"id":"a","channel":"web","offers":[]}` + "\n" + `{"id":"b","chan` + "\n" + `{"id":"c","channel":"web","offers":[]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.jsonl"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	var errs []string
	for e, err := range decisionlog.Read(dir) {
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		got = append(got, e.ID)
	}
	if strings.Join(got, ",") != "a,c" || len(errs) != 1 || !strings.Contains(errs[0], "00000000000000000001.jsonl: line 2: not a decision log entry") {
		t.Errorf("read %v, errors %q", got, errs)
	}
}

func TestSampled(t *testing.T) {
	const n = 20000
	for _, rate := range []float64{0, 0.1, 0.5, 1} {
		k := 0
		for i := range n {
			id := []byte(fmt.Sprintf("decision-%d", i))
			s := decisionlog.Sampled(id, rate)
			if s != decisionlog.Sampled(id, rate) {
				t.Fatalf("rate %v: %s sampled differently twice", rate, id)
			}
			if s {
				k++
			}
		}
		got := float64(k) / n
		if (rate == 0 && k != 0) || (rate == 1 && k != n) || got < rate-0.02 || got > rate+0.02 {
			t.Errorf("rate %v: sampled %.3f", rate, got)
		}
	}
}

// TestLookupWhileWriting: lookups run while the writer appends and
// rotates (for -race), and each entry is found once flushed.
func TestLookupWhileWriting(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l, err := decisionlog.Open(decisionlog.Options{Dir: t.TempDir(), SegmentBytes: 2000, RetainBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	defer stop()
	const n = 200
	for i := range n {
		for !l.Append(entry(i, t0.Add(time.Duration(i)*time.Millisecond))) {
			time.Sleep(time.Millisecond)
		}
		if i%10 == 0 {
			_, _ = l.Lookup(fmt.Sprintf("d%05d", i/2), t0)
		}
	}
	for range 100 { // the writer flushes every FlushEvery
		if l.Written() == n {
			if _, err := l.Lookup(fmt.Sprintf("d%05d", n-1), t0); err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("entry %d not found once written (%d written)", n-1, l.Written())
}

// sinkBatches is a Sink that keeps what it is sent.
type sinkBatches struct {
	mu      sync.Mutex
	batches [][][]byte
}

func (s *sinkBatches) Send(b [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, b)
}

// TestSink: the sink gets every entry written, as its line without the
// newline, in order, in batches of at most SinkBatch.
func TestSink(t *testing.T) {
	dir := t.TempDir()
	sink := &sinkBatches{}
	l, err := decisionlog.Open(decisionlog.Options{Dir: dir, Sink: sink, SinkBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range 50 {
		for !l.Append(entry(i, t0)) {
			time.Sleep(time.Millisecond)
		}
	}
	stop()
	var lines []string
	for e, err := range decisionlog.Read(dir) {
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	var got []string
	for _, b := range sink.batches {
		if len(b) > 7 {
			t.Errorf("a batch of %d, over SinkBatch 7", len(b))
		}
		for _, e := range b {
			got = append(got, string(e))
		}
	}
	if !slices.Equal(got, lines) {
		t.Fatalf("the sink got %d entries, the segments hold %d; first %q vs %q", len(got), len(lines), got[:min(1, len(got))], lines[:min(1, len(lines))])
	}
}
