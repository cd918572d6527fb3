// Package storetest is the contract every feature store backend must keep,
// as a test suite a backend's own tests run: Run(t, open).
//
// The suite exercises a store only through Load and Mutate, with fixed
// clocks, so the embedded store, the cache tier over it and the Redis store
// are held to the same behaviour and cannot drift apart. It never modifies
// a record a store returns: records may be shared (the cache tier hands
// out one copy to every reader).
package storetest
