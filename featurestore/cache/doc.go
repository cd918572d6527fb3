// Package cache is an in-memory tier of customer records, on ristretto,
// in front of any feature store backend (the embedded store, Redis).
//
// A write is visible to the very next read: Mutate returns only once the
// backend has committed and the cache holds the new record or no record
// for that customer, and no read that started before the write can put an
// older record back afterwards. Nor does a reader ever see a customer go
// back in time while a write is in progress. Per customer, writes and the
// inserts of cache misses are ordered by the backend's customer locks
// (Backend.Locks) and a generation counter per stripe; concurrent misses
// of one customer share one backend load.
//
// Who owns which lock: the backend owns the customer locks; the cache
// holds a write's customers' locks across the backend's Apply, which takes
// none itself, and across the cache update, then releases them before
// waiting for durability. So a write takes one lock per customer, and
// whatever else the backend does to a customer under the same lock (the
// embedded store's sweeper of expired event ids) excludes the cache's
// writes too. Because every write of an embedded store goes through its
// cache under that lock, the cached record is current, and the cache
// hands it to Apply as the base of the update (bases). The cache's own
// locks are for its internals only: the flights map and ristretto's.
//
// The cache holds each customer packed (featurestore.Packed): the
// record's encoding and nothing else, a few hundred bytes with no pointer
// for the garbage collector to follow, and it counts each entry at the
// bytes it holds, so MaxCost is a bound in bytes. A decision reads a
// packed record through a featurestore.View without decoding what the
// catalog does not read or allocating; a write decodes its own copy to
// change. Records the cache returns may be shared by readers and must not
// be modified. Unknown customers are cached too, as negative entries. A
// Cache is safe for concurrent use; Close must be the last call.
package cache
