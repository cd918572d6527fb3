package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// Reach: how many distinct customers were decided for, per channel (and
// per experiment variant on a channel) over a period. Counting them
// exactly would need every customer id of every hour; a HyperLogLog
// sketch per (hour, channel[, variant]) cell counts them in
// SketchRegisters bytes with a relative standard error of
// ReachRelativeError, and sketches merge by taking each register's
// maximum, so a period's reach is the merge of its hours' sketches and
// every node adds to the same cells, as it does to the outcome counts.
//
// The sketch is ours, not Redis's PFADD, so both backends store the same
// bytes and answer the same estimate for the same customers; the hash is
// fixed (FNV-1a 64 with a 64-bit finaliser), so every node and every
// version puts a customer in the same register.

// SketchPrecision is the HyperLogLog precision p: 2^p registers.
const SketchPrecision = 12

// SketchRegisters is the number of registers of a Sketch, one byte each.
const SketchRegisters = 1 << SketchPrecision

// ReachRelativeError is the relative standard error of a reach estimate,
// 1.04/√SketchRegisters ≈ 1.6%. Below about 2.5×SketchRegisters
// (10,240) customers the estimate is by linear counting, whose error is
// smaller: about one customer at 100, 1.1% at 600 to 1,000.
const ReachRelativeError = 1.04 / 64

// Sketch is a HyperLogLog sketch of customer ids. The zero value is an
// empty sketch. It is not safe for concurrent use.
type Sketch [SketchRegisters]uint8

// HashCustomer is the hash of a customer id that Sketch.Add takes. It
// does not allocate.
func HashCustomer(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	// FNV's high bits mix poorly for short ids: finalise (splitmix64).
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Add adds the customer whose HashCustomer is h.
func (s *Sketch) Add(h uint64) {
	i := h >> (64 - SketchPrecision)
	w := h<<SketchPrecision | 1<<(SketchPrecision-1) // a guard bit bounds the rank
	if r := uint8(bits.LeadingZeros64(w) + 1); r > s[i] {
		s[i] = r
	}
}

// Merge makes s the sketch of the union of s's and o's customers.
func (s *Sketch) Merge(o *Sketch) {
	for i, r := range o {
		if r > s[i] {
			s[i] = r
		}
	}
}

// IsZero reports whether s holds no customer.
func (s *Sketch) IsZero() bool { return *s == Sketch{} }

// Estimate is the number of distinct customers added, estimated: linear
// counting while registers are empty and the estimate is small, else the
// HyperLogLog estimate with its bias constant.
func (s *Sketch) Estimate() int64 {
	const m = float64(SketchRegisters)
	sum, zeros := 0.0, 0
	for _, r := range s {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(e))
}

// ParseSketch reads the bytes a backend stored (a Sketch's registers).
func ParseSketch(b []byte) (*Sketch, error) {
	if len(b) != SketchRegisters {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrCorruptSketch, len(b), SketchRegisters)
	}
	s := new(Sketch)
	copy(s[:], b)
	for i, r := range s {
		if r > MaxSketchRank {
			return nil, fmt.Errorf("%w: register %d: rank %d out of range", ErrCorruptSketch, i, r)
		}
	}
	return s, nil
}

// MaxSketchRank is the largest value a register of a Sketch holds.
const MaxSketchRank = 64 - SketchPrecision + 1

// ErrCorruptSketch is a stored reach sketch that is not one (damaged, or
// written by something else). A ReachStore replaces such a cell with the
// sketch it adds, writes every other cell of the batch and returns this
// error, wrapped, so the loss is reported once and later writes succeed;
// its Reach skips such a cell, returns every other one and this error,
// wrapped, so a report can still show the rest. A corrupt sketch can be
// neither merged into nor read: the customers it counted are lost.
var ErrCorruptSketch = errors.New("featurestore: corrupt reach sketch")

// ReachKey names a reach cell: the customers decided for on Channel in
// Hour, in Experiment's Variant ("" for all traffic), among those in
// Segment when decided for ("" for every customer).
type ReachKey struct {
	Hour                         int64
	Channel, Experiment, Variant string
	Segment                      string
}

// ReachDelta is the customers of one cell to add.
type ReachDelta struct {
	Key    ReachKey
	Sketch *Sketch
}

// Check reports whether d can be stored: its ids must not contain the
// separator of EncodeReachKey, and it must have a sketch.
func (d ReachDelta) Check() error {
	if d.Sketch == nil {
		return fmt.Errorf("reach delta %q: no sketch", EncodeReachKey(d.Key))
	}
	for _, id := range [...]string{d.Key.Channel, d.Key.Experiment, d.Key.Variant, d.Key.Segment} {
		if strings.Contains(id, statSep) {
			return fmt.Errorf("reach delta: id %q contains the separator \\x1f", id)
		}
	}
	return nil
}

// EncodeReachKey encodes k, without its Hour, as one string that
// DecodeReachKey reverses. A cell of a segment has a fourth field, its
// Segment; every other cell is encoded in three, as before segments were
// counted, so the cells stored then decode as they were (Segment "").
func EncodeReachKey(k ReachKey) string {
	s := k.Channel + statSep + k.Experiment + statSep + k.Variant
	if k.Segment != "" {
		s += statSep + k.Segment
	}
	return s
}

// DecodeReachKey decodes what EncodeReachKey made, with hour as its Hour.
func DecodeReachKey(s string, hour int64) (ReachKey, bool) {
	f := strings.Split(s, statSep)
	if len(f) != 3 && (len(f) != 4 || f[3] == "") {
		return ReachKey{}, false
	}
	k := ReachKey{Hour: hour, Channel: f[0], Experiment: f[1], Variant: f[2]}
	if len(f) == 4 {
		k.Segment = f[3]
	}
	return k, true
}

// ReachStore keeps reach sketches shared by every node. AddReach merges
// sketches into their cells atomically (concurrent adders lose no
// customer); Reach returns, per cell with Hour zeroed, the merge of the
// cells whose Hour is in [from, to] (a range longer than MaxStatHours
// fails with ErrStatRange). A corrupt stored sketch is replaced by a
// write and skipped by a read, each returning ErrCorruptSketch, wrapped
// (Reach with every other cell).
type ReachStore interface {
	AddReach(ctx context.Context, deltas []ReachDelta) error
	Reach(ctx context.Context, from, to int64) (map[ReachKey]*Sketch, error)
}
