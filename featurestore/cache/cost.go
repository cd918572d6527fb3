package cache

import "github.com/nextbest/nextbest/featurestore"

// entryOverhead is what an entry holds beyond its packed record and the
// item ristretto counts itself (ristretto adds the size of its storeItem
// with an interface value to every cost): the rest of the storeItem of
// an entry, the slack of ristretto's maps (the store's, the policy's
// cost per key) and the rounding of the record's allocation to its size
// class. Measured: BenchmarkResident's B/customer (the heap slope per
// cached customer of the retail example) minus its mean packed size and
// ristretto's item; TestCostMatchesHeap keeps it honest.
const entryOverhead = 160

// TypicalEntryCost is the cost of a cached customer of the retail example
// (12 features, 3 windowed, a few dozen events), as BenchmarkResident
// measures it: what Options.Entries assumes by default.
const TypicalEntryCost = 720

// cost is the bytes an entry holds in memory beyond ristretto's item: its
// packed record and entryOverhead. A negative entry (nil) holds the
// overhead only.
func cost(p featurestore.Packed) int64 {
	return int64(cap(p)) + entryOverhead
}
