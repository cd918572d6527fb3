package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// Scanner is a Store that lists the customers it holds a record of, in
// pages (issue 13: a batch of decisions over a segment scans the store).
type Scanner interface {
	Store
	// ScanCustomers returns a page of ids from cursor ("" for the first)
	// and the cursor of the next page, "" once the scan is done. A page
	// holds about count ids (a Redis SCAN page may hold fewer, none
	// included, or a few more).
	ScanCustomers(ctx context.Context, cursor string, count int) (ids []string, next string, err error)
}

// RunScan runs the scan contract: open returns a new, empty store for
// one subtest and arranges its cleanup.
func RunScan(t *testing.T, open func(t *testing.T) Scanner) {
	s := &scanSuite{schema: Schema(), open: open}
	t.Run("Empty", s.empty)
	t.Run("EveryRecordOnce", s.everyRecordOnce)
	t.Run("Resume", s.resume)
	t.Run("Cancelled", s.cancelled)
}

type scanSuite struct {
	schema *featurestore.Schema
	open   func(t *testing.T) Scanner
}

// scanAll scans st from cursor to the end in pages of count.
func scanAll(t *testing.T, st Scanner, cursor string, count int) []string {
	t.Helper()
	var all []string
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("scan from %q: no end after %d pages", cursor, pages)
		}
		ids, next, err := st.ScanCustomers(context.Background(), cursor, count)
		if err != nil {
			t.Fatalf("ScanCustomers(%q, %d): %v", cursor, count, err)
		}
		all = append(all, ids...)
		if next == "" {
			return all
		}
		if next == cursor {
			t.Fatalf("ScanCustomers(%q) returned itself as the next cursor", cursor)
		}
		cursor = next
	}
}

func (s *scanSuite) empty(t *testing.T) {
	st := s.open(t)
	if got := scanAll(t, st, "", 10); len(got) != 0 {
		t.Errorf("scan of an empty store = %q, want none", got)
	}
}

// stored writes n customers (profiles, events with ids, so dedupe
// entries lie beside the records) and returns their ids, sorted; ids
// that look like other keys are among them. A customer whose only event
// changed nothing has no record and must not be listed.
func (s *scanSuite) stored(t *testing.T, st Store, n int) []string {
	t.Helper()
	ids := []string{"a}b", "x:e:1:1", "c*?[x]", "é-ü"}
	for i := range n - len(ids) {
		ids = append(ids, fmt.Sprintf("c-%05d", i))
	}
	var muts []featurestore.Mutation
	for i, id := range ids {
		if i%2 == 0 {
			muts = append(muts, featurestore.AttrsMutation(id, map[string]featurestore.Value{"tier": str("gold")}))
			continue
		}
		e := ev(id, "purchase", 0, map[string]any{"amount": 1.0})
		e.ID = "p-" + id
		if err := s.schema.CheckEvent(&e); err != nil {
			t.Fatal(err)
		}
		muts = append(muts, featurestore.EventMutations(s.schema, []featurestore.Event{e}, Now)...)
	}
	ghost := ev("ghost", "page_view", 0, nil)
	ghost.ID = "v-1"
	if err := s.schema.CheckEvent(&ghost); err != nil {
		t.Fatal(err)
	}
	mutate(t, st, muts)
	if _, err := st.Mutate(context.Background(), featurestore.EventMutations(s.schema, []featurestore.Event{ghost}, Now)); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// everyRecordOnce: a scan in pages of any size lists every customer with
// a record exactly once (the store is left alone during the scan), and
// nothing else: no dedupe entry, no statistics, no customer without a
// record.
func (s *scanSuite) everyRecordOnce(t *testing.T) {
	st := s.open(t)
	want := s.stored(t, st, 500)
	for _, count := range []int{1, 7, 100, 1000} {
		got := scanAll(t, st, "", count)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("scan in pages of %d: %d ids, want %d; first %q, want %q", count, len(got), len(want), got[:min(5, len(got))], want[:5])
		}
	}
}

// resume: a scan resumed from the cursor of any page lists what the
// pages after it list.
func (s *scanSuite) resume(t *testing.T) {
	st := s.open(t)
	want := s.stored(t, st, 300)
	ids, next, err := st.ScanCustomers(context.Background(), "", 50)
	if err != nil {
		t.Fatal(err)
	}
	if next == "" {
		t.Fatalf("a page of 50 of 300 customers ended the scan (%d ids)", len(ids))
	}
	got := append(slices.Clone(ids), scanAll(t, st, next, 50)...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("first page and resumed scan: %d ids, want %d", len(got), len(want))
	}
}

func (s *scanSuite) cancelled(t *testing.T) {
	st := s.open(t)
	s.stored(t, st, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := st.ScanCustomers(ctx, "", 10); !errors.Is(err, context.Canceled) {
		t.Errorf("scan with a cancelled context: %v, want context.Canceled", err)
	}
}

// BenchScan loads n customers of about 450 bytes (a 400-byte profile
// attribute) into s, then measures whole scans of their ids in pages of
// 1,000 (one iteration, one scan) and reports ids/s: what a batch of
// decisions over a segment pays to list the store's customers. A scan
// may list a customer twice (Redis while it rehashes), never miss one.
func BenchScan(b *testing.B, s Scanner, n int) {
	ctx := context.Background()
	pad := featurestore.String(strings.Repeat("x", 400))
	var muts []featurestore.Mutation
	for i := range n {
		muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%07d", i), map[string]featurestore.Value{"tier": pad}))
		if len(muts) == 1000 || i == n-1 {
			if _, err := s.Mutate(ctx, muts); err != nil {
				b.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	scanned := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cursor, got := "", 0
		for {
			ids, next, err := s.ScanCustomers(ctx, cursor, 1000)
			if err != nil {
				b.Fatal(err)
			}
			got += len(ids)
			if next == "" {
				break
			}
			cursor = next
		}
		if got < n {
			b.Fatalf("scanned %d, want at least %d", got, n)
		}
		scanned += got
	}
	b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "ids/s")
}
