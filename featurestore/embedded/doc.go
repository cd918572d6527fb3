// Package embedded is nextbest's default feature store: customer records
// kept on local disk in pebble, persistent and crash-safe, in the same
// process as the server.
//
// Every Mutate is an atomic read-modify-write per customer and returns only
// once its changes are durable: it holds the customer's lock across the
// read, the mutations and the commit, and commits all changed records of
// the call in one batch with pebble.Sync (unless Options.NoSync), so no
// concurrent update of a customer is lost and an acknowledged write
// survives a crash. A Store is safe for concurrent use; records it returns
// belong to the caller.
//
// Who owns which lock: the store owns the customer locks (Locks, one
// featurestore.Locks); Mutate takes them around Apply, which takes none,
// and the cache tier (featurestore/cache) takes the same ones around
// Apply instead, so a cached write locks each customer once. The sweeper
// deletes an expired event id only under its customer's lock, after
// reading it again, so it never deletes an id a concurrent write claimed
// anew. No one waits for a customer lock while holding mu (the close
// guard, read-locked by every operation): that could deadlock with a
// write waiting for mu behind a Close. AddStats has its own statsMu.
//
// A write that cannot be made durable is refused at once, never left
// waiting, with ErrDiskFull (the volume is below the free-space floor or
// full; writes resume by themselves when space returns) or ErrWriteFailed
// (a log write failed; reopen the store). Pebble never sees ENOSPC on its
// log, which it cannot recover from in-process (disk.go says why and how).
//
// In brief (the reasons sit beside the settings in store.go): a record
// lives under "c/" + customer id, leaving other prefixes for other key
// spaces; the event ids applied live under "d/" (dedupe.go), written in
// the same batch as the record and deleted by a background sweeper once
// past Options.DedupeWindow, which Close stops; an id merged into another
// customer is an alias under "a/", indexed by customer under "ai/"
// (alias.go), written with the merged record in one batch. 512 mutexes, picked by a
// hash of the id, are taken in ascending order and each once, so
// multi-customer calls cannot deadlock. Synced
// batches of concurrent calls share one WAL fsync (group commit). Pebble
// gets 64 MiB memtables (up to 4 queued) so bursts of small rewrites
// flush rarely and a hot record flushes as one version; L0 compacts at 4
// sublevels but stalls writes only at 24; Lbase is 256 MiB; every level
// has 10-bit bloom filters, so a point read, even of an unknown customer,
// skips tables without the key; the block cache defaults to 64 MiB.
package embedded
