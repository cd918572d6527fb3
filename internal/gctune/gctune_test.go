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

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		name         string
		percent, aim int
		share        float64
		want         int
	}{
		{"over the budget: raised by half", 20, 13, 0.08, 30},
		{"over the budget: never beyond 100", 80, 13, 0.5, 100},
		{"under half the budget: lowered by a tenth", 50, 13, 0.01, 45},
		{"under half the budget: not below the aim", 14, 13, 0, 13},
		{"between: held", 40, 13, 0.04, 40},
		{"between, under a raised aim: the aim", 40, 60, 0.04, 60},
		{"a small heap's aim is the default", 100, 100, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Step(tc.percent, tc.aim, tc.share, Options{}); got != tc.want {
				t.Errorf("Step(%d, aim %d, share %.2f) = %d, want %d", tc.percent, tc.aim, tc.share, got, tc.want)
			}
		})
	}
}

// fakeRuntime is what a Tuner reads, set by the test; each Tune is one
// second later on one CPU.
type fakeRuntime struct {
	live     int64
	gcCPU    float64
	free     int64
	clock    time.Time
	sets     []int
	releases int
}

func newFake(f *fakeRuntime) *Tuner {
	tu := New(Options{})
	tu.procs = 1
	f.clock = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	tu.read = func() reading { return reading{live: f.live, gcCPU: f.gcCPU, free: f.free} }
	tu.release = func() { f.releases++; f.free = 0 }
	tu.now = func() time.Time { f.clock = f.clock.Add(time.Second); return f.clock }
	tu.set = func(p int) int { f.sets = append(f.sets, p); return 100 }
	return tu
}

func TestTuneLowersToTheAimWhenCollectionsAreCheap(t *testing.T) {
	f := &fakeRuntime{live: 2 << 30} // aim 13
	tu := newFake(f)
	for range 30 {
		tu.Tune() // no collection ends: nothing costs
	}
	if p := tu.Percent(); p != 13 {
		t.Fatalf("after 30 quiet seconds GOGC = %d, want the aim 13 (sets %v)", p, f.sets)
	}
}

func TestTuneRaisesUnderAWriteLoadThenLowersWhenQuiet(t *testing.T) {
	f := &fakeRuntime{live: 2 << 30}
	tu := newFake(f)
	for range 30 {
		tu.Tune()
	}
	// A collection ends having taken half a second of the last second:
	// the average share jumps to 10%, over the budget.
	f.gcCPU += 0.5
	if p := tu.Tune(); p != 20 {
		t.Fatalf("after a costly collection GOGC = %d, want 13 raised by half (20)", p)
	}
	// No collection ends: the share decays but stays over half the
	// budget for a while: held, not raised again.
	if p := tu.Tune(); p != 20 {
		t.Fatalf("a second without a collection moved GOGC to %d", p)
	}
	f.gcCPU += 0.5
	if p := tu.Tune(); p != 30 {
		t.Fatalf("after a second costly collection GOGC = %d, want 30", p)
	}
	// Quiet (decisions: no garbage, no collection): the share decays
	// and GOGC goes back to the aim.
	for range 60 {
		tu.Tune()
	}
	if p := tu.Percent(); p != 13 {
		t.Fatalf("after a minute of quiet GOGC = %d, want the aim 13", p)
	}
}

// live keeps the test's allocation reachable.
var live [][]byte

func TestReadRuntime(t *testing.T) {
	live = make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	t.Cleanup(func() { live = nil })
	runtime.GC()
	r := readRuntime()()
	if r.live < 64<<20 || r.gcCPU <= 0 || r.free < 0 {
		t.Fatalf("read %+v: want ≥ 64 MiB live, a positive CPU and free memory", r)
	}
}

func TestRunRestoresTheDefault(t *testing.T) {
	var calls []int
	tu := New(Options{Every: time.Millisecond})
	tu.read = func() reading { return reading{live: 2 << 30} }
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
	if len(got) < 2 || got[0] != 90 || got[len(got)-1] != 100 {
		t.Fatalf("SetGCPercent calls %v: want 90 first and 100 last", got)
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

// TestTuneReturnsFreeHeapWhenQuiet: after a burst, free heap pages beyond
// twice the headroom are returned once the tuner is at its aim and the
// collector quiet, at most once per ReleaseEvery; never during the load.
func TestTuneReturnsFreeHeapWhenQuiet(t *testing.T) {
	f := &fakeRuntime{live: 1 << 30} // aim 13: headroom 128 MiB
	tu := newFake(f)
	// An import: every second a costly collection; GOGC goes up and
	// leaves a gigabyte free behind it.
	for range 10 {
		f.gcCPU += 0.5
		f.free = 1 << 30
		tu.Tune()
	}
	if f.releases != 0 {
		t.Fatalf("released %d times under load", f.releases)
	}
	// Quiet: GOGC comes back to the aim, then the free pages go back.
	for i := 0; f.releases == 0 && i < 120; i++ {
		tu.Tune()
	}
	if tu.Percent() != 13 || f.releases != 1 {
		t.Fatalf("after two quiet minutes GOGC %d, %d releases; want 13 and 1", tu.Percent(), f.releases)
	}
	// Another gigabyte left free: returned a minute after the last
	// return, not before.
	f.free = 1 << 30
	for range 59 {
		tu.Tune()
	}
	if f.releases != 1 {
		t.Fatalf("released again within a minute")
	}
	tu.Tune()
	if f.releases != 2 {
		t.Fatalf("not released a minute after the last return")
	}
	// Free memory within twice the headroom is the headroom's own: kept.
	f.free = 200 << 20
	for range 120 {
		tu.Tune()
	}
	if f.releases != 2 || tu.Releases() != 2 {
		t.Fatalf("released %d times (Releases %d) with 200 MiB free, under twice the 128 MiB headroom", f.releases, tu.Releases())
	}
}
