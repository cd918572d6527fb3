// Package featurestore is the pure model of customer features: the typed
// schema a catalog declares, the typed values a decision reads, the events
// that flow in from every channel and the per-customer record that turns
// those events into features (counts, sums, last values, sliding windows).
//
// This package performs no I/O and imports no storage, cache or transport
// package, so the decision engine and the rules compiler may depend on it.
// Storage backends live in subpackages (featurestore/embedded, the
// ristretto cache tier in featurestore/cache) and all share the aggregation
// code here, so a windowed count means the same thing whatever stores it.
// An aggregation op is one row of the table in ops.go (what it makes and
// reads, how an event folds in, how it reads and when that value expires,
// how two customers' states merge when one id is merged into another);
// the catalog compiler asks that table rather than knowing ops itself.
// The keyed ops, top and distinct, keep a few keys per time bucket
// (sketch.go says what they bound and what is approximate). A feature's
// where filter reaches its aggregation as an EventFilter, which the
// catalog compiler builds: this package runs it without knowing how it
// is written.
//
// A *Schema is immutable after NewSchema and safe for concurrent use. A
// *Record is not synchronised: backends own the read-modify-write cycle and
// hand out records that callers treat as read-only. A Packed record (the
// encoding, what the cache holds) is immutable and read by a View, which
// decodes a decision's features into buffers it reuses. The write path shares
// two pieces across backends: GroupByCustomer, the one grouping of a
// call's mutations by customer, and Locks, a backend's customer locks.
// Each backend owns one Locks and every write of a customer in the process
// holds the customer's mutex exactly once: the backend's Mutate takes it
// around its unlocked Apply, or the cache tier in front of it does.
package featurestore
