package main

import (
	"testing"

	"github.com/nextbest/nextbest/featurestore/cache"
)

func TestSplitMemory(t *testing.T) {
	const gib = int64(1 << 30)
	limit := func(n int64) func() (int64, string) { return func() (int64, string) { return n, "test" } }
	tests := []struct {
		name                          string
		budget, cacheSize, blockCache int64
		embedded                      bool
		limit                         int64
		wantBudget, wantBlock         int64
		wantWhole                     int64 // cache + sketch
	}{
		{"from the limit, embedded", 0, 0, 0, true, 24 * gib, 8 * gib, 1 * gib, 7 * gib},
		{"from the limit, redis", 0, 0, 0, false, 24 * gib, 8 * gib, 0, 8 * gib},
		{"block cache at its ceiling", 32 * gib, 0, 0, true, 0, 32 * gib, maxBlockCache, 30 * gib},
		{"block cache at its floor", 64 << 20, 0, 0, true, 0, 64 << 20, minBlockCache, 48 << 20},
		{"no limit known", 0, 0, 0, true, 0, fallbackBudget, 40 << 20, fallbackBudget - 40<<20},
		{"cache set, block cache the rest", 4 * gib, 3 * gib, 0, true, 0, 4 * gib, 1 * gib, 3 * gib},
		{"both set", 4 * gib, 1 * gib, 256 << 20, true, 0, 4 * gib, 256 << 20, 1 * gib},
		{"block cache set", 4 * gib, 0, 1 * gib, true, 0, 4 * gib, 1 * gib, 3 * gib},
		{"cache set tiny", 0, 1 << 10, 0, true, 24 * gib, 8 * gib, maxBlockCache, 1 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := splitMemory(tt.budget, tt.cacheSize, tt.blockCache, tt.embedded, limit(tt.limit))
			if m.budget != tt.wantBudget || m.blockCache != tt.wantBlock {
				t.Errorf("budget %d, block cache %d; want %d, %d", m.budget, m.blockCache, tt.wantBudget, tt.wantBlock)
			}
			if got := m.cache + m.sketch; got != tt.wantWhole && m.cache != tt.wantWhole/2 {
				t.Errorf("cache %d + sketch %d = %d, want %d", m.cache, m.sketch, got, tt.wantWhole)
			}
			if want := cache.SketchBytes(cache.DefaultCounters(cache.Options{MaxCost: tt.wantWhole})); m.sketch != want {
				t.Errorf("sketch %d, want %d", m.sketch, want)
			}
		})
	}
}

func TestParseMemoryLimits(t *testing.T) {
	cgroups := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max\n", 0, false},
		{"1073741824\n", 1 << 30, true},
		{"9223372036854771712\n", 0, false}, // cgroup v1: no limit
		{"", 0, false},
	}
	for _, c := range cgroups {
		if got, ok := parseCgroupLimit([]byte(c.in)); got != c.want || ok != c.ok {
			t.Errorf("parseCgroupLimit(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	meminfo := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"MemTotal:       24684032 kB\nMemFree:        19484000 kB\n", 24684032 << 10, true},
		{"MemFree:        19484000 kB\n", 0, false},
		{"MemTotal: lots\n", 0, false},
	}
	for _, c := range meminfo {
		if got, ok := parseMemTotal([]byte(c.in)); got != c.want || ok != c.ok {
			t.Errorf("parseMemTotal(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
