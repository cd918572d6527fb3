// Package embedded is nextbest's default feature store: customer records
// kept on local disk in pebble, persistent and crash-safe, in the same
// process as the server.
//
// Every Mutate is an atomic read-modify-write per customer and returns only
// once its changes are durable: it holds the customer's striped lock across
// the read, the mutations and the commit, and commits all changed records
// of the call in one batch with pebble.Sync (unless Options.NoSync), so no
// concurrent update of a customer is lost and an acknowledged write
// survives a crash. A Store is safe for concurrent use; records it returns
// belong to the caller.
//
// Layout and tuning, in brief (the reasons are beside the settings in
// store.go):
//   - A customer's record lives under "c/" + id, encoded with
//     featurestore.AppendRecord; other key spaces get other prefixes.
//   - Locks: 512 mutexes chosen by a hash of the customer id, taken in
//     ascending order and each once, so calls covering several customers
//     cannot deadlock and unrelated customers rarely wait on each other.
//   - Group commit: concurrent synced batches share one WAL fsync, so
//     throughput grows with concurrency while each caller still waits for
//     durability of its own write.
//   - Writes: 64 MiB memtables (up to 4 queued) absorb bursts of small
//     record rewrites, and a rewritten hot record is collapsed to one
//     version at flush; L0 compacts at 4 sublevels but stalls writes only
//     at 24.
//   - Reads: 10-bit bloom filters on every level, so a point lookup,
//     including one for a customer never seen, skips tables without the
//     key; a 64 MiB block cache by default.
package embedded
