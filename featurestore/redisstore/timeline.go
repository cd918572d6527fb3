package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
)

// A customer's timeline (featurestore.TimelineEntry) is a sorted set
// beside the customer's hash, outside it, so a decision never reads it:
//
//	<prefix>{<customer id>}:t  → members <16 order bytes><entry body>, scored by the entry's time in µs
//
// It carries the hash's hash tag (one cluster slot), so casScript adds a
// mutation's entries atomically with its record and trims the set to the
// length kept (ZADD, then ZREMRANGEBYRANK) in the same step. The order
// bytes (featurestore.AppendTimelineOrder: time in ns, then a sequence
// number of the writing node) start the member, so entries of one
// microsecond are ordered by Redis's tie-break on members, and the set's
// order is the timeline's: the newest entries are a ZREVRANGE. A sorted
// set rather than a list keeps an event reported late in its place by
// time, as the embedded store's keys do.
func (s *Store) timelineKey(id string) string { return s.key(id) + ":t" }

// appendTimelineArgs sets the Seq of entries and appends their score and
// member, as casScript reads them, to args.
func (s *Store) appendTimelineArgs(args []any, entries []featurestore.TimelineEntry) ([]any, error) {
	for i := range entries {
		e := &entries[i]
		e.Seq = s.timelineSeq.Add(1)
		m := featurestore.AppendTimelineOrder(make([]byte, 0, 128), e.At, e.Seq)
		m, err := featurestore.AppendTimelineEntry(m, e)
		if err != nil {
			return nil, err
		}
		args = append(args, e.At/1000, m)
	}
	return args, nil
}

// Timeline returns the customer's newest timeline entries, newest first,
// at most limit of them (all when limit <= 0). An unknown customer has
// none.
func (s *Store) Timeline(ctx context.Context, id string, limit int) ([]featurestore.TimelineEntry, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	members, err := s.c.ZRevRange(ctx, s.timelineKey(id), 0, stop).Result()
	if err != nil {
		return nil, err
	}
	out := make([]featurestore.TimelineEntry, 0, len(members))
	for _, m := range members {
		if len(m) < featurestore.TimelineOrderLen {
			return nil, fmt.Errorf("customer %q: %w: timeline member of %d bytes", id, featurestore.ErrCorrupt, len(m))
		}
		e, err := featurestore.UnmarshalTimelineEntry([]byte(m[:featurestore.TimelineOrderLen]), []byte(m[featurestore.TimelineOrderLen:]))
		if err != nil {
			return nil, fmt.Errorf("customer %q: %w", id, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// dedupeKeys returns the keys of the customer's event ids (dedupe.go),
// found by a SCAN of every master for their pattern: a walk of the whole
// key space, so its cost grows with the keys stored (about a second per
// few million keys), which is fine for what needs it (an export, a
// deletion: rare, and not on a decision's path), not for anything
// frequent.
func (s *Store) dedupeKeys(ctx context.Context, id string) ([]string, error) {
	match := globEscape(s.key(id)+":e:") + "*"
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var keys []string
		it := c.Scan(ctx, 0, match, 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return keys, it.Err()
	}
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, s.c)
	}
	// ForEachMaster runs concurrently; all of a customer's keys are in
	// one slot, so one master has them.
	var (
		mu    sync.Mutex
		found []string
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := scan(ctx, m)
		mu.Lock()
		found = append(found, keys...)
		mu.Unlock()
		return err
	})
	return found, err
}

// EventIDs returns the ids of the customer's events applied within the
// dedupe window (featurestore.Dedupe). It scans the key space
// (dedupeKeys).
func (s *Store) EventIDs(ctx context.Context, id string) ([]string, error) {
	keys, err := s.dedupeKeys(ctx, id)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	vals, err := s.c.MGet(ctx, keys...).Result() // one slot
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	prefix := s.key(id) + ":e:"
	var ids []string
	for i, k := range keys {
		v, _ := vals[i].(string)
		exp, err := strconv.ParseInt(v, 10, 64)
		if err != nil || exp <= now {
			continue // gone since the scan, or expired
		}
		rest := k[len(prefix):]
		j := strings.LastIndexByte(rest, ':')
		if n, err := strconv.Atoi(rest[j+1:]); j < 0 || err != nil || n != j {
			continue
		}
		ids = append(ids, rest[:j])
	}
	return ids, nil
}

// customerKeys lists the keys of what the store keeps about a customer,
// besides its event ids (found by a scan, dedupeKeys), one a line: Erase
// deletes them all, so a new per-customer key is one more line here. All
// carry the customer's hash tag.
func (s *Store) customerKeys(id string) []string {
	return []string{
		s.key(id),         // the record
		s.timelineKey(id), // the timeline
	}
}

// Delete removes everything the store keeps about the customer (the
// record, its timeline, its event ids), holding the customer's lock on
// this node, and tells the other nodes to drop their cached copy.
// Deleting a customer the store does not know is not an error.
// Statistics, which hold no customer, stay.
func (s *Store) Delete(ctx context.Context, id string) error {
	stripe := s.locks.Stripe(id)
	s.locks.LockOne(stripe)
	defer s.locks.UnlockOne(stripe)
	return s.Erase(ctx, id)
}

// Erase is the body of Delete, for a caller that holds the customer's
// lock (Locks): the cache tier, which drops its copy under the same lock.
// The record and timeline go first, in one command; the event ids after
// (a crash in between leaves ids that expire within the dedupe window).
func (s *Store) Erase(ctx context.Context, id string) error {
	if err := s.c.Del(ctx, s.customerKeys(id)...).Err(); err != nil {
		return fmt.Errorf("customer %q: delete: %w", id, err)
	}
	if err := s.c.Publish(ctx, s.channel, s.node+"|"+id).Err(); err != nil {
		return fmt.Errorf("customer %q: delete: tell the other nodes: %w", id, err)
	}
	keys, err := s.dedupeKeys(ctx, id)
	if err != nil {
		return fmt.Errorf("customer %q: delete: event ids: %w", id, err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := s.c.Unlink(ctx, keys[:n]...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("customer %q: delete: event ids: %w", id, err)
		}
		keys = keys[n:]
	}
	return nil
}
