package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// A customer's timeline (featurestore.TimelineEntry) lives beside the
// records, outside them, so a decision never reads it:
//
//	t/<uvarint len(customer)><customer><16 order bytes> → the entry's body (featurestore.AppendTimelineEntry)
//
// The order bytes (featurestore.AppendTimelineOrder: the entry's time,
// then a sequence number of the store) make key order the timeline's
// order, so the newest entries are read by a reverse scan from the end of
// the customer's range. As for event ids, the length prefix makes
// "t/<len><customer>" a prefix no other customer's keys share: one range
// deletion removes the timeline.
//
// Entries are added in the commit of the mutation that made them, one
// key each and nothing read. Trimming is amortised: a write of which an
// entry's sequence number is a multiple of timelineTrimEvery (a quarter
// of the length kept) also scans the customer's newest entries back to
// the length kept and deletes the older ones with one range deletion, in
// the same batch. A customer's writes draw from the store's sequence, so
// a customer is trimmed about every timelineTrimEvery entries (exactly,
// for a store written for one customer at a time) and keeps about the
// length plus a quarter; readers never list more than the length. A
// per-customer count, read and rewritten on every write, bounded it
// exactly, at the price of a read and a second key per write: with it
// the events path cost 56 → 91–106 CPU-µs per event, without it (and
// with the entries' hand-written encoding) 73–75 → 77–83
// (BenchmarkDurableEventsTimeline, docs/benchmarks.md).
const timelinePrefix = "t/"

// timelineHead appends the prefix of the customer's timeline entries to
// dst.
func timelineHead(dst []byte, customer string) []byte {
	dst = append(dst, timelinePrefix...)
	dst = binary.AppendUvarint(dst, uint64(len(customer)))
	return append(dst, customer...)
}

// timelineTrimEvery is how many entries a customer's timeline gets, on
// average, between two trims back to length.
func timelineTrimEvery(length int) uint64 { return uint64(max(length/4, 1)) }

// rangeEnd returns the first key after every key starting with p; nil
// when there is none (p is all 0xff).
func rangeEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// putTimeline adds the timeline entries of g to batch, trimming the
// customer's timeline first when one of them falls due (see above), and
// returns key and body, buffers reused across the batch (Set copies the
// key and value). The caller holds the customer's lock.
func (s *Store) putTimeline(batch *pebble.Batch, g *group, key, body []byte) ([]byte, []byte, error) {
	if len(g.timeline) == 0 || s.timelineLen <= 0 {
		return key, body, nil
	}
	key = timelineHead(key[:0], g.id)
	head := len(key)
	every := timelineTrimEvery(s.timelineLen)
	trim := false
	for i := range g.timeline {
		e := &g.timeline[i]
		e.Seq = s.timelineSeq.Add(1)
		trim = trim || e.Seq%every == 0
	}
	if len(g.timeline) > s.timelineLen {
		// One write of more entries than are kept (a large batch of one
		// customer's events): its newest only, and none stored before.
		featurestore.SortTimeline(g.timeline)
		g.timeline, trim = g.timeline[:s.timelineLen], true
	}
	if trim {
		// Before the entries: the range deletion must not cover them.
		if err := s.trimTimeline(batch, key[:head], max(s.timelineLen-len(g.timeline), 0)); err != nil {
			return key, body, fmt.Errorf("customer %q: timeline: %w", g.id, err)
		}
	}
	for i := range g.timeline {
		e := &g.timeline[i]
		var err error
		if body, err = featurestore.AppendTimelineEntry(body[:0], e); err != nil {
			return key, body, fmt.Errorf("customer %q: %w", g.id, err)
		}
		key = featurestore.AppendTimelineOrder(key[:head], e.At, e.Seq)
		if err := batch.Set(key, body, nil); err != nil {
			return key, body, fmt.Errorf("customer %q: timeline: %w", g.id, err)
		}
	}
	return key, body, nil
}

