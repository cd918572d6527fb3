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

// Aliases (featurestore.Merge) live beside the records:
//
//	a/<alias>                                   → the customer id it was merged into
//	ai/<uvarint len(customer)><customer><alias> → empty: the customer's aliases
//
// An alias has no record: a merge deletes it in the batch that writes the
// alias. Load and a write read "a/" only for an id without a record, so
// an id that has one pays nothing for aliases; an id without one (a new
// or unknown customer) pays one more point read, which the tables'
// bloom filters answer without touching a block when there is no alias
// (BenchmarkLoadAbsent). The index under "ai/", by customer, lets
// RemoveAliases find every alias of a customer with one range scan; a
// merge of a customer that has aliases itself moves them to its new
// customer, so the index of a customer lists every id that resolves to
// it, however many merges deep. An alias may point to a customer that
// was merged into another later: a reader follows at most a few hops
// (the service layer resolves them).
const (
	aliasPrefix      = "a/"
	aliasIndexPrefix = "ai/"
)

func aliasKey(dst []byte, id string) []byte {
	dst = append(dst, aliasPrefix...)
	return append(dst, id...)
}

// aliasIndexKey appends the key of customer's index entry of alias to
// dst; with alias "", the prefix of all of customer's entries.
func aliasIndexKey(dst []byte, customer, alias string) []byte {
	dst = append(dst, aliasIndexPrefix...)
	dst = binary.AppendUvarint(dst, uint64(len(customer)))
	dst = append(dst, customer...)
	return append(dst, alias...)
}

// aliasOf returns the customer id was merged into, if id is an alias.
func (s *Store) aliasOf(id string) (string, bool, error) {
	b, closer, err := s.db.Get(aliasKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	return string(b), true, nil
}

// Merge merges m.From into m.Into (featurestore.Merge), holding both
// customers' locks (Locks).
func (s *Store) Merge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error) {
	if err := s.admit(ctx); err != nil {
		return featurestore.MergeResult{}, err
	}
	stripes := s.locks.Stripes([]featurestore.Group{{CustomerID: m.Into}, {CustomerID: m.From}})
	s.locks.Lock(stripes)
	defer s.locks.Unlock(stripes)
	return s.ApplyMerge(ctx, m)
}

