package cache_test

import (
	"runtime"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
)

// TestCostMatchesHeap: what the cache counts against MaxCost for a
// customer is what the customer costs on the heap, within 25%, so that
// MaxCost is a bound an operator can set in bytes.
func TestCostMatchesHeap(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap; the race detector changes it")
	}
	s := retailSchema(t)
	c, err := cache.New(nullBackend{featurestore.NewLocks()}, cache.Options{MaxCost: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const lo, hi = 2_000, 12_000
	fillPopulation(t, c, s, 0, lo)
	costBefore := c.Metrics().CostAdded
	before := heapAfterGC()
	fillPopulation(t, c, s, lo, hi)
	after := heapAfterGC()
	costAfter := c.Metrics().CostAdded
	runtime.KeepAlive(c)
	heap := float64(after-before) / (hi - lo)
	cost := float64(costAfter-costBefore) / (hi - lo)
	if cost < heap*0.8 || cost > heap*1.25 {
		t.Errorf("a cached customer costs %.0f bytes, holds %.0f on the heap", cost, heap)
	}
	t.Logf("a cached customer costs %.0f bytes, holds %.0f on the heap", cost, heap)
}
