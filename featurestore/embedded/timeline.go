package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// A customer's timeline (featurestore.TimelineEntry) lives beside the
// records, outside them, so a decision never reads it:
//
//	t/<uvarint len(customer)><customer>                → 4-byte big-endian count of entries
//	t/<uvarint len(customer)><customer><16 order bytes> → the entry's body (featurestore.AppendTimelineEntry)
//
// The order bytes (featurestore.AppendTimelineOrder: the entry's time,
// then a sequence number of the store) make key order the timeline's
// order, so the newest entries are read by a reverse scan from the end of
// the customer's range. As for event ids, the length prefix makes
// "t/<len><customer>" a prefix no other customer's keys share: one range
// deletion removes the timeline with its count.
//
// Entries are added in the commit of the mutation that made them. The
// count, read and rewritten under the customer's lock in the same batch,
// says when to trim: once it passes the length kept by a quarter
// (timelineSlack), the oldest entries past the length are deleted in that
// batch. A trim is then one short scan every length/4 writes of a
// customer, not one per write; readers never list more than the length.
const timelinePrefix = "t/"

// timelineHead appends the key of the customer's timeline count, the
// prefix of its entries, to dst.
func timelineHead(dst []byte, customer string) []byte {
	dst = append(dst, timelinePrefix...)
	dst = binary.AppendUvarint(dst, uint64(len(customer)))
	return append(dst, customer...)
}

// timelineSlack is how many entries past its length a customer's timeline
// may hold before a write trims it back to the length.
func timelineSlack(length int) int { return max(length/4, 1) }

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

// timelineEntry is an entry to write: its key and body.
type timelineEntry struct {
	key, body []byte
	dropped   bool // trimmed before it was written
}

// putTimeline adds the timeline entries of g to batch, with the
// customer's new count, trimming the oldest entries past the length kept
// when the count passes it by timelineSlack. The caller holds the
// customer's lock (the count is a read-modify-write).
func (s *Store) putTimeline(batch *pebble.Batch, g *group) error {
	if len(g.timeline) == 0 || s.timelineLen <= 0 {
		return nil
	}
	head := timelineHead(nil, g.id)
	n, err := s.timelineCount(head)
	if err != nil {
		return fmt.Errorf("customer %q: timeline: %w", g.id, err)
	}
	news := make([]timelineEntry, len(g.timeline))
	for i := range g.timeline {
		e := &g.timeline[i]
		e.Seq = s.timelineSeq.Add(1)
		body, err := featurestore.AppendTimelineEntry(nil, e)
		if err != nil {
			return fmt.Errorf("customer %q: %w", g.id, err)
		}
		news[i] = timelineEntry{key: featurestore.AppendTimelineOrder(slices.Clip(head), e.At, e.Seq), body: body}
	}
	n += len(news)
	if n > s.timelineLen+timelineSlack(s.timelineLen) {
		if err := s.trimTimeline(batch, head, news, n-s.timelineLen); err != nil {
			return fmt.Errorf("customer %q: timeline: %w", g.id, err)
		}
		n = s.timelineLen
	}
	for _, e := range news {
		if e.dropped {
			continue
		}
		if err := batch.Set(e.key, e.body, nil); err != nil {
			return fmt.Errorf("customer %q: timeline: %w", g.id, err)
		}
	}
	var count [4]byte
	binary.BigEndian.PutUint32(count[:], uint32(n))
	return batch.Set(head, count[:], nil)
}

// trimTimeline drops the drop oldest entries of the timeline under head,
// among those stored and news (not yet written, which it marks dropped),
// deleting the stored ones in batch.
func (s *Store) trimTimeline(batch *pebble.Batch, head []byte, news []timelineEntry, drop int) error {
	slices.SortFunc(news, func(a, b timelineEntry) int { return bytes.Compare(a.key, b.key) })
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: append(slices.Clip(head), 0), UpperBound: rangeEnd(head)})
	if err != nil {
		return err
	}
	i := 0
	for it.First(); drop > 0; drop-- {
		stored := it.Valid()
		if i < len(news) && (!stored || bytes.Compare(news[i].key, it.Key()) < 0) {
			news[i].dropped = true
			i++
			continue
		}
		if !stored {
			break
		}
		if err := batch.Delete(it.Key(), nil); err != nil { // Delete copies the key
			it.Close()
			return err
		}
		it.Next()
	}
	return it.Close()
}

// timelineCount reads the count of entries under head; 0 when none.
func (s *Store) timelineCount(head []byte) (int, error) {
	b, closer, err := s.db.Get(head)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: timeline count of %d bytes", featurestore.ErrCorrupt, len(b))
	}
	return int(binary.BigEndian.Uint32(b)), nil
}

// Timeline returns the customer's newest timeline entries, newest first,
// at most limit of them (every entry stored when limit <= 0, which may be
// up to a quarter more than the length kept, until the next trim). An
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
		{start: timeline, end: rangeEnd(timeline)}, // the timeline, with its count
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
