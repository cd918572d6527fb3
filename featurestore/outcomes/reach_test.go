package outcomes_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/outcomes"
)

// reachGate is an embedded store whose AddReach can be made to fail.
type reachGate struct {
	*embedded.Store
	fail atomic.Bool
}

func (g *reachGate) AddReach(ctx context.Context, deltas []featurestore.ReachDelta) error {
	if g.fail.Load() {
		return errInjected
	}
	return g.Store.AddReach(ctx, deltas)
}

// TestReach: customers added on the decide path reach the store's
// sketches at the flush, each once per cell, and a failed flush keeps
// them for the next.
func TestReach(t *testing.T) {
	ctx := context.Background()
	s, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g := &reachGate{Store: s}
	r := outcomes.New(g, quiet)
	web := featurestore.ReachKey{Hour: 100, Channel: "web"}
	webB := featurestore.ReachKey{Hour: 100, Channel: "web", Experiment: "x", Variant: "b"}
	add := func(k featurestore.ReachKey, from, to int) {
		for i := from; i < to; i++ {
			r.AddReach(k, featurestore.HashCustomer("c"+strconv.Itoa(i)))
		}
	}
	estimate := func(k featurestore.ReachKey) int64 {
		t.Helper()
		got, err := s.Reach(ctx, 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		k.Hour = 0
		if got[k] == nil {
			return 0
		}
		return got[k].Estimate()
	}

	add(web, 0, 50)
	add(web, 0, 50) // the same customers again
	add(webB, 0, 20)
	g.fail.Store(true)
	if err := r.Flush(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Flush: err = %v, want the injected failure", err)
	}
	add(web, 50, 60)
	g.fail.Store(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	add(web, 55, 70) // after a flush, into a reused sketch
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := estimate(web); got != 70 {
		t.Errorf("web's reach = %d, want 70", got)
	}
	if got := estimate(webB); got != 20 {
		t.Errorf("web's reach in variant b = %d, want 20", got)
	}
}

// TestReachWithoutStore: a store that keeps no reach makes AddReach a
// no-op.
func TestReachWithoutStore(t *testing.T) {
	g := newGate(t) // only a StatsStore
	r := outcomes.New(g, quiet)
	r.AddReach(featurestore.ReachKey{Hour: 1, Channel: "web"}, 42)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAddReach(b *testing.B) {
	s, err := embedded.Open(embedded.Options{Dir: b.TempDir(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	r := outcomes.New(s, quiet)
	k := featurestore.ReachKey{Hour: 1, Channel: "web"}
	b.ReportAllocs()
	for b.Loop() {
		r.AddReach(k, featurestore.HashCustomer("customer-123456"))
	}
}
