package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// Outcome statistics live beside the customer records under their own
// prefixes:
//
//	s/l/<EncodeStatKey>                      all-time learning cells (Hour 0)
//	s/h/<8-byte hour><EncodeStatKey>         hourly cells
//
// The hour is big-endian with its sign bit flipped, so byte order is hour
// order (negative hours included) and HourlyStats is one bounded range
// scan. A cell's value is encoded by appendCounts.
const (
	learnPrefix  = "s/l/"
	hourlyPrefix = "s/h/"
)

// statsCheckEvery is how many cells a scan reads between checks of its
// context.
const statsCheckEvery = 1024

// AddStats adds deltas to their cells, all of them in one batch: either
// every delta of the call is applied or none is. Deltas of one cell are
// merged first; zero deltas write nothing. A delta failing
// featurestore.StatDelta.Check fails the call before anything is written.
//
// AddStats is a read-modify-write serialised by a mutex of its own (a
// pebble merge operator would change the options of existing databases),
// so concurrent adders lose no increment. The batch is committed without
// an fsync: a crash may lose the statistics of the last calls, never a
// customer record, whose commits are synced on their own.
func (s *Store) AddStats(ctx context.Context, deltas []featurestore.StatDelta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	keys, cells, err := mergeStatDeltas(deltas)
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	var val []byte
	return s.readModifyWrite(ctx, "stats", keys, func(key []byte) ([]byte, error) {
		cur, err := s.readCounts(key)
		if err != nil {
			return nil, err
		}
		cur.Add(cells[string(key)])
		val = appendCounts(val[:0], cur)
		return val, nil
	})
}

// readModifyWrite sets each of keys (what: the kind of cell, for errors)
// to the value next makes of it, in one batch committed without an
// fsync, under the statistics' mutex, so concurrent writers of the same
// cells lose nothing. next may reuse its buffer: the batch copies it.
func (s *Store) readModifyWrite(ctx context.Context, what string, keys []string, next func(key []byte) ([]byte, error)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if len(keys) == 0 {
		return nil
	}
	if err := s.disk.admit(); err != nil {
		return err
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	// The wait for the lock may have outlived the caller.
	if err := ctx.Err(); err != nil {
		return err
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, key := range keys {
		val, err := next([]byte(key))
		if err != nil {
			return fmt.Errorf("embedded: %s cell %q: %w", what, key, err)
		}
		if err := batch.Set([]byte(key), val, nil); err != nil { // Set copies key and val
			return fmt.Errorf("embedded: %s cell %q: %w", what, key, err)
		}
	}
	if err := s.disk.guarded(func() error { return batch.Commit(pebble.NoSync) }); err != nil {
		return fmt.Errorf("embedded: %s commit: %w", what, err)
	}
	s.disk.wrote(len(batch.Repr()))
	return nil
}

// mergeStatDeltas checks deltas and sums them per pebble key, returning
// the keys of non-zero cells in order of first appearance.
func mergeStatDeltas(deltas []featurestore.StatDelta) ([]string, map[string]featurestore.Counts, error) {
	cells := make(map[string]featurestore.Counts, len(deltas))
	keys := make([]string, 0, len(deltas))
	var buf []byte
	for _, d := range deltas {
		if err := d.Check(); err != nil {
			return nil, nil, err
		}
		buf = statKey(buf[:0], d.Key)
		c, ok := cells[string(buf)]
		if !ok {
			keys = append(keys, string(buf))
		}
		c.Add(d.Counts)
		cells[string(buf)] = c
	}
	n := 0
	for _, k := range keys {
		if cells[k].IsZero() {
			delete(cells, k)
			continue
		}
		keys[n] = k
		n++
	}
	return keys[:n], cells, nil
}

// readCounts returns the counts stored under key; zero if there are none.
func (s *Store) readCounts(key []byte) (featurestore.Counts, error) {
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return featurestore.Counts{}, nil
	}
	if err != nil {
		return featurestore.Counts{}, err
	}
	defer closer.Close()
	return decodeCounts(b)
}

// LearnStats returns every all-time learning cell (Hour 0).
func (s *Store) LearnStats(ctx context.Context) (map[featurestore.StatKey]featurestore.Counts, error) {
	return s.scanStats(ctx, []byte(learnPrefix), prefixEnd(learnPrefix))
}

// HourlyStats returns the hourly cells whose Hour is in [from, to]; none
// if from > to. A range longer than featurestore.MaxStatHours fails with
// featurestore.ErrStatRange.
func (s *Store) HourlyStats(ctx context.Context, from, to int64) (map[featurestore.StatKey]featurestore.Counts, error) {
	if err := featurestore.CheckHourRange(from, to); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if from > to {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return map[featurestore.StatKey]featurestore.Counts{}, nil
	}
	upper := prefixEnd(hourlyPrefix)
	if to < math.MaxInt64 {
		upper = appendHour([]byte(hourlyPrefix), to+1)
	}
	return s.scanStats(ctx, appendHour([]byte(hourlyPrefix), from), upper)
}

// scanStats decodes every cell in [lower, upper), all under one of the
// two statistics prefixes.
func (s *Store) scanStats(ctx context.Context, lower, upper []byte) (map[featurestore.StatKey]featurestore.Counts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("embedded: stats scan: %w", err)
	}
	out := map[featurestore.StatKey]featurestore.Counts{}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%statsCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return nil, err
			}
		}
		k, err := parseStatKey(it.Key())
		if err == nil {
			var v []byte
			if v, err = it.ValueAndErr(); err == nil {
				var c featurestore.Counts
				if c, err = decodeCounts(v); err == nil {
					out[k] = c
				}
			}
		}
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("embedded: stats cell %q: %w", it.Key(), err)
		}
	}
	if err := it.Close(); err != nil { // Close returns the iterator's error
		return nil, fmt.Errorf("embedded: stats scan: %w", err)
	}
	return out, nil
}

