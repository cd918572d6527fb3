// Package outcomes records outcome statistics (decisions, impressions,
// clicks, conversions, dismisses) in memory and adds them to a
// featurestore.StatsStore in batches, so the store sees a few calls a
// second however many outcomes arrive; and it keeps, for the learner, a
// snapshot of the all-time learning cells.
//
// Add never waits for I/O: it merges deltas into pending cells under a
// mutex and into the snapshot, so this node's outcomes reach its next
// decision at once; one background goroutine flushes them and reloads
// the snapshot. Learned is lock-free (an atomic pointer to an immutable
// featurestore.LearnTable). The snapshot counts every delta of this node
// exactly once: flushes and reloads take turns, and a reload reads the
// store while none of this node's deltas is in flight. Deltas of other
// nodes appear with the next reload. A Recorder is safe for concurrent
// use.
//
// Statistics are best effort, unlike profile events: the batch not yet
// flushed is lost on a crash, and deltas beyond the pending bound are
// dropped (and counted) during a long store outage.
package outcomes
