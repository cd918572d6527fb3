package main

import (
	"bufio"
	"bytes"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/internal/gctune"
)

// Sharing the memory budget (--memory) between the customer cache and the
// embedded store's block cache. The cache holds the customers decisions
// read; the block cache holds what pebble reads of its tables for the
// rest: the index and bloom filter blocks that every event's dedupe
// lookup and every cache miss go through, and the data blocks of recent
// misses. An eighth of the budget, within bounds, keeps the filters and
// indexes of a store of tens of millions of customers resident.
const (
	blockCacheShare = 8
	minBlockCache   = 16 << 20
	maxBlockCache   = 2 << 30
	minRecordCache  = 16 << 20
	// budgetShare: the default budget is this fraction of the memory
	// limit. The budget is live data; the heap gathers garbage between
	// collections (an eighth of the live heap or more: tuneGC), and the
	// process needs memory besides (the catalog, connections, pebble's
	// memtables): a third leaves room for both.
	budgetShare = 3
)

// fallbackBudget is the budget when the memory limit cannot be read.
const fallbackBudget = 320 << 20

// memorySplit is how the memory budget is shared.
type memorySplit struct {
	budget     int64  // the whole, bytes
	source     string // where budget came from
	cache      int64  // the record cache's MaxCost
	sketch     int64  // the record cache's admission sketch
	blockCache int64  // pebble's block cache; 0 with Redis
}

// splitMemory shares budget (0: budgetShare of limit(), or fallbackBudget
// if it is unknown) between the record cache and, for the embedded store,
// the block cache. A cache or block cache size set explicitly is taken as
// is and the other gets the rest. limit returns the memory limit of the
// process and where it was read, 0 if unknown.
func splitMemory(budget, cacheSize, blockCache int64, embedded bool, limit func() (int64, string)) memorySplit {
	m := memorySplit{budget: budget, source: "--memory"}
	if budget == 0 {
		if l, src := limit(); l > 0 {
			m.budget, m.source = l/budgetShare, "a third of the memory limit ("+src+")"
		} else {
			m.budget, m.source = fallbackBudget, "a fallback: no memory limit found"
		}
	}
	if embedded {
		m.blockCache = blockCache
		if m.blockCache == 0 {
			m.blockCache = min(max(m.budget/blockCacheShare, minBlockCache), maxBlockCache)
			if cacheSize > 0 {
				m.blockCache = min(max(m.budget-cacheSize, minBlockCache), maxBlockCache)
			}
		}
	}
	whole := cacheSize
	if whole == 0 {
		whole = max(m.budget-m.blockCache, minRecordCache)
	}
	// The sketch is sized from the entries that fit: take it out of the
	// cache's share.
	m.sketch = cache.SketchBytes(cache.DefaultCounters(cache.Options{MaxCost: whole}))
	m.cache = max(whole-m.sketch, whole/2)
	return m
}

// memoryLimit returns the memory the process may use: the smaller of its
// cgroup's limit (v2, else v1) and the machine's memory, 0 if neither
// can be read.
func memoryLimit() (int64, string) {
	limit, src := int64(0), ""
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			if n, ok := parseCgroupLimit(b); ok {
				limit, src = n, "cgroup"
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if n, ok := parseMemTotal(b); ok && (limit == 0 || n < limit) {
			limit, src = n, "/proc/meminfo"
		}
	}
	return limit, src
}

// parseCgroupLimit reads a cgroup memory limit: a number of bytes, "max"
// (v2) or a number beyond the machine (v1) for none.
func parseCgroupLimit(b []byte) (int64, bool) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}

// parseMemTotal reads MemTotal from /proc/meminfo, in bytes.
func parseMemTotal(b []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n <= 0 {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
}

// softLimitShare: the soft memory limit is this share of the process's
// memory limit, so the collector works harder before the kernel's OOM
// killer would act.
const softLimitShare = 0.9

// tuneGC sets the Go collector's policy for a server whose heap is mostly
// its cache of customers: a soft memory limit (unless GOMEMLIMIT is set)
// and a headroom in proportion to the live heap (unless GOGC is set;
// gctune). It returns the tuner to run, nil when GOGC is the operator's.
func tuneGC(log *slog.Logger, set *metrics.Set, limit func() (int64, string)) *gctune.Tuner {
	l, src := limit()
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		src = "GOMEMLIMIT"
	}
	soft := gctune.SetLimit(int64(float64(l) * softLimitShare))
	var t *gctune.Tuner
	if gctune.Enabled() {
		t = gctune.New(gctune.Options{Released: set.NewCounter("nextbest_gc_releases_total").Inc})
	}
	set.NewGauge("nextbest_gc_percent", func() float64 {
		if t == nil {
			return 100
		}
		return float64(t.Percent())
	})
	attrs := []any{"tuned", t != nil}
	if soft != math.MaxInt64 {
		attrs = append(attrs, "soft_limit", soft, "limit_from", src)
	}
	log.Info("garbage collector", attrs...)
	return t
}
