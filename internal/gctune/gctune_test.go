package gctune

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		live int64
		o    Options
		want int
	}{
		{"before the first collection", 0, Options{}, 100},
		{"small heap: the default", 16 * mib, Options{}, 100},
		{"headroom equals the minimum", 64 * mib, Options{}, 100},
		{"twice the minimum", 128 * mib, Options{}, 50},
		{"the minimum as a share, rounded up", 300 * mib, Options{}, 22},
		{"the fraction's floor", 1024 * mib, Options{}, 13},
		{"a large cache", 8 << 30, Options{}, 13},
		{"own minimum and fraction", 400 * mib, Options{MinHeadroom: 100 * mib, Fraction: 0.5}, 50},
		{"own minimum above the heap", 10 * mib, Options{MinHeadroom: 100 * mib, Fraction: 0.5}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.live, tc.o); got != tc.want {
				t.Errorf("Percent(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
			}
		})
	}
}

// live keeps the tests' allocation reachable.
var live [][]byte

func TestTuneReadsTheLiveHeap(t *testing.T) {
	live = make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	t.Cleanup(func() { live = nil })
	runtime.GC()
	var calls []int
	tu := New(Options{MinHeadroom: 1 << 20, Fraction: 0.25})
	tu.set = func(p int) int { calls = append(calls, p); return 100 }
	if p := tu.Tune(); p != 25 {
		t.Fatalf("Tune with ≥ 64 MiB live = %d, want 25 (the fraction)", p)
	}
	if p := tu.Tune(); p != 25 || len(calls) != 1 {
		t.Fatalf("second Tune = %d after %v: want 25 and no second call", p, calls)
	}
	if tu.Percent() != 25 {
		t.Fatalf("Percent = %d", tu.Percent())
	}
}

func TestRunRestoresTheDefault(t *testing.T) {
	var calls []int
	tu := New(Options{MinHeadroom: 1, Fraction: 0.5, Every: time.Millisecond})
	done := make(chan []int)
	tu.set = func(p int) int { calls = append(calls, p); return 100 }
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_ = tu.Run(ctx)
		done <- calls
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	got := <-done
	if len(got) < 2 || got[0] != 50 || got[len(got)-1] != 100 {
		t.Fatalf("SetGCPercent calls %v: want 50 first and 100 last", got)
	}
	if tu.Percent() != 100 {
		t.Fatalf("Percent after Run = %d", tu.Percent())
	}
}

func TestEnabledFollowsGOGC(t *testing.T) {
	t.Setenv("GOGC", "200")
	if Enabled() {
		t.Fatal("Enabled with GOGC set")
	}
}
