package featurestore

import (
	"slices"
	"sync"
	"time"
)

// Record is everything stored about one customer: the profile attributes
// set through the API and the running state of every event aggregation.
// Aggregation state is keyed by feature name so that a catalog change keeps
// the history of the features it keeps.
type Record struct {
	Attrs map[string]Value
	Aggs  map[string]*AggState
	// packed is the record's encoding once Pack has made it, until the
	// record changes (see Pack).
	packed Packed
	// Seen holds the event ids that records written by codec version 2
	// or earlier kept inside them, oldest first. The current codec does
	// not write them: a backend moves them into its dedupe key space on
	// the customer's first write (see Dedupe) and the record is rewritten
	// without them. Always empty for a record written since.
	Seen []SeenEvent
	// Contacts is the customer's contact history across channels (offers
	// shown, clicked, converted, dismissed), oldest first, bounded by the
	// schema's contact retention and MaxContacts.
	Contacts []Contact
	// Exposures holds the customer's first exposure to each experiment
	// they took a decision in, in order of exposure, and their
	// conversions since (exposure.go).
	Exposures []Exposure
	// Decided holds, per channel, the segments of the customer's latest
	// decision there (decisionsegments.go).
	Decided []DecisionSegments
}

// MaxContacts bounds a customer's contact history.
const MaxContacts = 512

// AddContact records an outcome, dropping contacts older than retention
// (none when retention is 0) and the oldest past MaxContacts.
func (r *Record) AddContact(c Contact, retention time.Duration, now time.Time) {
	r.packed = nil
	i := len(r.Contacts)
	for i > 0 && r.Contacts[i-1].At > c.At {
		i--
	}
	r.Contacts = slices.Insert(r.Contacts, i, c)
	r.trimContacts(retention, now)
}

// trimContacts drops contacts older than retention (none when retention
// is 0) and the oldest past MaxContacts.
func (r *Record) trimContacts(retention time.Duration, now time.Time) {
	drop := 0
	if retention > 0 {
		cutoff := now.Add(-retention).UnixNano()
		for drop < len(r.Contacts) && r.Contacts[drop].At < cutoff {
			drop++
		}
	}
	drop = max(drop, len(r.Contacts)-MaxContacts)
	if drop > 0 {
		r.Contacts = append(r.Contacts[:0], r.Contacts[drop:]...)
	}
}

// SeenEvent is the id of an applied event and when it was applied, as
// records of codec version 2 or earlier kept them.
type SeenEvent struct {
	ID string
	At int64 // Unix nanoseconds, server time
}

// AggState is the running state of one event-derived feature.
type AggState struct {
	Total   float64  // all-time count or sum (unwindowed features)
	Buckets []Bucket // windowed count or sum, oldest first, at most one per bucket start
	Last    Value    // latest property value (OpLast)
	LastAt  int64    // Unix nanoseconds of the newest event counted; 0 if none
	ResetAt int64    // Unix nanoseconds of the latest reset; older events are ignored
	// Recent logs the newest contributions of a count or sum that has
	// reset_on, so a reset delivered late (after events that happened after
	// it) keeps exactly those events. Bounded by MaxRecent; LogFrom is the
	// time of the newest contribution dropped from it.
	Recent  []Contribution
	LogFrom int64
	// Keys holds the per-key counts of top and distinct (sketch.go), by
	// bucket: ordered by Start, then by Key (top) or N (distinct).
	Keys []KeyCount
}

// KeyCount is one key of a top or distinct aggregation in one bucket.
type KeyCount struct {
	Start int64  // the bucket's start, Unix seconds; 0 for an aggregation without window
	Key   string // top: the value; distinct: "" (it keeps the value's hash)
	// N is, for top, the events counted for Key (an overestimate once
	// the bucket has dropped keys, see sketch.go); for distinct, the
	// 64-bit FNV-1a hash of the value.
	N uint64
}

// Contribution is one event's share of a count or sum.
type Contribution struct {
	At int64 // Unix nanoseconds
	X  float64
}

