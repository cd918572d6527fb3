package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/redistest"
)

// TestMergeResumes interrupts the merge protocol (alias.go) after each
// step, by writing to Redis what a node that died there leaves, and
// checks that running the merge again finishes it with the anonymous
// counts added exactly once.
func TestMergeResumes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	schema := testSchema(t)
	ctx := context.Background()
	now := time.Now()
	carts := func(id string, n int) {
		t.Helper()
		evs := make([]featurestore.Event, n)
		for i := range evs {
			evs[i] = featurestore.Event{CustomerID: id, Type: "cart_add", Time: now}
		}
		if _, err := newStore(t, c).Mutate(ctx, featurestore.EventMutations(schema, evs, now)); err != nil {
			t.Fatal(err)
		}
	}
	merge := featurestore.Merge{Into: "known", From: "anon", Fold: func(r, f *featurestore.Record) bool { return r.Merge(schema, f, now) }}
	count := func() float64 {
		t.Helper()
		r, err := newStore(t, c).Load(ctx, "known")
		if err != nil {
			t.Fatal(err)
		}
		return r.Features(schema, now, nil)[1].Num
	}
	tests := []struct {
		name string
		// interrupt leaves what a merge that stopped leaves; the anonymous
		// record is in "nb:{anon}" (field "r").
		interrupt func(t *testing.T)
	}{
		{"after the intent", func(t *testing.T) {
			if err := c.HSet(ctx, "nb:{anon}", "a", "known").Err(); err != nil {
				t.Fatal(err)
			}
			c.HIncrBy(ctx, "nb:{anon}", "v", 1)
		}},
		{"after the fold", func(t *testing.T) {
			r, err := c.HGet(ctx, "nb:{anon}", "r").Result()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newStore(t, c).Merge(ctx, merge); err != nil {
				t.Fatal(err)
			}
			if err := c.HSet(ctx, "nb:{anon}", "r", r).Err(); err != nil { // not yet cleaned up
				t.Fatal(err)
			}
		}},
		{"after the clean-up", func(t *testing.T) {
			if _, err := newStore(t, c).Merge(ctx, merge); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			carts("known", 2)
			carts("anon", 3)
			tt.interrupt(t)
			for i := range 2 {
				if _, err := newStore(t, c).Merge(ctx, merge); err != nil {
					t.Fatalf("merge %d: %v", i+1, err)
				}
				if got := count(); got != 5 {
					t.Errorf("after merge %d: carts = %v, want 5", i+1, got)
				}
			}
			if n, err := c.HExists(ctx, "nb:{anon}", "r").Result(); err != nil || n {
				t.Errorf("the anonymous record is still there (%v, %v)", n, err)
			}
		})
	}
}
