// Package gctune keeps the Go heap's headroom in proportion when a large,
// long-lived cache dominates it, within a budget of collector CPU.
//
// The collector's default (GOGC=100) lets the heap grow to twice its live
// data before the next collection: for a server whose live heap is mostly
// a cache of customers, that doubles the memory each cached customer
// costs, for garbage the requests produce at a rate that does not depend
// on the cache's size. The tuner aims GOGC at a headroom of
// max(MinHeadroom, live×Fraction): GOGC=100 while the heap is small, down
// to Fraction×100 when the cache is large.
//
// Less headroom means more collections, and each one marks every cached
// customer (about a microsecond each on a loaded 2-CPU machine: a
// collection of a million cached customers takes seconds of CPU). With
// little garbage (decisions allocate nothing) that costs nothing; under a
// write load it would take the CPU the writes need. So the tuner watches
// the collector's share of the process's CPU and raises GOGC (up to 100,
// never beyond the default) while that share is over MaxGCShare, and
// lowers it back towards the memory aim while the share is under half of
// it: memory is saved when it is cheap to save.
//
// Lowering GOGC lowers the heap's goal, but the runtime gives back to the
// system only slowly what a burst left free: after a bulk import (GOGC
// raised to keep the import's CPU) a million-customer node held 702 MiB
// of free heap pages resident, as much as its live heap, long after the
// import ended (docs/benchmarks.md). So once the tuner is at its aim and
// the collector is quiet, heap memory free but still resident beyond
// twice the headroom is returned (debug.FreeOSMemory: one collection, then
// every free page released), at most once per Options.ReleaseEvery.
package gctune

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	DefaultMinHeadroom  = 64 << 20
	DefaultFraction     = 0.125
	DefaultEvery        = time.Second
	DefaultMaxGCShare   = 0.05
	DefaultReleaseEvery = time.Minute
	// maxPercent is the collector's default: the tuner never lets the
	// heap grow more than it would untuned.
	maxPercent = 100
)

// Options configure a Tuner.
type Options struct {
	// MinHeadroom is the garbage the heap may gather between collections
	// however small the live heap (bytes; 0: DefaultMinHeadroom).
	MinHeadroom int64
	// Fraction of the live heap the headroom is at least (0:
	// DefaultFraction).
	Fraction float64
	// Every is how often the live heap is read (0: DefaultEvery).
	Every time.Duration
	// MaxGCShare is the share of the CPU available to the process
	// (GOMAXPROCS) the collector may take before GOGC is raised (0:
	// DefaultMaxGCShare).
	MaxGCShare float64
	// ReleaseEvery is the least time between two returns of free heap
	// memory to the system (each costs a collection; 0:
	// DefaultReleaseEvery).
	ReleaseEvery time.Duration
	// Released, if not nil, is called after each return of free heap
	// memory (a metric's counter).
	Released func()
}

func (o Options) withDefaults() Options {
	if o.MinHeadroom <= 0 {
		o.MinHeadroom = DefaultMinHeadroom
	}
	if o.Fraction <= 0 {
		o.Fraction = DefaultFraction
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.MaxGCShare <= 0 {
		o.MaxGCShare = DefaultMaxGCShare
	}
	if o.ReleaseEvery <= 0 {
		o.ReleaseEvery = DefaultReleaseEvery
	}
	return o
}

// Step returns the GOGC to set after one interval in which GOGC was
// percent, the memory aim was aim (Percent) and the collector took
// gcShare of the CPU available: raised by half (at most 100) when the
// share was over the budget, lowered by a tenth (not below aim) when it
// was under half of it, else unchanged. Raising fast and lowering slowly
// keeps a write load's CPU; the aim is reached within seconds of quiet.
func Step(percent, aim int, gcShare float64, o Options) int {
	o = o.withDefaults()
	switch {
	case gcShare > o.MaxGCShare:
		percent = int(math.Ceil(float64(percent) * 1.5))
	case gcShare < o.MaxGCShare/2:
		percent = int(float64(percent) * 0.9)
	}
	return min(max(percent, aim), maxPercent)
}

// Percent returns the GOGC that gives a live heap of live bytes a
// headroom of max(MinHeadroom, live×Fraction), at most 100 and at least
// Fraction×100 (rounded up).
func Percent(live int64, o Options) int {
	o = o.withDefaults()
	floor := int(math.Ceil(o.Fraction * 100))
	if live <= 0 {
		return maxPercent
	}
	p := int(math.Ceil(headroom(live, o) / float64(live) * 100))
	return min(max(p, floor), maxPercent)
}

// headroom is the garbage the tuner aims to let a heap of live bytes
// gather between collections.
func headroom(live int64, o Options) float64 {
	return max(float64(o.MinHeadroom), float64(live)*o.Fraction)
}

// Enabled reports whether the tuner should run: not when the operator set
// GOGC, whose value is then the policy.
func Enabled() bool {
	_, set := os.LookupEnv("GOGC")
	return !set
}

// SetLimit sets a soft memory limit of limit bytes unless the operator
// set GOMEMLIMIT or limit is not positive, and returns the limit in
// force afterwards (math.MaxInt64: none).
func SetLimit(limit int64) int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return debug.SetMemoryLimit(-1)
}