// MaxRecent bounds AggState.Recent.
const MaxRecent = 64

// Bucket is the count or sum of events in [Start, Start+width).
type Bucket struct {
	Start int64 // Unix seconds, a multiple of the bucket width
	Sum   float64
}

// Clone returns a deep copy of r, so a cached record can be changed
// without a reader seeing the change half-made.
func (r *Record) Clone() *Record {
	c := &Record{}
	if r == nil {
		return c
	}
	if r.Attrs != nil {
		c.Attrs = make(map[string]Value, len(r.Attrs))
		for k, v := range r.Attrs {
			c.Attrs[k] = v
		}
	}
	if r.Aggs != nil {
		c.Aggs = make(map[string]*AggState, len(r.Aggs))
		for k, a := range r.Aggs {
			cp := *a
			cp.Buckets = append([]Bucket(nil), a.Buckets...)
			cp.Recent = append([]Contribution(nil), a.Recent...)
			cp.Keys = append([]KeyCount(nil), a.Keys...)
			c.Aggs[k] = &cp
		}
	}
	c.Seen = append([]SeenEvent(nil), r.Seen...)
	c.Contacts = append([]Contact(nil), r.Contacts...)
	c.Exposures = append([]Exposure(nil), r.Exposures...)
	if r.Decided != nil {
		c.Decided = make([]DecisionSegments, len(r.Decided))
		for i, d := range r.Decided {
			d.Segments = append([]string(nil), d.Segments...)
			c.Decided[i] = d
		}
	}
	return c
}

// SetAttr sets a profile attribute.
func (r *Record) SetAttr(name string, v Value) {
	r.packed = nil
	if r.Attrs == nil {
		r.Attrs = make(map[string]Value)
	}
	r.Attrs[name] = v
}

// Apply folds ev into the aggregation state of every feature s derives from
// ev.Type, and resets the features ev.Type resets. now bounds the window
// state kept: buckets that can no longer fall in a window are dropped. It
// reports whether the record changed. ev must have passed s.CheckEvent.
func (r *Record) Apply(s *Schema, ev *Event, now time.Time) bool {
	idx := s.byEvent[ev.Type]
	if len(idx) == 0 {
		return false
	}
	r.packed = nil
	ts := ev.Time.UnixNano()
	changed := false
	for _, i := range idx {
		f := &s.features[i]
		a := f.From
		filtered := s.where && a.Where != nil && a.Event == ev.Type && !a.Where.Match(ev)
		if filtered && !slices.Contains(a.ResetOn, ev.Type) {
			continue // an event its where filters out: no state is made for it
		}
		st := r.agg(f.Name)
		if st.ResetAt > ts {
			continue // the event happened before a reset we have already applied
		}
		for _, reset := range a.ResetOn {
			if reset == ev.Type {
				st.reset(a, ts, now)
				changed = true
				break
			}
		}
		if a.Event != ev.Type || filtered {
			continue
		}
		changed = a.Op.spec().fold(st, f, ev, now) || changed
	}
	return changed
}

func (r *Record) agg(name string) *AggState {
	if r.Aggs == nil {
		r.Aggs = make(map[string]*AggState)
	}
	st := r.Aggs[name]
	if st == nil {
		st = &AggState{}
		r.Aggs[name] = st
	}
	return st
}

// count adds x, contributed at t, to a count or sum, and reports whether
// it changed the state.
func (st *AggState) count(a *Aggregation, t time.Time, x float64, now time.Time) bool {
	if !st.add(a, t, x, now) {
		return false
	}
	ts := t.UnixNano()
	st.LastAt = max(st.LastAt, ts)
	if len(a.ResetOn) > 0 {
		if len(st.Recent) == MaxRecent {
			st.LogFrom = max(st.LogFrom, st.Recent[0].At)
			st.Recent = append(st.Recent[:0], st.Recent[1:]...)
		}
		i := len(st.Recent)
		for i > 0 && st.Recent[i-1].At > ts {
			i--
		}
		st.Recent = slices.Insert(st.Recent, i, Contribution{At: ts, X: x})
	}
	return true
}

