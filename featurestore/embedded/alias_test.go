package embedded

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

// TestMergeCarriesEventIDs: an event applied under the anonymous id
// before the merge and retried under it after, within the window, is
// not counted again on the known customer.
func TestMergeCarriesEventIDs(t *testing.T) {
	c := &testClock{t: storetest.Now}
	s := openTest(t, c)
	schema := storetest.Schema()
	ctx := context.Background()
	view := func(id, customer string) []featurestore.Mutation {
		return featurestore.EventMutations(schema, []featurestore.Event{{ID: id, CustomerID: customer, Type: "product_view", Time: c.t, Properties: map[string]any{"category": "x"}}}, c.t)
	}
	for _, id := range []string{"e-1", "e-2"} {
		if _, err := s.Mutate(ctx, view(id, "anon")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Mutate(ctx, view("e-1", "known")); err != nil { // the same id, under the known customer too
		t.Fatal(err)
	}
	fold := func(r, f *featurestore.Record) bool { return r.Merge(schema, f, c.t) }
	if _, err := s.Merge(ctx, featurestore.Merge{Into: "known", From: "anon", Fold: fold}); err != nil {
		t.Fatal(err)
	}
	views := func() float64 {
		t.Helper()
		r, err := s.Load(ctx, "known")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := schema.Lookup("views_1d")
		return r.Features(schema, c.t, nil)[f.Index].Num
	}
	if got := views(); got != 3 {
		t.Fatalf("after the merge: %v views, want 3", got)
	}
	// The retry, resolved to the known customer (as the service does).
	for _, id := range []string{"e-1", "e-2"} {
		if _, err := s.Mutate(ctx, view(id, "known")); err != nil {
			t.Fatal(err)
		}
	}
	if got := views(); got != 3 {
		t.Errorf("retries of events applied before the merge counted: %v views, want 3", got)
	}
	if n := customerDedupeKeys(t, s, "anon"); n != 0 {
		t.Errorf("%d dedupe entries left under the anonymous id", n)
	}
	// Once the window has passed, the same id is a new event.
	c.t = c.t.Add(2 * time.Hour)
	if _, err := s.Mutate(ctx, view("e-2", "known")); err != nil {
		t.Fatal(err)
	}
	if got := views(); got != 4 {
		t.Errorf("after the window: %v views, want 4", got)
	}
}

// customerDedupeKeys counts the customer's dedupe entries.
func customerDedupeKeys(t *testing.T, s *Store, customer string) int {
	t.Helper()
	prefix := dedupeKey(nil, customer, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyEnd(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// BenchmarkLoadAbsent measures what aliases cost a read: nothing for a
// customer with a record (the alias is read only when there is none),
// and for one without, the second point read that looks for an alias
// (absent, "record read only" is the read before aliases existed).
// 10,000 customers and 1,000 aliases, flushed to tables, so the reads
// go through the bloom filters as they do in a store of any size.
func BenchmarkLoadAbsent(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	var muts []featurestore.Mutation
	for i := range 10000 {
		muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%d", i), map[string]featurestore.Value{"tier": featurestore.String("gold")}))
	}
	if _, err := s.Mutate(ctx, muts); err != nil {
		b.Fatal(err)
	}
	fold := func(r, f *featurestore.Record) bool { return false }
	for i := range 1000 {
		if _, err := s.Merge(ctx, featurestore.Merge{Into: fmt.Sprintf("c-%d", i), From: fmt.Sprintf("anon-%d", i), Fold: fold}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	ids := func(prefix string) []string {
		out := make([]string, 1000)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i*7%1000)
		}
		return out
	}
	present, absent, aliases := ids("c"), ids("nobody"), ids("anon")
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Load(ctx, present[i%len(present)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("absent/record read only", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if r, err := s.read(recordKey(nil, absent[i%len(absent)])); r != nil || err != nil {
				b.Fatal(r, err)
			}
			i++
		}
	})
	b.Run("absent", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Load(ctx, absent[i%len(absent)]); !errors.Is(err, featurestore.ErrNotFound) {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("alias", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var ae *featurestore.AliasError
			if _, err := s.Load(ctx, aliases[i%len(aliases)]); !errors.As(err, &ae) {
				b.Fatal(err)
			}
			i++
		}
	})
}