// statKey appends the pebble key of k's cell to dst.
func statKey(dst []byte, k featurestore.StatKey) []byte {
	if k.Hour == 0 {
		dst = append(dst, learnPrefix...)
	} else {
		dst = appendHour(append(dst, hourlyPrefix...), k.Hour)
	}
	return append(dst, featurestore.EncodeStatKey(k)...)
}

// parseStatKey reverses statKey.
func parseStatKey(key []byte) (featurestore.StatKey, error) {
	var hour int64
	var rest []byte
	switch {
	case len(key) >= len(learnPrefix) && string(key[:len(learnPrefix)]) == learnPrefix:
		rest = key[len(learnPrefix):]
	case len(key) >= len(hourlyPrefix)+8 && string(key[:len(hourlyPrefix)]) == hourlyPrefix:
		hour = int64(binary.BigEndian.Uint64(key[len(hourlyPrefix):]) ^ 1<<63)
		rest = key[len(hourlyPrefix)+8:]
	default:
		return featurestore.StatKey{}, errors.New("not a statistics key")
	}
	k, ok := featurestore.DecodeStatKey(string(rest), hour)
	if !ok {
		return featurestore.StatKey{}, errors.New("malformed statistics key")
	}
	return k, nil
}

// appendHour appends h in 8 bytes that sort as the hours do.
func appendHour(dst []byte, h int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(h)^1<<63)
}

// prefixEnd returns the smallest key after every key starting with p
// (whose last byte is not 0xff).
func prefixEnd(p string) []byte {
	b := []byte(p)
	b[len(b)-1]++
	return b
}

// Counts encoding, version 1: the version byte, a byte whose bits 0-5 say
// which of Decisions, Impressions, Clicks, Conversions, Dismisses and
// Value are present (non-zero), then each present field in that order: a
// signed varint for a count, 8 little-endian bytes of IEEE 754 bits for
// Value. A typical cell takes 4 to 20 bytes.
//
// Version 2, written only for a cell with a per-customer count (a cohort
// cell, featurestore.CohortKey), so every other cell keeps version 1's
// bytes: the version byte, a uvarint mask whose bits 0-9 say which of
// Decisions, Impressions, Clicks, Conversions, Dismisses, Customers,
// Converters, ConversionsSq, Value and ValueSq are present, then those in
// that order (varints, then the two floats).
const (
	countsV1 = 1
	countsV2 = 2
)

// countInts are the integer fields of c in the order of version 2 (the
// first five are version 1's).
func countInts(c *featurestore.Counts) [8]*int64 {
	return [...]*int64{&c.Decisions, &c.Impressions, &c.Clicks, &c.Conversions, &c.Dismisses, &c.Customers, &c.Converters, &c.ConversionsSq}
}

// appendCounts appends the encoding of c to dst.
func appendCounts(dst []byte, c featurestore.Counts) []byte {
	ints := countInts(&c)
	floats := [...]float64{c.Value, c.ValueSq}
	v2 := c.Customers != 0 || c.Converters != 0 || c.ConversionsSq != 0 || c.ValueSq != 0
	n := 5
	if v2 {
		n = len(ints)
	}
	var mask uint64
	for i, p := range ints[:n] {
		if *p != 0 {
			mask |= 1 << i
		}
	}
	for i, f := range floats {
		if f != 0 {
			mask |= 1 << (n + i)
		}
	}
	if v2 {
		dst = binary.AppendUvarint(append(dst, countsV2), mask)
	} else {
		dst = append(dst, countsV1, byte(mask))
	}
	for i, p := range ints[:n] {
		if mask&(1<<i) != 0 {
			dst = binary.AppendVarint(dst, *p)
		}
	}
	for i, f := range floats {
		if mask&(1<<(n+i)) != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	}
	return dst
}

// decodeCounts decodes what appendCounts made, refusing anything else.
func decodeCounts(b []byte) (featurestore.Counts, error) {
	var c featurestore.Counts
	if len(b) < 2 {
		return c, errors.New("counts: truncated")
	}
	ints := countInts(&c)
	var mask uint64
	n := 5
	switch b[0] {
	case countsV1:
		mask, b = uint64(b[1]), b[2:]
	case countsV2:
		var k int
		if mask, k = binary.Uvarint(b[1:]); k <= 0 {
			return c, errors.New("counts: bad field mask")
		}
		b, n = b[1+k:], len(ints)
	default:
		return c, fmt.Errorf("counts: unknown version %d", b[0])
	}
	floats := [...]*float64{&c.Value, &c.ValueSq}
	nf := 1
	if n == len(ints) {
		nf = 2
	}
	if mask>>(n+nf) != 0 {
		return c, fmt.Errorf("counts: bad field mask %#x", mask)
	}
	for i, p := range ints[:n] {
		if mask&(1<<i) == 0 {
			continue
		}
		v, k := binary.Varint(b)
		if k <= 0 {
			return featurestore.Counts{}, errors.New("counts: bad varint")
		}
		*p, b = v, b[k:]
	}
	for i, p := range floats[:nf] {
		if mask&(1<<(n+i)) == 0 {
			continue
		}
		if len(b) < 8 {
			return featurestore.Counts{}, errors.New("counts: truncated value")
		}
		*p, b = math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:]
	}
	if len(b) != 0 {
		return featurestore.Counts{}, fmt.Errorf("counts: %d trailing bytes", len(b))
	}
	return c, nil
}