// reset zeroes the feature as of ts. Events that happened after ts but
// were applied before this (late) reset are kept, from the Recent log:
// exact when the log reaches back to ts, else those it holds.
func (st *AggState) reset(a *Aggregation, ts int64, now time.Time) {
	if ts >= st.LastAt {
		*st = AggState{ResetAt: ts}
		return
	}
	if !a.Op.spec().summed {
		st.ResetAt = max(st.ResetAt, ts) // the value held is newer than the reset
		return
	}
	keep := make([]Contribution, 0, len(st.Recent))
	for _, c := range st.Recent {
		if c.At > ts {
			keep = append(keep, c)
		}
	}
	*st = AggState{ResetAt: ts}
	for _, c := range keep {
		st.count(a, time.Unix(0, c.At), c.X, now)
	}
}

// add counts x at time t, into the running total or into t's bucket, and
// reports whether it was counted. An event dated after now (clock skew)
// counts in now's bucket, so the bucket bound holds.
func (st *AggState) add(a *Aggregation, t time.Time, x float64, now time.Time) bool {
	if a.Window == 0 {
		st.Total += x
		return true
	}
	if t.After(now) {
		t = now
	}
	width := int64(summedWidth(a.Window) / time.Second)
	start := floorDiv(t.Unix(), width) * width
	oldest := windowStart(a, now)
	if start < oldest {
		return false // already outside the window
	}
	// Drop buckets that have slid out of the window.
	drop := 0
	for drop < len(st.Buckets) && st.Buckets[drop].Start < oldest {
		drop++
	}
	if drop > 0 {
		st.Buckets = append(st.Buckets[:0], st.Buckets[drop:]...)
	}
	// Buckets are sorted; events mostly arrive in order, so search from the end.
	i := len(st.Buckets)
	for i > 0 && st.Buckets[i-1].Start > start {
		i--
	}
	if i > 0 && st.Buckets[i-1].Start == start {
		st.Buckets[i-1].Sum += x
		return true
	}
	st.Buckets = slices.Insert(st.Buckets, i, Bucket{Start: start, Sum: x})
	return true
}

// windowStart returns the start (Unix seconds) of the oldest bucket inside
// the window at now of a, a count or sum.
func windowStart(a *Aggregation, now time.Time) int64 {
	return oldestBucket(a.Window, summedWidth(a.Window), now)
}

// oldestBucket returns the start (Unix seconds) of the oldest bucket of
// the given width inside window at now.
func oldestBucket(window, width time.Duration, now time.Time) int64 {
	w := int64(width / time.Second)
	return floorDiv(now.Unix()-int64(window/time.Second), w) * w
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Features computes every feature of s for this record at now into dst
// (reusing its storage) and returns it. A feature with no data has its
// default value. r may be nil: an unknown customer has all defaults.
func (r *Record) Features(s *Schema, now time.Time, dst Vector) Vector {
	dst = grow(dst, len(s.features))
	for i := range s.features {
		f := &s.features[i]
		dst[i] = f.Default
		if r == nil {
			continue
		}
		if f.From == nil {
			if v, ok := r.Attrs[f.Name]; ok && v.Kind == f.Type {
				dst[i] = v
			}
			continue
		}
		st := r.Aggs[f.Name]
		if st == nil {
			continue
		}
		f.From.Op.spec().read(st, f, now, &dst[i])
	}
	return dst
}

// packBuf holds the buffers Pack encodes into before copying the encoding
// to a slice of its exact size.
var packBuf bufPool

type bufPool struct{ p sync.Pool }

func (b *bufPool) get() *[]byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return buf
	}
	buf := make([]byte, 0, 1024)
	return &buf
}

func (b *bufPool) put(buf *[]byte) {
	if cap(*buf) <= 64<<10 { // a rare huge record does not stay pinned
		b.p.Put(buf)
	}
}
