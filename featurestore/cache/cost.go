package cache

import (
	"unsafe"

	"github.com/nextbest/nextbest/featurestore"
)

// Sizes of the parts of a record, and a rough per-entry overhead of a Go
// map beyond its key and value (buckets, tophash, load factor).
const (
	recordSize   = int64(unsafe.Sizeof(featurestore.Record{}))
	valueSize    = int64(unsafe.Sizeof(featurestore.Value{}))
	aggSize      = int64(unsafe.Sizeof(featurestore.AggState{}))
	bucketSize   = int64(unsafe.Sizeof(featurestore.Bucket{}))
	seenSize     = int64(unsafe.Sizeof(featurestore.SeenEvent{}))
	stringSize   = int64(unsafe.Sizeof(""))
	pointerSize  = int64(unsafe.Sizeof(&featurestore.AggState{}))
	mapEntrySize = 16
	mapSize      = 48 // a map header and its first group
)

// cost estimates the bytes r holds in memory, cheaply: one pass over its
// maps and slices, no reflection. A negative entry (nil) costs nothing
// beyond ristretto's own per-item bookkeeping, which ristretto adds.
func cost(r *featurestore.Record) int64 {
	if r == nil {
		return 0
	}
	n := recordSize
	if r.Attrs != nil {
		n += mapSize
		for name, v := range r.Attrs {
			n += mapEntrySize + stringSize + int64(len(name)) + valueCost(v)
		}
	}
	if r.Aggs != nil {
		n += mapSize
		for name, a := range r.Aggs {
			n += mapEntrySize + stringSize + int64(len(name)) + pointerSize + aggSize
			n += int64(cap(a.Buckets))*bucketSize + valueCost(a.Last) - valueSize
		}
	}
	n += int64(cap(r.Seen)) * seenSize
	for _, s := range r.Seen {
		n += int64(len(s.ID))
	}
	return n
}

// valueCost is the size of v including what it points to.
func valueCost(v featurestore.Value) int64 {
	n := valueSize + int64(len(v.Str))
	if v.List != nil {
		n += int64(cap(v.List)) * stringSize
		for _, s := range v.List {
			n += int64(len(s))
		}
	}
	return n
}
