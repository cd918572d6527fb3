// Package storetest is the contract every feature store backend must keep,
// as test suites a backend's own tests run: Run(t, open) for customer
// records and RunStats(t, open) for outcome statistics.
//
// Run exercises a store only through Load and Mutate, RunStats only
// through the featurestore.StatsStore methods, with fixed clocks, so the
// embedded store, the cache tier over it and the Redis store are held to
// the same behaviour and cannot drift apart. The suites never modify a
// record a store returns: records may be shared (the cache tier hands out
// one copy to every reader). A store whose data other nodes share (Redis)
// implements Shared, and Run then also writes through a second node
// between a call's read of a customer and its write.
package storetest
