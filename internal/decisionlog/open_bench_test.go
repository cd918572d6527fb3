package decisionlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/featurestore"

	"github.com/nextbest/nextbest/internal/decisionlog"
)

// BenchmarkOpen is opening a log of 100,000 entries (about 2.1 KB
// each): reading its segments' time ranges, which a server does when it
// starts.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	bigLog(b, dir, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		l, err := decisionlog.Open(decisionlog.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		// Closed at once: its new segment stays, empty.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Run(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// bigLog writes a log of n entries of about the size a logged decision
// of the example catalog has (ten features, twelve contacts, ten
// learned cells: about 1.6 KB) into dir, and returns their ids.
func bigLog(b *testing.B, dir string, n int) []string {
	b.Helper()
	f, err := os.Create(filepath.Join(dir, "00000000000000000001.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var fs []featurestore.Feature
	for i := range 10 {
		fs = append(fs, featurestore.Feature{Name: fmt.Sprintf("feature_%d", i), Type: featurestore.TypeNumber, Default: featurestore.Number(float64(i) + 0.5)})
	}
	s, err := featurestore.NewSchema(fs)
	if err != nil {
		b.Fatal(err)
	}
	v := s.Defaults(nil)
	h := make([]featurestore.Contact, 12)
	for i := range h {
		h[i] = featurestore.Contact{OfferID: fmt.Sprintf("offer-%d", i%7), Channel: "web", Kind: featurestore.Impression, At: t0.UnixNano() - int64(i)}
	}
	ids := make([]string, n)
	var buf []byte
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		e := entry(i, at)
		e.ID = xid.NewWithTime(at).String()
		e.Features = nil
		e.SetFeatures(s, v)
		e.SetContacts(h)
		e.SetLearned("web", "vip", 10, func(j int) (string, featurestore.Counts, *decisionlog.Learned) {
			return fmt.Sprintf("offer-%d", j), featurestore.Counts{Impressions: 400, Clicks: 21, Conversions: 7, Value: 87.5}, nil
		})
		ids[i] = e.ID
		if buf, err = e.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(append(buf, '\n')); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}
