package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

// testClock is a clock the tests move.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func openTest(t *testing.T, c *testClock) *Store {
	t.Helper()
	s, err := Open(Options{Dir: t.TempDir(), NoSync: true, Now: c.now, DedupeWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dedupeKeys counts the dedupe entries of the store.
func dedupeKeys(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(dedupePrefix), UpperBound: prefixEnd(dedupePrefix)})
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

func cartEvents(customer string, ids ...string) []featurestore.Event {
	evs := make([]featurestore.Event, len(ids))
	for i, id := range ids {
		evs[i] = featurestore.Event{ID: id, CustomerID: customer, Type: "cart_add", Time: storetest.Now}
	}
	return evs
}

// TestSweep: a pass deletes the expired entries it reads and no live one,
// reads at most its batch and resumes where it stopped, and an entry the
// sweeper found expired but that was claimed again before its deletion is
// kept.
func TestSweep(t *testing.T) {
	c := &testClock{storetest.Now}
	s := openTest(t, c)
	schema := storetest.Schema()
	ctx := context.Background()
	var old, fresh []string
	for i := range 10 {
		old = append(old, fmt.Sprintf("old-%d", i))
		fresh = append(fresh, fmt.Sprintf("new-%d", i))
	}
	if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, append(cartEvents("c-1", old...), cartEvents("c-2", old...)...), storetest.Now)); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour) // the old ids expire
	if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, cartEvents("c-1", fresh...), storetest.Now)); err != nil {
		t.Fatal(err)
	}
	if got := dedupeKeys(t, s); got != 30 {
		t.Fatalf("%d entries before sweeping, want 30", got)
	}
	// Passes of 7 keys: 30 keys take 5 passes, the last ending the walk.
	var from []byte
	passes := 0
	for {
		next, err := s.sweep(from, 7)
		if err != nil {
			t.Fatal(err)
		}
		passes++
		if next == nil {
			break
		}
		from = next
	}
	if passes != 5 {
		t.Errorf("%d passes of 7 keys over 30, want 5", passes)
	}
	if got := dedupeKeys(t, s); got != 10 {
		t.Errorf("%d entries after sweeping, want the 10 live ones", got)
	}
	if got := s.swept.Load(); got != 20 {
		t.Errorf("swept %d, want 20", got)
	}
	// The fresh ids still deduplicate, the old ones do not.
	applied := make([]bool, 2)
	if _, err := s.Mutate(ctx, featurestore.EventMutationsApplied(schema, cartEvents("c-1", "new-0", "old-0"), storetest.Now, applied)); err != nil {
		t.Fatal(err)
	}
	if applied[0] || !applied[1] {
		t.Errorf("applied %v after sweeping, want [false true]", applied)
	}

	// Found expired, then claimed again before the deletion: kept.
	key := dedupeKey(nil, "c-1", "old-0")
	if err := s.deleteExpired([][]byte{key}, c.t.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if exp, err := s.expiry(key); err != nil || exp <= c.t.UnixNano() {
		t.Errorf("entry claimed again: expiry %d, %v after deleteExpired; want it kept", exp, err)
	}
}

// TestLegacyRecordMigrates: the event ids inside a record of codec
// version 2 still deduplicate, and the first write moves them to the
// dedupe key space and rewrites the record without them.
func TestLegacyRecordMigrates(t *testing.T) {
	c := &testClock{storetest.Now}
	s := openTest(t, c)
	schema := storetest.Schema()
	legacy := storetest.LegacyRecord(
		featurestore.SeenEvent{ID: "expired", At: storetest.Now.Add(-time.Hour).UnixNano()},
		featurestore.SeenEvent{ID: "e-1", At: storetest.Now.Add(-time.Minute).UnixNano()},
	)
	if err := s.db.Set(recordKey(nil, "c-1"), legacy, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	applied := make([]bool, 2)
	if _, err := s.Mutate(context.Background(), featurestore.EventMutationsApplied(schema, cartEvents("c-1", "e-1", "expired"), storetest.Now, applied)); err != nil {
		t.Fatal(err)
	}
	if applied[0] || !applied[1] {
		t.Errorf("applied %v, want [false true]: e-1 is in the legacy record, expired is past the window", applied)
	}
	b, closer, err := s.db.Get(recordKey(nil, "c-1"))
	if err != nil {
		t.Fatal(err)
	}
	version := b[0]
	closer.Close()
	if version != 4 {
		t.Errorf("record version %d after the first write, want 4 (the current codec)", version)
	}
	exp, err := s.expiry(dedupeKey(nil, "c-1", "e-1"))
	if want := storetest.Now.Add(time.Hour - time.Minute).UnixNano(); err != nil || exp != want {
		t.Errorf("e-1 entry expires at %d, %v; want %d (an hour after it was applied)", exp, err, want)
	}
}

// TestFreshIDsSkipTheLookupButAreWritten: ids a writer marks fresh are not
// looked up (an id already applied is applied again: the writer vouched it
// could not be), and their entries are written, so a later write of the
// same id, not fresh, is a duplicate.
func TestFreshIDsSkipTheLookupButAreWritten(t *testing.T) {
	c := &testClock{storetest.Now}
	s := openTest(t, c)
	schema := storetest.Schema()
	ctx := context.Background()
	fresh := func(evs []featurestore.Event) []featurestore.Mutation {
		muts := featurestore.EventMutations(schema, evs, storetest.Now)
		for _, m := range muts {
			m.Dedupe.Fresh = true
		}
		return muts
	}
	carts := func() float64 {
		t.Helper()
		rec, err := s.Load(ctx, "c-1")
		if err != nil || rec == nil {
			t.Fatalf("load: %v, %v", rec, err)
		}
		for i, f := range schema.Features() {
			if f.Name == "cart_items" {
				return rec.Features(schema, storetest.Now, nil)[i].Num
			}
		}
		t.Fatal("no cart_items feature")
		return 0
	}
	if _, err := s.Mutate(ctx, fresh(cartEvents("c-1", "d1:o1", "d1:o2"))); err != nil {
		t.Fatal(err)
	}
	if got := dedupeKeys(t, s); got != 2 {
		t.Fatalf("%d dedupe entries after a fresh write, want 2", got)
	}
	// The same ids again, not fresh: duplicates.
	if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, cartEvents("c-1", "d1:o1", "d1:o2"), storetest.Now)); err != nil {
		t.Fatal(err)
	}
	if got := carts(); got != 2 {
		t.Fatalf("cart adds %v after a repeat of fresh ids, want 2", got)
	}
	// Fresh again: not looked up, so applied (the writer's promise was false).
	if _, err := s.Mutate(ctx, fresh(cartEvents("c-1", "d1:o1"))); err != nil {
		t.Fatal(err)
	}
	if got := carts(); got != 3 {
		t.Fatalf("cart adds %v after a fresh write of a known id, want 3 (no lookup)", got)
	}
}
