package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/internal/redistest"
)

func testSchema(t *testing.T) *featurestore.Schema {
	t.Helper()
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString},
		{Name: "carts", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "cart_add", Op: featurestore.OpCount}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newStore(t *testing.T, c redis.UniversalClient) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConcurrentMutationsAcrossClients(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	schema := testSchema(t)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	// Two clients stand for two nodes.
	var stores []*redisstore.Store
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		stores = append(stores, newStore(t, c))
	}
	if _, err := stores[0].Load(ctx, "c-1"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Fatalf("Load(unknown) error = %v, want ErrNotFound", err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ev := []featurestore.Event{{CustomerID: "c-1", Type: "cart_add", Time: now}}
			_, err := stores[i%2].Mutate(ctx, featurestore.EventMutations(schema, ev, now))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rec, err := stores[1].Load(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Features(schema, now, nil)[1].Num; got != n {
		t.Errorf("carts = %v, want %d", got, n)
	}
}

func TestWatchSeesOtherNodesWrites(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	schema := testSchema(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca := redis.NewClient(&redis.Options{Addr: srv.Addr})
	cb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { ca.Close(); cb.Close() })
	a, b := newStore(t, ca), newStore(t, cb)

	dropped := make(chan string, 10)
	resets := make(chan struct{}, 10)
	go b.Watch(ctx, func(id string) { dropped <- id }, func() { resets <- struct{}{} })
	select {
	case <-resets:
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription")
	}
	muts := []featurestore.Mutation{featurestore.AttrsMutation("c-9", map[string]featurestore.Value{"tier": featurestore.String("gold")})}
	if _, err := a.Mutate(ctx, muts); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-dropped:
		if id != "c-9" {
			t.Errorf("dropped %q, want c-9", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no invalidation within 5s")
	}
	// b's own writes are not echoed back to it.
	if _, err := b.Mutate(ctx, muts); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Mutate(ctx, []featurestore.Mutation{featurestore.AttrsMutation("c-10", map[string]featurestore.Value{"tier": featurestore.String("x")})}); err != nil {
		t.Fatal(err)
	}
	if id := <-dropped; id != "c-10" {
		t.Errorf("dropped %q after own write, want only c-10 from the other node", id)
	}
	_ = schema
}