// Tuner sets GOGC from the live heap and the collector's CPU.
type Tuner struct {
	o       Options
	percent atomic.Int64
	set     func(int) int  // debug.SetGCPercent
	read    func() reading // readRuntime
	release func()         // debug.FreeOSMemory
	now     func() time.Time
	procs   int // GOMAXPROCS
	// gcCPU is the collector's CPU seconds at the last Tune, last its
	// time; share is the collector's share of the CPU available,
	// averaged over the last intervals (shareWeight).
	gcCPU float64
	last  time.Time
	share float64
	// released is when free heap memory was last returned.
	released time.Time
	releases atomic.Int64
}

// shareWeight is the weight of the last interval in the average share:
// about the last five intervals count.
const shareWeight = 0.2

// New returns a tuner; it changes nothing before Run or Tune.
func New(o Options) *Tuner {
	t := &Tuner{o: o.withDefaults(), set: debug.SetGCPercent, read: readRuntime(), release: debug.FreeOSMemory, now: time.Now, procs: runtime.GOMAXPROCS(0)}
	t.percent.Store(maxPercent)
	return t
}

// reading is what the tuner reads of the runtime.
type reading struct {
	live  int64   // bytes the last collection marked
	gcCPU float64 // the collector's CPU so far, seconds
	free  int64   // heap bytes free but resident (not returned)
}

// readRuntime returns a reader of the live heap, the collector's CPU
// (which the runtime updates at the end of each collection) and the heap
// memory free but not returned to the system.
func readRuntime() func() reading {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	u64 := func(v metrics.Value) int64 {
		if v.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(min(v.Uint64(), math.MaxInt64))
	}
	return func() (r reading) {
		metrics.Read(samples)
		r.live, r.free = u64(samples[0].Value), u64(samples[2].Value)
		if v := samples[1].Value; v.Kind() == metrics.KindFloat64 {
			r.gcCPU = v.Float64()
		}
		return r
	}
}

// Percent returns the GOGC the tuner last set; safe from any goroutine.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// Releases returns how many times the tuner returned free heap memory to
// the system; safe from any goroutine.
func (t *Tuner) Releases() int64 { return t.releases.Load() }

// Tune reads the live heap and the collector's CPU since the last call,
// sets GOGC and returns it. The collector's CPU moves when a collection
// ends; its share of the CPU available (GOMAXPROCS × the time since the
// last call) is averaged over the last intervals. GOGC takes a Step on
// that share when a collection ended in the interval, or when the share
// is low (quiet: lowering costs nothing), and else holds (a costly
// collection was already answered). At the aim and quiet, free heap
// memory beyond twice the headroom is returned to the system, at most once
// per ReleaseEvery. Tune is called from one goroutine at a time (Run's).
func (t *Tuner) Tune() int {
	r := t.read()
	live, gcCPU := r.live, r.gcCPU
	now := t.now()
	fresh := gcCPU != t.gcCPU
	if !t.last.IsZero() {
		if avail := now.Sub(t.last).Seconds() * float64(t.procs); avail > 0 {
			t.share = shareWeight*((gcCPU-t.gcCPU)/avail) + (1-shareWeight)*t.share
		}
	}
	t.gcCPU, t.last = gcCPU, now
	p, aim := int(t.percent.Load()), Percent(live, t.o)
	if fresh || t.share < t.o.MaxGCShare/2 {
		p = Step(p, aim, t.share, t.o)
	} else {
		p = min(max(p, aim), maxPercent)
	}
	if int64(p) != t.percent.Load() {
		t.set(p)
		t.percent.Store(int64(p))
	}
	quiet := p == aim && t.share < t.o.MaxGCShare/2
	if quiet && float64(r.free) > 2*headroom(live, t.o) && (t.released.IsZero() || now.Sub(t.released) >= t.o.ReleaseEvery) {
		t.release()
		t.released = now
		t.releases.Add(1)
		if t.o.Released != nil {
			t.o.Released()
		}
	}
	return p
}

// Run tunes every Options.Every until ctx ends, then restores the
// collector's default and returns ctx's error.
func (t *Tuner) Run(ctx context.Context) error {
	tick := time.NewTicker(t.o.Every)
	defer tick.Stop()
	defer func() { t.set(maxPercent); t.percent.Store(maxPercent) }()
	for {
		t.Tune()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
