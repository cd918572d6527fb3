package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// statsReach is the contract of featurestore.ReachStore, run by RunStats
// on a store that implements it: sketches merge per cell on the store
// (across calls and concurrent adders), a period's reach merges its
// hours, and the estimate is the one of the same customers' sketch in
// memory, whatever the backend.
func statsReach(t *testing.T, st featurestore.StatsStore) {
	rs, ok := st.(featurestore.ReachStore)
	if !ok {
		t.Skip("the store keeps no reach sketches")
	}
	ctx := context.Background()
	email := featurestore.ReachKey{Hour: hour, Channel: "email"}
	emailB := featurestore.ReachKey{Hour: hour, Channel: "email", Experiment: "x", Variant: "b"}
	earlier := featurestore.ReachKey{Hour: hour - 5, Channel: "email"}
	web := featurestore.ReachKey{Hour: hour, Channel: "web"}

	got, err := rs.Reach(ctx, hour-24, hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("Reach of an empty store = %d cells, %v; want none", len(got), err)
	}
	add := func(deltas ...featurestore.ReachDelta) {
		t.Helper()
		if err := rs.AddReach(ctx, deltas); err != nil {
			t.Fatalf("AddReach: %v", err)
		}
	}
	add() // nothing
	// Customers 0-299 on email this hour, in two calls and two deltas of
	// one call that overlap; 200-599 five hours earlier; 0-49 on web;
	// 0-99 of variant b on email.
	add(featurestore.ReachDelta{Key: email, Sketch: sketchOf(0, 150)}, featurestore.ReachDelta{Key: email, Sketch: sketchOf(100, 200)},
		featurestore.ReachDelta{Key: web, Sketch: sketchOf(0, 50)})
	var wg sync.WaitGroup
	for _, d := range []featurestore.ReachDelta{{Key: email, Sketch: sketchOf(150, 300)}, {Key: earlier, Sketch: sketchOf(200, 600)}, {Key: emailB, Sketch: sketchOf(0, 100)}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rs.AddReach(ctx, []featurestore.ReachDelta{d}); err != nil {
				t.Errorf("AddReach: %v", err)
			}
		}()
	}
	wg.Wait()

	for _, tc := range []struct {
		name     string
		from, to int64
		want     map[featurestore.ReachKey]*featurestore.Sketch
	}{
		{"this hour", hour, hour, map[featurestore.ReachKey]*featurestore.Sketch{
			{Channel: "email"}: sketchOf(0, 300), {Channel: "web"}: sketchOf(0, 50), {Channel: "email", Experiment: "x", Variant: "b"}: sketchOf(0, 100)}},
		{"a day", hour - 23, hour, map[featurestore.ReachKey]*featurestore.Sketch{
			{Channel: "email"}: sketchOf(0, 600), {Channel: "web"}: sketchOf(0, 50), {Channel: "email", Experiment: "x", Variant: "b"}: sketchOf(0, 100)}},
		{"the earlier hour", hour - 5, hour - 5, map[featurestore.ReachKey]*featurestore.Sketch{{Channel: "email"}: sketchOf(200, 600)}},
		{"before", hour - 48, hour - 24, map[featurestore.ReachKey]*featurestore.Sketch{}},
	} {
		got, err := rs.Reach(ctx, tc.from, tc.to)
		if err != nil {
			t.Fatalf("%s: Reach: %v", tc.name, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d cells, want %d", tc.name, len(got), len(tc.want))
		}
		for k, w := range tc.want {
			g := got[k]
			switch {
			case g == nil:
				t.Errorf("%s: no cell %+v", tc.name, k)
			case *g != *w:
				t.Errorf("%s: cell %+v: sketch differs from the merge of its customers' (estimate %d, want %d)", tc.name, k, g.Estimate(), w.Estimate())
			}
		}
	}
	if got := func() int64 {
		r, _ := rs.Reach(ctx, hour-23, hour)
		return r[featurestore.ReachKey{Channel: "email"}].Estimate()
	}(); got < 576 || got > 624 {
		t.Errorf("email's reach over a day = %d, want 600 within 4%%", got)
	}

	if _, err := rs.Reach(ctx, hour-featurestore.MaxStatHours, hour); !errors.Is(err, featurestore.ErrStatRange) {
		t.Errorf("Reach over more than MaxStatHours: %v, want ErrStatRange", err)
	}
	for _, d := range []featurestore.ReachDelta{
		{Key: email},
		{Key: featurestore.ReachKey{Hour: hour, Channel: "e\x1fmail"}, Sketch: sketchOf(0, 1)},
	} {
		if err := rs.AddReach(ctx, []featurestore.ReachDelta{d}); err == nil {
			t.Errorf("AddReach(%+v): no error", d.Key)
		}
	}
}

// sketchOf is the sketch of customers c<from> to c<to-1>.
func sketchOf(from, to int) *featurestore.Sketch {
	s := new(featurestore.Sketch)
	for i := from; i < to; i++ {
		s.Add(featurestore.HashCustomer("c" + strconv.Itoa(i)))
	}
	return s
}
