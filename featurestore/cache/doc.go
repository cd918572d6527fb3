// Package cache is an in-memory tier of customer records, on ristretto,
// in front of any feature store backend (the embedded store, Redis).
//
// A write is visible to the very next read: Mutate returns only once the
// backend has committed and the cache holds the new record or no record
// for that customer, and no read that started before the write can put an
// older record back afterwards. Nor does a reader ever see a customer go
// back in time while a write is in progress. Per customer, writes and the
// inserts of cache misses are ordered by striped locks and a generation
// counter per stripe; concurrent misses of one customer share one backend
// load. Records the cache returns are shared by every reader and must not
// be modified. Unknown customers are cached too, as negative entries. A
// Cache is safe for concurrent use; Close must be the last call.
package cache
