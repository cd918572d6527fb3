package outcomes

import (
	"context"
	"errors"
	"fmt"

	"github.com/nextbest/nextbest/featurestore"
)

// Reach: the distinct customers decided for, per channel and hour (and
// per experiment variant on a channel). The decide path adds a
// customer's hash to the in-memory sketch of its cell (AddReach: a map
// lookup and one register, no allocation once the cell exists); each
// flush merges the sketches into the store's cells, when the store keeps
// them (featurestore.ReachStore), and reuses them.

// MaxReachCells bounds the reach sketches a Recorder holds unflushed
// (SketchRegisters bytes each: 4,096 cells are 16 MiB); AddReach drops a
// customer of a new cell beyond it, and counts it in Dropped.
const MaxReachCells = 4096

type reachCells = map[featurestore.ReachKey]*featurestore.Sketch

// AddReach adds the customer whose featurestore.HashCustomer is h to the
// reach cell k. It never blocks on I/O. Without a store that keeps
// reach, it does nothing.
func (r *Recorder) AddReach(k featurestore.ReachKey, h uint64) {
	if r.reachStore == nil {
		return
	}
	r.reachMu.Lock()
	s := r.reach[k]
	if s == nil {
		if len(r.reach) >= MaxReachCells {
			r.reachMu.Unlock()
			r.dropped.Add(1)
			return
		}
		if n := len(r.spare); n > 0 {
			s, r.spare = r.spare[n-1], r.spare[:n-1]
		} else {
			s = new(featurestore.Sketch)
		}
		r.reach[k] = s
	}
	s.Add(h)
	r.reachMu.Unlock()
}

// flushReach merges the pending sketches into the store. On failure they
// are merged back into pending, to be retried (a merge is idempotent, so
// a retry counts no customer twice).
func (r *Recorder) flushReach(ctx context.Context) error {
	if r.reachStore == nil {
		return nil
	}
	r.reachMu.Lock()
	if len(r.reach) == 0 {
		r.reachMu.Unlock()
		return nil
	}
	batch := r.reach
	r.reach = make(reachCells, len(batch))
	r.reachMu.Unlock()

	deltas := make([]featurestore.ReachDelta, 0, len(batch))
	for k, s := range batch {
		deltas = append(deltas, featurestore.ReachDelta{Key: k, Sketch: s})
	}
	cctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	err := r.reachStore.AddReach(cctx, deltas)
	cancel()

	r.reachMu.Lock()
	defer r.reachMu.Unlock()
	if errors.Is(err, featurestore.ErrCorruptSketch) {
		// Every cell was written, the corrupt ones replaced: nothing to
		// retry, but the loss is reported.
		r.recycle(batch)
		return fmt.Errorf("outcomes: flush of %d reach cells: %w", len(batch), err)
	}
	if err != nil {
		for k, s := range batch {
			if cur := r.reach[k]; cur != nil {
				cur.Merge(s)
			} else {
				r.reach[k] = s
			}
		}
		return fmt.Errorf("outcomes: flush of %d reach cells: %w", len(batch), err)
	}
	r.recycle(batch)
	return nil
}

// recycle keeps the sketches of a stored batch for reuse; the caller
// holds reachMu.
func (r *Recorder) recycle(batch reachCells) {
	for _, s := range batch {
		if len(r.spare) < MaxReachCells {
			*s = featurestore.Sketch{}
			r.spare = append(r.spare, s)
		}
	}
}
