package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// Event ids applied (featurestore.Dedupe) live beside the records, one
// key per customer and id:
//
//	d/<uvarint len(customer)><customer><event id>   → 8-byte big-endian expiry, Unix ns
//
// The length prefix makes "d/<len><customer>" a prefix that no other
// customer's keys share, so one range deletion removes everything kept
// for a customer, and decoding a key is unambiguous. An entry counts while
// its expiry is after the store's clock; expired entries are ignored by
// every read and removed by the sweeper (sweep below).
const dedupePrefix = "d/"

// Sweeping. Pebble has no hook to drop keys during compaction (no
// compaction filter), and a time-ordered index of expiries would double
// the keys written per event, so a background sweeper walks the dedupe
// key space in key order, sweepBatch keys per pass, deleting the
// expired ones, and resumes after the last key it read. A pass is a
// short sequential read of small keys; passes follow each other
// sweepPause apart while the previous one found a full batch, and
// sweepInterval apart once a walk has reached the end, so the space is
// swept about as fast as it fills and an idle store does no work.
const (
	sweepBatch    = 4096
	sweepPause    = 50 * time.Millisecond
	sweepInterval = 30 * time.Second
)

// claim is an event id claimed in a Mutate call, with its expiry.
type claim struct {
	id  string
	exp int64 // Unix nanoseconds
}

// dedupeKey appends the key of customer's dedupe entry for event id to dst.
func dedupeKey(dst []byte, customer, id string) []byte {
	dst = append(dst, dedupePrefix...)
	dst = binary.AppendUvarint(dst, uint64(len(customer)))
	dst = append(dst, customer...)
	return append(dst, id...)
}

// dedupeCustomer returns the customer of a dedupe key.
func dedupeCustomer(key []byte) (string, bool) {
	rest, ok := cutPrefix(key, dedupePrefix)
	if !ok {
		return "", false
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return "", false
	}
	return string(rest[w : w+int(n)]), true
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return nil, false
	}
	return b[len(p):], true
}

// markSeen fills d.Seen for a run of a mutation of g's customer at now:
// an id claimed earlier in the call (or moved from a legacy record) is
// seen, otherwise one whose entry has not expired.
func (s *Store) markSeen(r *dedupeReader, g *group, d *featurestore.Dedupe, now int64) error {
	d.Reset()
	for i, id := range d.IDs {
		if slices.ContainsFunc(g.claims, func(c claim) bool { return c.id == id && c.exp > now }) {
			d.Seen[i] = true
			continue
		}
		if d.Fresh {
			continue // minted for this write: nothing to find
		}
		r.key = dedupeKey(r.key[:0], g.id, id)
		exp, err := r.expiry(s.db, r.key)
		if err != nil {
			return fmt.Errorf("customer %q: event id: %w", g.id, err)
		}
		d.Seen[i] = exp > now
	}
	return nil
}

// claimUnseen adds the ids of d not seen to g's claims, expiring at exp.
func claimUnseen(g *group, d *featurestore.Dedupe, exp int64) {
	for i, id := range d.IDs {
		if !d.Seen[i] {
			g.claims = append(g.claims, claim{id, exp})
		}
	}
}

// dedupeReader reads the dedupe entries of one Apply through one
// iterator: a Get per event id builds and tears down an iterator each
// time. Its view is the store as of its first read, which is current for
// the customers of the call, whose locks the caller holds.
type dedupeReader struct {
	it  *pebble.Iterator
	key []byte
}

// expiry returns the expiry of the dedupe entry under key; 0 if none.
func (r *dedupeReader) expiry(db *pebble.DB, key []byte) (int64, error) {
	if r.it == nil {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(dedupePrefix), UpperBound: prefixEnd(dedupePrefix)})
		if err != nil {
			return 0, err
		}
		r.it = it
	}
	// The whole key is the prefix: the tables' bloom filters apply.
	if !r.it.SeekPrefixGE(key) || !bytes.Equal(r.it.Key(), key) {
		return 0, r.it.Error()
	}
	b, err := r.it.ValueAndErr()
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: dedupe entry of %d bytes", featurestore.ErrCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// close releases the iterator.
func (r *dedupeReader) close() {
	if r.it != nil {
		r.it.Close()
		r.it = nil
	}
}

