package embedded

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// Reach sketches live beside the statistics:
//
//	s/r/<8-byte hour><EncodeReachKey>        a featurestore.Sketch's registers
//
// with the hour encoded as in the hourly cells, so Reach is one bounded
// range scan.
const reachPrefix = "s/r/"

func reachKey(dst []byte, k featurestore.ReachKey) []byte {
	dst = appendHour(append(dst, reachPrefix...), k.Hour)
	return append(dst, featurestore.EncodeReachKey(k)...)
}

// AddReach merges deltas into their cells, all in one batch, under the
// statistics' mutex (a read-max-write), so concurrent adders lose no
// customer. Like AddStats, it commits without an fsync.
func (s *Store) AddReach(ctx context.Context, deltas []featurestore.ReachDelta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	merged := make(map[string]*featurestore.Sketch, len(deltas))
	var keys []string
	var buf []byte
	for _, d := range deltas {
		if err := d.Check(); err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
		buf = reachKey(buf[:0], d.Key)
		sk, ok := merged[string(buf)]
		if !ok {
			sk = new(featurestore.Sketch)
			merged[string(buf)] = sk
			keys = append(keys, string(buf))
		}
		sk.Merge(d.Sketch)
	}
	var corrupt []string
	err := s.readModifyWrite(ctx, "reach", keys, func(key []byte) ([]byte, error) {
		sk := merged[string(key)]
		cur, err := s.readSketch(key)
		if errors.Is(err, featurestore.ErrCorruptSketch) {
			corrupt = append(corrupt, fmt.Sprintf("%q (%v)", key, err))
			return sk[:], nil // replaced: see featurestore.ErrCorruptSketch
		}
		if err != nil {
			return nil, err
		}
		sk.Merge(cur)
		return sk[:], nil
	})
	if err == nil && corrupt != nil {
		err = fmt.Errorf("embedded: add reach: replaced %d corrupt cells: %s: %w", len(corrupt), strings.Join(corrupt, ", "), featurestore.ErrCorruptSketch)
	}
	return err
}

// readSketch returns the sketch stored under key; empty if there is none.
func (s *Store) readSketch(key []byte) (*featurestore.Sketch, error) {
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return new(featurestore.Sketch), nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return featurestore.ParseSketch(b)
}

// Reach returns, per cell with Hour zeroed, the merge of the sketches of
// the hours in [from, to]; none if from > to.
func (s *Store) Reach(ctx context.Context, from, to int64) (map[featurestore.ReachKey]*featurestore.Sketch, error) {
	if err := featurestore.CheckHourRange(from, to); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[featurestore.ReachKey]*featurestore.Sketch{}
	if from > to {
		return out, nil
	}
	upper := prefixEnd(reachPrefix)
	if to < math.MaxInt64 {
		upper = appendHour([]byte(reachPrefix), to+1)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: appendHour([]byte(reachPrefix), from), UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("embedded: reach scan: %w", err)
	}
	n := 0
	var corrupt []string
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%statsCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return nil, err
			}
		}
		err := s.mergeReachCell(out, it)
		if errors.Is(err, featurestore.ErrCorruptSketch) {
			corrupt = append(corrupt, fmt.Sprintf("%q", it.Key())) // skipped: see featurestore.ErrCorruptSketch
			continue
		}
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("embedded: reach cell %q: %w", it.Key(), err)
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("embedded: reach scan: %w", err)
	}
	if corrupt != nil {
		return out, fmt.Errorf("embedded: reach: skipped %d corrupt cells: %s: %w", len(corrupt), strings.Join(corrupt, ", "), featurestore.ErrCorruptSketch)
	}
	return out, nil
}

func (s *Store) mergeReachCell(out map[featurestore.ReachKey]*featurestore.Sketch, it *pebble.Iterator) error {
	key := it.Key()
	if len(key) < len(reachPrefix)+8 {
		return errors.New("not a reach key")
	}
	k, ok := featurestore.DecodeReachKey(string(key[len(reachPrefix)+8:]), 0)
	if !ok {
		return errors.New("malformed reach key")
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return err
	}
	sk, err := featurestore.ParseSketch(v)
	if err != nil {
		return err
	}
	if cur := out[k]; cur != nil {
		cur.Merge(sk)
	} else {
		out[k] = sk
	}
	return nil
}
