package cache

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// TestCostTracksMemory compares the estimate with the bytes a deep copy
// of the record allocates, for records small and large: the estimate need
// not be exact, but it must scale with the record.
func TestCostTracksMemory(t *testing.T) {
	if cost(nil) != 0 {
		t.Errorf("cost(nil) = %d, want 0", cost(nil))
	}
	for _, size := range []int{0, 1, 10, 100} {
		r := &featurestore.Record{}
		for i := range size {
			r.SetAttr(fmt.Sprintf("attr-%d", i), featurestore.String("some value"))
			r.SetAttr(fmt.Sprintf("list-%d", i), featurestore.List([]string{"a", "bb", "ccc"}))
			r.Seen = append(r.Seen, featurestore.SeenEvent{ID: fmt.Sprintf("event-%d", i), At: 1e18}) // a record of codec version 2
			if r.Aggs == nil {
				r.Aggs = map[string]*featurestore.AggState{}
			}
			r.Aggs[fmt.Sprintf("agg-%d", i)] = &featurestore.AggState{Buckets: make([]featurestore.Bucket, 20), Last: featurestore.String("x")}
		}
		got, alloc := cost(r), allocated(r)
		if got < alloc/2 || got > alloc*2 {
			t.Errorf("%d entries each: cost %d, a copy allocates %d bytes", size, got, alloc)
		}
	}
}

// allocated returns the bytes a deep copy of r allocates, on average.
// TotalAlloc counts every goroutine's allocations (other tests' caches run
// background goroutines), so it takes the least of several trials of many
// copies, which noise can only increase.
func allocated(r *featurestore.Record) int64 {
	const n = 500
	best := int64(-1)
	for range 5 {
		keep := make([]*featurestore.Record, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range keep {
			keep[i] = r.Clone()
		}
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(keep)
		if got := int64(after.TotalAlloc-before.TotalAlloc) / n; best < 0 || got < best {
			best = got
		}
	}
	return best
}