// ApplyMerge is the body of Merge, for a caller that holds the locks of
// both customers (the cache tier). It writes, in one synced batch: Into's
// record with From's folded in, the deletion of From's record, the alias
// From → Into and its index entry, the move of From's own aliases to
// Into's index, and From's event ids applied (still within the dedupe
// window) as Into's, so that a client retrying under the old id an event
// applied before the merge does not count it twice. When From is already
// an alias of Into nothing is written (a retry of the merge); when it is
// an alias of another customer the error wraps
// featurestore.ErrAliasConflict; when Into is an alias, it is a
// *featurestore.AliasError.
func (s *Store) ApplyMerge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error) {
	if err := ctx.Err(); err != nil {
		return featurestore.MergeResult{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return featurestore.MergeResult{}, ErrClosed
	}
	if err := s.disk.admit(); err != nil {
		return featurestore.MergeResult{}, err
	}
	fail := func(err error) (featurestore.MergeResult, error) {
		return featurestore.MergeResult{}, fmt.Errorf("merge %q into %q: %w", m.From, m.Into, err)
	}
	if target, ok, err := s.aliasOf(m.From); err != nil {
		return fail(err)
	} else if ok {
		if target != m.Into {
			return fail(fmt.Errorf("%w: %q was merged into %q", featurestore.ErrAliasConflict, m.From, target))
		}
		rec, err := s.read(recordKey(nil, m.Into))
		if err != nil {
			return fail(err)
		}
		return featurestore.MergeResult{Record: rec}, nil
	}
	into, err := s.read(recordKey(nil, m.Into))
	if err != nil {
		return fail(err)
	}
	if into == nil {
		if target, ok, err := s.aliasOf(m.Into); err != nil {
			return fail(err)
		} else if ok {
			return featurestore.MergeResult{}, featurestore.NewAliasError(m.Into, target)
		}
		into = &featurestore.Record{}
	}
	from, err := s.read(recordKey(nil, m.From))
	if err != nil {
		return fail(err)
	}
	if from == nil {
		from = &featurestore.Record{}
	}
	now := s.now()
	g := &group{id: m.Into, rec: into}
	// Records of codec version 2 or earlier hold their event ids: they
	// move to Into's dedupe entries, as a write would move them.
	for _, r := range []*featurestore.Record{into, from} {
		if len(r.Seen) > 0 {
			for _, c := range r.TakeLegacySeen(s.window, now) {
				g.claims = append(g.claims, claim{c.ID, c.Expires.UnixNano()})
			}
			g.changed = true
		}
	}
	g.changed = m.Fold(into, from) || g.changed

	batch := s.db.NewBatch()
	defer batch.Close()
	if err := s.moveDedupe(batch, g, m.From, now.UnixNano()); err != nil {
		return fail(err)
	}
	if _, err := putClaims(batch, g, nil); err != nil {
		return fail(err)
	}
	if g.changed {
		if err := batch.Set(recordKey(nil, m.Into), into.Pack(), nil); err != nil {
			return fail(err)
		}
	}
	if err := s.moveAliases(batch, m.From, m.Into); err != nil {
		return fail(err)
	}
	for _, err := range []error{
		batch.Delete(recordKey(nil, m.From), nil),
		batch.Set(aliasKey(nil, m.From), []byte(m.Into), nil),
		batch.Set(aliasIndexKey(nil, m.Into, m.From), nil, nil),
	} {
		if err != nil {
			return fail(err)
		}
	}
	if err := s.disk.admit(); err != nil {
		return featurestore.MergeResult{}, err
	}
	if err := s.disk.guarded(func() error { return batch.Commit(s.write) }); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	s.disk.wrote(len(batch.Repr()))
	return featurestore.MergeResult{Record: into, Merged: true}, nil
}

// moveDedupe adds to batch the deletion of from's dedupe entries and, to
// g's claims, those still within the window at now that g's customer
// lacks.
func (s *Store) moveDedupe(batch *pebble.Batch, g *group, from string, now int64) error {
	prefix := dedupeKey(nil, from, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyEnd(prefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) != 8 {
			continue
		}
		exp := int64(binary.BigEndian.Uint64(v))
		id := string(it.Key()[len(prefix):])
		if exp <= now || slices.ContainsFunc(g.claims, func(c claim) bool { return c.id == id }) {
			continue
		}
		mine, err := s.expiry(dedupeKey(nil, g.id, id))
		if err != nil {
			it.Close()
			return err
		}
		if mine < exp {
			g.claims = append(g.claims, claim{id, exp})
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	return batch.DeleteRange(prefix, keyEnd(prefix), nil)
}

// moveAliases adds to batch the move of from's aliases to into's index,
// each now pointing to into.
func (s *Store) moveAliases(batch *pebble.Batch, from, into string) error {
	aliases, err := s.aliases(from)
	if err != nil {
		return err
	}
	for _, a := range aliases {
		for _, err := range []error{
			batch.Delete(aliasIndexKey(nil, from, a), nil),
			batch.Set(aliasIndexKey(nil, into, a), nil, nil),
			batch.Set(aliasKey(nil, a), []byte(into), nil),
		} {
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// aliases returns the ids the index lists as customer's aliases.
func (s *Store) aliases(customer string) ([]string, error) {
	prefix := aliasIndexKey(nil, customer, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyEnd(prefix)})
	if err != nil {
		return nil, err
	}
	var out []string
	for it.First(); it.Valid(); it.Next() {
		out = append(out, string(it.Key()[len(prefix):]))
	}
	return out, it.Close()
}

// Aliases returns the ids merged into the customer (its aliases), in no
// particular order.
func (s *Store) Aliases(ctx context.Context, customer string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.aliases(customer)
}

// RemoveAliases deletes every alias pointing at the customer (for the
// deletion of a customer: the ids merged into it stop resolving to it and
// become unknown) and returns them. It holds the locks of the customer
// and of its aliases, and writes one synced batch.
func (s *Store) RemoveAliases(ctx context.Context, customer string) ([]string, error) {
	for {
		aliases, err := s.Aliases(ctx, customer)
		if err != nil || len(aliases) == 0 {
			return nil, err
		}
		groups := []featurestore.Group{{CustomerID: customer}}
		for _, a := range aliases {
			groups = append(groups, featurestore.Group{CustomerID: a})
		}
		stripes := s.locks.Stripes(groups)
		s.locks.Lock(stripes)
		removed, again, err := s.removeAliases(customer, aliases)
		s.locks.Unlock(stripes)
		if !again {
			return removed, err
		}
		// A merge into the customer added an alias since the scan: its
		// lock was not held.
	}
}

// removeAliases is RemoveAliases under the locks of customer and of
// locked, its aliases as scanned before; again reports a new alias.
func (s *Store) removeAliases(customer string, locked []string) (removed []string, again bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	if err := s.disk.admit(); err != nil {
		return nil, false, err
	}
	aliases, err := s.aliases(customer)
	if err != nil {
		return nil, false, err
	}
	for _, a := range aliases {
		if !slices.Contains(locked, a) {
			return nil, true, nil
		}
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, a := range aliases {
		if err := batch.Delete(aliasIndexKey(nil, customer, a), nil); err != nil {
			return nil, false, err
		}
		target, ok, err := s.aliasOf(a)
		if err != nil {
			return nil, false, err
		}
		if ok && target == customer {
			if err := batch.Delete(aliasKey(nil, a), nil); err != nil {
				return nil, false, err
			}
			removed = append(removed, a)
		}
	}
	if err := s.disk.guarded(func() error { return batch.Commit(s.write) }); err != nil {
		return nil, false, fmt.Errorf("remove aliases of %q: %w", customer, err)
	}
	s.disk.wrote(len(batch.Repr()))
	return removed, false, nil
}

// keyEnd returns the first key after every key that starts with prefix
// (prefix must not be all 0xff bytes).
func keyEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