// trimTimeline deletes, in batch, the entries of the timeline under head
// older than its keep newest.
func (s *Store) trimTimeline(batch *pebble.Batch, head []byte, keep int) error {
	lower := append(slices.Clone(head), 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: rangeEnd(head)})
	if err != nil {
		return err
	}
	n := 0
	for it.Last(); it.Valid(); it.Prev() {
		if n == keep {
			// it.Key() is the newest to go: delete up to it, included.
			if err := batch.DeleteRange(lower, append(slices.Clone(it.Key()), 0), nil); err != nil {
				it.Close()
				return err
			}
			break
		}
		n++
	}
	return it.Close()
}

// Timeline returns the customer's newest timeline entries, newest first,
// at most limit of them (every entry stored when limit <= 0, which may be
// about a quarter more than the length kept, until the next trim). An
// unknown customer has none.
func (s *Store) Timeline(ctx context.Context, customerID string, limit int) ([]featurestore.TimelineEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	head := timelineHead(nil, customerID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: append(slices.Clip(head), 0), UpperBound: rangeEnd(head)})
	if err != nil {
		return nil, err
	}
	var out []featurestore.TimelineEntry
	for it.Last(); it.Valid() && (limit <= 0 || len(out) < limit); it.Prev() {
		e, err := featurestore.UnmarshalTimelineEntry(it.Key()[len(head):], it.Value())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("customer %q: %w", customerID, err)
		}
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("customer %q: timeline: %w", customerID, err)
	}
	return out, nil
}

// EventIDs returns the ids of the customer's events applied within the
// dedupe window (featurestore.Dedupe), in key order.
func (s *Store) EventIDs(ctx context.Context, customerID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	prefix := dedupeKey(nil, customerID, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: rangeEnd(prefix)})
	if err != nil {
		return nil, err
	}
	now := s.now().UnixNano()
	var ids []string
	for it.First(); it.Valid(); it.Next() {
		if v := it.Value(); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now {
			ids = append(ids, string(it.Key()[len(prefix):]))
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("customer %q: event ids: %w", customerID, err)
	}
	return ids, nil
}

// keyRange is the keys from start to end (excluded); a single key when
// end is nil and point.
type keyRange struct {
	start, end []byte
	point      bool
}

// customerSpaces lists the keys of everything the store keeps about one
// customer, one key space a line: Erase deletes them all, so a new space
// of per-customer data is one more line here.
func customerSpaces(id string) []keyRange {
	dedupe := dedupeKey(nil, id, "")
	timeline := timelineHead(nil, id)
	return []keyRange{
		{start: recordKey(nil, id), point: true},   // the record
		{start: dedupe, end: rangeEnd(dedupe)},     // the event ids applied
		{start: timeline, end: rangeEnd(timeline)}, // the timeline
	}
}

// Delete removes everything the store keeps about the customer (the
// record, its event ids, its timeline) durably, holding the customer's
// lock. Deleting a customer the store does not know is not an error.
// Statistics, which hold no customer, stay.
func (s *Store) Delete(ctx context.Context, customerID string) error {
	stripe := s.locks.Stripe(customerID)
	s.locks.LockOne(stripe)
	defer s.locks.UnlockOne(stripe)
	return s.Erase(ctx, customerID)
}

// Erase is the body of Delete, for a caller that holds the customer's
// lock (Locks): the cache tier, which drops its copy under the same lock.
func (s *Store) Erase(ctx context.Context, customerID string) error {
	if err := s.admit(ctx); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, r := range customerSpaces(customerID) {
		var err error
		if r.point {
			err = batch.Delete(r.start, nil)
		} else {
			err = batch.DeleteRange(r.start, r.end, nil)
		}
		if err != nil {
			return fmt.Errorf("customer %q: delete: %w", customerID, err)
		}
	}
	if err := s.disk.guarded(func() error { return batch.Commit(s.write) }); err != nil {
		return fmt.Errorf("customer %q: delete: %w", customerID, err)
	}
	s.disk.wrote(len(batch.Repr()))
	return nil
}