// expiry returns the expiry of the dedupe entry under key; 0 if none.
func (s *Store) expiry(key []byte) (int64, error) {
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: dedupe entry of %d bytes", featurestore.ErrCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// putClaims adds g's claims to batch, building their keys in key (a
// buffer reused across the batch, which batch.Set copies from), and
// returns the buffer.
func putClaims(batch *pebble.Batch, g *group, key []byte) ([]byte, error) {
	var val [8]byte
	for _, c := range g.claims {
		key = dedupeKey(key[:0], g.id, c.id)
		binary.BigEndian.PutUint64(val[:], uint64(c.exp))
		if err := batch.Set(key, val[:], nil); err != nil {
			return key, fmt.Errorf("customer %q: event id: %w", g.id, err)
		}
	}
	return key, nil
}

// sweeper runs sweep passes until stop is closed.
func (s *Store) sweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var from []byte
	wait := sweepInterval
	for {
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		next, err := s.sweep(from, sweepBatch)
		switch {
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			s.log.Error("sweep expired event ids", "err", err)
			next = nil
		}
		from, wait = next, sweepInterval
		if next != nil {
			wait = sweepPause
		}
	}
}

// sweep reads up to limit dedupe keys from key from (the start of the
// space when nil) and deletes those expired. It returns the key to resume
// from, nil once it reached the end.
//
// An entry is deleted under its customer's lock (Locks, which every write
// of the customer holds, through Mutate or a cache tier), after reading it
// again: a write may have claimed the id anew since the scan, and deleting
// its fresh entry would let a retry through.
func (s *Store) sweep(from []byte, limit int) ([]byte, error) {
	expired, next, now, err := s.expired(from, limit)
	if err != nil || len(expired) == 0 {
		return next, err
	}
	return next, s.deleteExpired(expired, now)
}

// expired reads up to limit dedupe keys from key from and returns those
// expired at now, the key to resume from (nil at the end) and now.
func (s *Store) expired(from []byte, limit int) (expired [][]byte, next []byte, now int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, 0, ErrClosed
	}
	now = s.now().UnixNano()
	lower := []byte(dedupePrefix)
	if from != nil {
		lower = from
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(dedupePrefix)})
	if err != nil {
		return nil, nil, 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n == limit {
			next = slices.Clone(it.Key())
			break
		}
		n++
		if v := it.Value(); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= now {
			if _, ok := dedupeCustomer(it.Key()); ok {
				expired = append(expired, slices.Clone(it.Key()))
			}
		}
	}
	if err := it.Close(); err != nil {
		return nil, nil, 0, err
	}
	return expired, next, now, nil
}

// deleteExpired deletes the entries under keys that are still expired at
// now, holding their customers' locks.
func (s *Store) deleteExpired(keys [][]byte, now int64) error {
	groups := make([]featurestore.Group, len(keys))
	for i, k := range keys {
		groups[i].CustomerID, _ = dedupeCustomer(k) // checked by expired
	}
	// The customer locks before the close guard, in the order of every
	// write (a cache holding them, then Apply): the other order could
	// deadlock with a write waiting for the guard behind a Close.
	stripes := s.locks.Stripes(groups)
	s.locks.Lock(stripes)
	defer s.locks.Unlock(stripes)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, k := range keys {
		exp, err := s.expiry(k)
		if err != nil || exp == 0 || exp > now {
			continue // claimed again, or gone; a corrupt entry stays for an operator to see
		}
		if err := batch.Delete(k, nil); err != nil {
			return err
		}
	}
	if batch.Empty() {
		return nil
	}
	// Not synced: a deletion lost in a crash leaves an expired entry,
	// which counts for nothing and is swept again.
	if err := batch.Commit(pebble.NoSync); err != nil {
		return err
	}
	s.swept.Add(uint64(batch.Count()))
	return nil
}
