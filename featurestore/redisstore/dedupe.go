package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
)

// Event ids applied (featurestore.Dedupe) live beside the customer's
// hash, one string per id:
//
//	<prefix>{<customer id>}:e:<event id>:<len(event id)>  → expiry, Unix ms; PX the window
//
// The key starts with the customer's hash key, so it carries the same
// hash tag (one cluster slot: casScript touches both atomically) and is
// found under the customer's key prefix. The trailing length makes the
// key unambiguous (a customer or event id may hold any byte, '}' and ':'
// included) and keeps it from ever equalling a hash key, which ends in
// '}'. Redis deletes an entry once the window has passed by its clock;
// before that, an entry whose stored expiry has passed by the node's
// clock does not count either.
func (s *Store) dedupeKey(customer, id string) string {
	return s.key(customer) + ":e:" + id + ":" + strconv.Itoa(len(id))
}

// dedupe is the event-id side of one customer's share of a Mutate call.
type dedupe struct {
	ids    []string         // distinct ids of the customer's mutations
	exp    map[string]int64 // expiry (Unix ms) of each id's entry as read; absent: none
	claims []claim          // ids the run claims, stored by casScript
	now    int64            // Unix ms of the run
}

// claim is an event id a run claims, with its expiry.
type claim struct {
	id    string
	exp   int64 // Unix ms
	check bool  // claimed by a mutation: refuse the write if another writer has it
}

// addIDs adds the ids of d, if any, to those read.
func (p *dedupe) addIDs(d *featurestore.Dedupe) {
	if d == nil {
		return
	}
	if len(p.ids) == 0 { // the usual case: one mutation of events per customer
		p.ids = append(p.ids, d.IDs...)
		return
	}
	for _, id := range d.IDs {
		if !slices.Contains(p.ids, id) {
			p.ids = append(p.ids, id)
		}
	}
}

// readIDs queues the reads of p's dedupe entries on pl.
func (s *Store) readIDs(ctx context.Context, pl redis.Pipeliner, p *pending) []*redis.StringCmd {
	if len(p.ids) == 0 {
		return nil
	}
	cmds := make([]*redis.StringCmd, len(p.ids))
	for i, id := range p.ids {
		cmds[i] = pl.Get(ctx, s.dedupeKey(p.id, id))
	}
	return cmds
}

// seenIDs records the expiries the reads of readIDs returned.
func (p *dedupe) seenIDs(cmds []*redis.StringCmd) error {
	clear(p.exp)
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return err
		}
		exp, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("event id %q: bad dedupe entry %q", p.ids[i], v)
		}
		if p.exp == nil {
			p.exp = make(map[string]int64, len(cmds))
		}
		p.exp[p.ids[i]] = exp
	}
	return nil
}

// startRun begins a run of the customer's mutations on rec, as just read:
// it forgets the claims of an earlier run and moves the event ids a
// record of codec version 2 or earlier kept inside it to claims, to be
// stored with the record, which must then be rewritten (true).
func (p *dedupe) startRun(rec *featurestore.Record, window time.Duration, now time.Time) bool {
	p.claims, p.now = p.claims[:0], now.UnixMilli()
	if len(rec.Seen) == 0 {
		return false
	}
	for _, c := range rec.TakeLegacySeen(window, now) {
		p.claims = append(p.claims, claim{id: c.ID, exp: c.Expires.UnixMilli()})
	}
	return true
}

// apply runs m on rec: it marks the event ids applied within the window
// (an entry not expired at now, or claimed earlier in this run) seen,
// applies, and claims the others until now + window.
func (p *dedupe) apply(m featurestore.Mutation, rec *featurestore.Record, window time.Duration, now time.Time) bool {
	d := m.Dedupe
	if d == nil {
		return m.Apply(rec)
	}
	ms := now.UnixMilli()
	d.Reset()
	for i, id := range d.IDs {
		d.Seen[i] = p.exp[id] > ms || slices.ContainsFunc(p.claims, func(c claim) bool { return c.id == id && c.exp > ms })
	}
	changed := m.Apply(rec)
	exp := now.Add(window).UnixMilli()
	for i, id := range d.IDs {
		if !d.Seen[i] {
			p.claims = append(p.claims, claim{id: id, exp: exp, check: true})
		}
	}
	return changed
}

// casArgs returns the keys and arguments of casScript for p.
func (s *Store) casArgs(p *pending) ([]string, []any, error) {
	// The ids to check come first.
	claims := slices.Clone(p.claims)
	slices.SortStableFunc(claims, func(a, b claim) int {
		switch {
		case a.check == b.check:
			return 0
		case a.check:
			return -1
		}
		return 1
	})
	ms := p.now
	keys := make([]string, 1, 2+len(claims))
	keys[0] = s.key(p.id)
	args := make([]any, 8, 8+2*len(claims)+2*len(p.timeline))
	checks := 0
	for _, c := range claims {
		keys = append(keys, s.dedupeKey(p.id, c.id))
		args = append(args, c.exp, max(c.exp-ms, 1))
		if c.check {
			checks++
		}
	}
	args[0], args[1], args[2], args[3], args[4], args[5] = p.version, p.enc, s.channel, s.node+"|"+p.id, ms, checks
	args[6], args[7] = len(claims), s.timelineLen
	if len(p.timeline) > 0 {
		keys = append(keys, s.timelineKey(p.id))
		var err error
		if args, err = s.appendTimelineArgs(args, p.timeline); err != nil {
			return nil, nil, fmt.Errorf("customer %q: %w", p.id, err)
		}
	}
	return keys, args, nil
}
