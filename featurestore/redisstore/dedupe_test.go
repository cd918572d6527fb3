package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/featurestore/storetest"
	"github.com/nextbest/nextbest/internal/redistest"
)

// TestDedupeAcrossNodes: the same events sent through two nodes at once
// are applied once each, those that change the record and those that
// change nothing (whose claim does not move the record's version, so only
// the script's check of the entry stops the second node).
func TestDedupeAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	schema := testSchema(t)
	now := storetest.Now
	var stores []*redisstore.Store
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		stores = append(stores, newStore(t, c))
	}
	const ids, sends = 20, 6
	var applied [ids]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, ids*sends)
	for i := range ids * sends {
		wg.Go(func() {
			id := i % ids
			typ := "cart_add"
			if id%2 == 1 {
				typ = "page_view" // feeds no feature
			}
			a := make([]bool, 1)
			ev := []featurestore.Event{{ID: fmt.Sprintf("e-%d", id), CustomerID: "c-1", Type: typ, Time: now}}
			if _, err := stores[i%2].Mutate(context.Background(), featurestore.EventMutationsApplied(schema, ev, now, a)); err != nil {
				errs <- err
				return
			}
			if a[0] {
				applied[id].Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for id := range applied {
		if n := applied[id].Load(); n != 1 {
			t.Errorf("e-%d applied %d times, want once", id, n)
		}
	}
	rec, err := stores[0].Load(context.Background(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Features(schema, now, nil)[1].Num; got != ids/2 {
		t.Errorf("carts = %v, want %d", got, ids/2)
	}
}

// TestDedupeKeys: a customer's dedupe entries sit under its key, expire
// with the window by Redis's clock too, and never collide with another
// customer's keys, whatever bytes the ids hold. (That they share the
// customer's hash slot, the contract suite on a cluster shows: the script
// would fail with CROSSSLOT.)
func TestDedupeKeys(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	s, err := redisstore.New(redisstore.Options{Client: c, DedupeWindow: time.Hour, Now: func() time.Time { return storetest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	schema := testSchema(t)
	// "a}:e:x:1"'s hash key would be "nb:{a}:e:x:1}", customer a's entry
	// for "x" is "nb:{a}:e:x:1": distinct, or one would be the wrong type.
	events := []featurestore.Event{
		{ID: "x", CustomerID: "a", Type: "cart_add", Time: storetest.Now},
		{ID: "x", CustomerID: "a}:e:x:1", Type: "cart_add", Time: storetest.Now},
		{ID: "b}:e:x", CustomerID: "a", Type: "cart_add", Time: storetest.Now},
	}
	for range 2 {
		if _, err := s.Mutate(ctx, featurestore.EventMutations(schema, events, storetest.Now)); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]float64{"a": 2, "a}:e:x:1": 1} {
		rec, err := s.Load(ctx, id)
		if err != nil {
			t.Fatalf("Load(%q): %v", id, err)
		}
		if got := rec.Features(schema, storetest.Now, nil)[1].Num; got != want {
			t.Errorf("%q: carts = %v, want %v", id, got, want)
		}
	}
	keys, err := c.Keys(ctx, "nb:{a}*").Result()
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for _, k := range keys {
		if typ := c.Type(ctx, k).Val(); typ == "hash" {
			continue // a record
		}
		entries++
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("%q: PTTL %v, %v; want at most the window", k, ttl, err)
		}
	}
	if len(keys) != 5 || entries != 3 { // two records, three entries
		t.Errorf("keys under nb:{a}: %q, want two records and three entries", keys)
	}
}

// TestLegacyRecordMigrates: the event ids inside a record of codec
// version 2 still deduplicate, and the first write moves them to entries
// and rewrites the record without them.
func TestLegacyRecordMigrates(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	s, err := redisstore.New(redisstore.Options{Client: c, DedupeWindow: time.Hour, Now: func() time.Time { return storetest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	legacy := storetest.LegacyRecord(
		featurestore.SeenEvent{ID: "expired", At: storetest.Now.Add(-time.Hour).UnixNano()},
		featurestore.SeenEvent{ID: "e-1", At: storetest.Now.Add(-time.Minute).UnixNano()},
	)
	if err := c.HSet(ctx, "nb:{c-1}", "v", "1", "r", legacy).Err(); err != nil {
		t.Fatal(err)
	}
	applied := make([]bool, 2)
	events := []featurestore.Event{
		{ID: "e-1", CustomerID: "c-1", Type: "cart_add", Time: storetest.Now},
		{ID: "expired", CustomerID: "c-1", Type: "cart_add", Time: storetest.Now},
	}
	if _, err := s.Mutate(ctx, featurestore.EventMutationsApplied(testSchema(t), events, storetest.Now, applied)); err != nil {
		t.Fatal(err)
	}
	if applied[0] || !applied[1] {
		t.Errorf("applied %v, want [false true]: e-1 is in the legacy record, expired is past the window", applied)
	}
	r, err := c.HGet(ctx, "nb:{c-1}", "r").Bytes()
	if err != nil || len(r) == 0 || r[0] != 4 {
		t.Errorf("record after the first write: % x, %v; want version 4 (the current codec)", r, err)
	}
	want := storetest.Now.Add(time.Hour - time.Minute).UnixMilli()
	if got, err := c.Get(ctx, "nb:{c-1}:e:e-1:3").Int64(); err != nil || got != want {
		t.Errorf("e-1 entry: %d, %v; want expiry %d (an hour after it was applied)", got, err, want)
	}
}

// TestDedupeClaimRace: node a reads the customer, node b applies the same
// event id and commits, then a tries to commit: a's script must refuse
// (b's entry), and a's next run sees the id as applied. Whether a's
// mutation changes the record or not: when it does not, the version does
// not tell a write happened, only the entry does.
func TestDedupeClaimRace(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	schema := testSchema(t)
	ctx := context.Background()
	ca := redis.NewClient(&redis.Options{Addr: srv.Addr})
	cb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { ca.Close(); cb.Close() })
	a, b := newStore(t, ca), newStore(t, cb)
	for _, changes := range []bool{false, true} {
		t.Run(fmt.Sprintf("changes record %v", changes), func(t *testing.T) {
			customer := fmt.Sprintf("c-%v", changes)
			d := &featurestore.Dedupe{IDs: []string{"x"}}
			var seen []bool
			entered, resume := make(chan struct{}), make(chan struct{})
			m := featurestore.Mutation{CustomerID: customer, Dedupe: d, Apply: func(r *featurestore.Record) bool {
				seen = append(seen, d.Seen[0])
				if len(seen) == 1 {
					close(entered)
					<-resume
				}
				if changes && !d.Seen[0] {
					r.SetAttr("tier", featurestore.String("a"))
					return true
				}
				return false
			}}
			done := make(chan error, 1)
			go func() {
				_, err := a.Mutate(ctx, []featurestore.Mutation{m})
				done <- err
			}()
			<-entered
			applied := make([]bool, 1)
			ev := []featurestore.Event{{ID: "x", CustomerID: customer, Type: "page_view", Time: storetest.Now}}
			if _, err := b.Mutate(ctx, featurestore.EventMutationsApplied(schema, ev, storetest.Now, applied)); err != nil {
				t.Fatal(err)
			}
			close(resume)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !applied[0] || len(seen) != 2 || seen[0] || !seen[1] {
				t.Errorf("b applied %v; a's runs saw the id as applied: %v; want b true, a [false true]", applied[0], seen)
			}
		})
	}
}
