// Package gctune keeps the Go heap's headroom in proportion when a large,
// long-lived cache dominates it.
//
// The collector's default (GOGC=100) lets the heap grow to twice its live
// data before the next collection: for a server whose live heap is mostly
// a cache of customers, that doubles the memory each cached customer
// costs, for garbage the requests produce at a rate that does not depend
// on the cache's size. The tuner sets GOGC from the live heap after each
// collection so that the headroom is max(MinHeadroom, live×Fraction):
// GOGC=100 while the heap is small, down to Fraction×100 when the cache
// is large. Most of a large cache's bytes hold no pointers (the cache
// keeps customers packed), so the extra collections mark little.
package gctune

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	DefaultMinHeadroom = 64 << 20
	DefaultFraction    = 0.125
	DefaultEvery       = time.Second
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
	return o
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
	headroom := max(float64(o.MinHeadroom), float64(live)*o.Fraction)
	p := int(math.Ceil(headroom / float64(live) * 100))
	return min(max(p, floor), maxPercent)
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

// Tuner sets GOGC from the live heap.
type Tuner struct {
	o       Options
	samples []metrics.Sample
	percent atomic.Int64
	set     func(int) int // debug.SetGCPercent
}

// New returns a tuner; it changes nothing before Run or Tune.
func New(o Options) *Tuner {
	t := &Tuner{
		o:       o.withDefaults(),
		samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
		set:     debug.SetGCPercent,
	}
	t.percent.Store(maxPercent)
	return t
}

// Percent returns the GOGC the tuner last set; safe from any goroutine.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// Tune reads the live heap and sets GOGC from it, and returns the value.
// The live heap is what the last collection marked (0 before the first).
// Tune is called from one goroutine at a time (Run's).
func (t *Tuner) Tune() int {
	metrics.Read(t.samples)
	live := int64(0)
	if s := t.samples[0]; s.Value.Kind() == metrics.KindUint64 {
		live = int64(min(s.Value.Uint64(), math.MaxInt64))
	}
	p := Percent(live, t.o)
	if int64(p) != t.percent.Load() {
		t.set(p)
		t.percent.Store(int64(p))
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
