// Package redisstore keeps customer records in Redis (standalone,
// Sentinel or Cluster, through one redis.UniversalClient) so that many
// stateless nextbest nodes share one view of every customer.
//
// Each customer's record lives in one hash, `<prefix>{<customer id>}`,
// whose hash tag puts all of a customer's keys in one cluster slot. The
// hash holds the encoded record ("r") and a version ("v"). Each event id
// applied is a string beside it, `<prefix>{<customer id>}:e:<id>:<len>`,
// expiring after Options.DedupeWindow and set by the same script as the
// record (dedupe.go). An id merged into another customer keeps its hash
// with the field "a" naming that customer and no record, and a merge
// across cluster slots is a protocol of three single-slot scripts
// (alias.go). A mutation
// reads the record, applies the shared featurestore aggregation code in Go
// and writes it back with a server-side compare-and-set script that checks
// the version; a concurrent writer makes the script refuse and the mutation
// is retried on the fresh record, so no update is lost and the
// aggregation logic exists once, in featurestore. The same script
// publishes the customer id on the invalidation channel, atomically with
// the write, so every node's cache can drop its copy. Mutate returns only
// after Redis confirmed every write; the durability of an acknowledged
// write is then Redis's persistence setting (see docs/operations.md).
// A Store is safe for concurrent use. Its customer locks (Locks) are not
// needed for correctness, which the compare-and-set gives: Mutate, or the
// cache tier around Apply, holds them so that this node's writers of a
// customer take turns and conflicts come only from other nodes.
package redisstore
