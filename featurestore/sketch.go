package featurestore

// The keyed ops, top and distinct: their state is a few keys per time
// bucket (AggState.Keys), bounded whatever the customer sends.
//
// top keeps, in each bucket, at most TopK values with their counts, by
// the Space-Saving algorithm (Metwally, Agrawal and El Abbadi, 2005): a
// new value arriving at a full bucket takes the place of the value
// counted least, with that count plus one. In a bucket that has seen at
// most TopK distinct values the counts are exact. Past that, a count is
// an overestimate by at most the smallest count of the bucket, and any
// value seen more than 1/TopK of the bucket's events is kept. The
// feature reads the value with the highest count summed over the
// buckets in the window (ties: the smaller value, so both backends and
// every reader agree): exactly the most frequent value when no bucket
// of the window overflowed, and otherwise one whose count is within the
// overflowed buckets' smallest counts of the most frequent.
//
// distinct keeps, in each bucket, the 64-bit FNV-1a hashes of at most
// MaxDistinct distinct values, and reads the number of distinct hashes
// over the buckets in the window, at most MaxDistinct. That is exactly
// min(distinct values, MaxDistinct): a bucket that dropped a value held
// MaxDistinct already, so the window has at least as many. Two values
// whose hashes collide count once (for 32 values, a chance of about
// 3·10⁻¹⁷).
//
// A window is kept in sketchBuckets buckets (BucketWidth), so it is
// exact to within 1/24 of its length: 30d to 30h, 7d to 7h. A state
// holds at most (sketchBuckets+1)·TopK keys of at most MaxKeyLen bytes
// (top: some 29 KiB at the very worst, a few hundred bytes for a
// customer who browses ten categories) or (sketchBuckets+1)·MaxDistinct
// hashes (distinct: at most 8 KiB). A reset delivered late, after events
// that happened after it, keeps the whole state (a count or sum keeps
// exactly the events after the reset).

import (
	"slices"
	"strings"
	"time"
)

const (
	// TopK bounds the values top keeps per bucket.
	TopK = 8
	// MaxDistinct bounds what distinct counts: the feature reads at most
	// MaxDistinct ("MaxDistinct or more").
	MaxDistinct = 32
	// MaxKeyLen bounds a value top or distinct reads: an event whose
	// value is longer is refused (CheckEvent).
	MaxKeyLen = 128
	// sketchBuckets is how many buckets a window of top or distinct is
	// kept in; a state holds at most one more.
	sketchBuckets = 24
	// maxRuns bounds the buckets a read merges; a (corrupt) state with
	// more is read from its newest maxRuns buckets.
	maxRuns = 32
)

// keyOf returns the key ev gives a keyed aggregation, and whether it has
// one (a property that is absent, null, not a string or too long, which
// CheckEvent refuses, has none).
func keyOf(f *Feature, ev *Event) (string, bool) {
	x, ok := ev.Field(f.From.Field)
	if !ok {
		return "", false
	}
	s, ok := x.(string)
	if !ok || s == "" || len(s) > MaxKeyLen {
		return "", false
	}
	return s, true
}

// keyBucket returns the bucket start (Unix seconds) of an event at t in
// a's state at now, and false when the event is already outside the
// window. An aggregation without window has one bucket, at 0; an event
// dated after now counts in now's bucket.
func keyBucket(a *Aggregation, t, now time.Time) (int64, bool) {
	if a.Window == 0 {
		return 0, true
	}
	if t.After(now) {
		t = now
	}
	width := int64(keyedWidth(a.Window) / time.Second)
	start := floorDiv(t.Unix(), width) * width
	return start, start >= keyedWindowStart(a, now)
}

// keyedWindowStart returns the start (Unix seconds) of the oldest bucket
// inside the window at now of a, a top or distinct.
func keyedWindowStart(a *Aggregation, now time.Time) int64 {
	return oldestBucket(a.Window, keyedWidth(a.Window), now)
}

// dropOldKeys drops the keys of buckets that have slid out of a's window.
func (st *AggState) dropOldKeys(a *Aggregation, now time.Time) {
	if a.Window == 0 {
		return
	}
	oldest := keyedWindowStart(a, now)
	drop := 0
	for drop < len(st.Keys) && st.Keys[drop].Start < oldest {
		drop++
	}
	if drop > 0 {
		st.Keys = append(st.Keys[:0], st.Keys[drop:]...)
	}
}

// bucketRange returns the range [i, j) of st.Keys that holds bucket start.
func (st *AggState) bucketRange(start int64) (int, int) {
	j := len(st.Keys)
	for j > 0 && st.Keys[j-1].Start > start { // mostly the newest bucket
		j--
	}
	i := j
	for i > 0 && st.Keys[i-1].Start == start {
		i--
	}
	return i, j
}

func foldTop(st *AggState, f *Feature, ev *Event, now time.Time) bool {
	key, ok := keyOf(f, ev)
	if !ok {
		return false
	}
	start, ok := keyBucket(f.From, ev.Time, now)
	if !ok {
		return false
	}
	st.dropOldKeys(f.From, now)
	st.addTop(start, key, 1)
	st.LastAt = max(st.LastAt, ev.Time.UnixNano())
	return true
}

// addTop counts n more events of key in bucket start.
func (st *AggState) addTop(start int64, key string, n uint64) {
	i, j := st.bucketRange(start)
	b := st.Keys[i:j]
	k, found := slices.BinarySearchFunc(b, key, func(e KeyCount, key string) int { return strings.Compare(e.Key, key) })
	if found {
		b[k].N += n
		return
	}
	if len(b) < TopK {
		st.Keys = slices.Insert(st.Keys, i+k, KeyCount{Start: start, Key: strings.Clone(key), N: n})
		return
	}
	// Space-Saving: the new key takes the place of the least counted
	// (the first in key order among equals), with its count.
	m := 0
	for x := range b {
		if b[x].N < b[m].N {
			m = x
		}
	}
	e := KeyCount{Start: start, Key: strings.Clone(key), N: b[m].N + n}
	st.Keys = slices.Delete(st.Keys, i+m, i+m+1)
	b = st.Keys[i : j-1]
	k, _ = slices.BinarySearchFunc(b, key, func(e KeyCount, key string) int { return strings.Compare(e.Key, key) })
	st.Keys = slices.Insert(st.Keys, i+k, e)
}

func foldDistinct(st *AggState, f *Feature, ev *Event, now time.Time) bool {
	key, ok := keyOf(f, ev)
	if !ok {
		return false
	}
	start, ok := keyBucket(f.From, ev.Time, now)
	if !ok {
		return false
	}
	st.dropOldKeys(f.From, now)
	changed := st.addDistinct(start, hashKey(key))
	if ts := ev.Time.UnixNano(); ts > st.LastAt {
		st.LastAt, changed = ts, true
	}
	return changed
}

// addDistinct adds the hash h to bucket start, and reports whether it
// was not there and the bucket had room for it.
func (st *AggState) addDistinct(start int64, h uint64) bool {
	i, j := st.bucketRange(start)
	b := st.Keys[i:j]
	k, found := slices.BinarySearchFunc(b, h, func(e KeyCount, h uint64) int {
		switch {
		case e.N < h:
			return -1
		case e.N > h:
			return 1
		}
		return 0
	})
	if found || len(b) >= MaxDistinct {
		return false
	}
	st.Keys = slices.Insert(st.Keys, i+k, KeyCount{Start: start, N: h})
	return true
}

// hashKey is the 64-bit FNV-1a hash of s, inline so that hashing
// allocates nothing.
func hashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// runs lays out the buckets of keys inside a's window at now (the
// newest maxRuns of them) as bounds: bucket r is keys[bounds[r]:bounds[r+1]].
// It returns the number of buckets.
func runs(keys []KeyCount, a *Aggregation, now time.Time, bounds *[maxRuns + 1]int) int {
	from := 0
	if a.Window > 0 {
		oldest := keyedWindowStart(a, now)
		for from < len(keys) && keys[from].Start < oldest {
			from++
		}
	}
	var starts [maxRuns]int // newest first
	n := 0
	for i := len(keys); i > from && n < maxRuns; n++ {
		j := i - 1
		for j > from && keys[j-1].Start == keys[i-1].Start {
			j--
		}
		starts[n] = j
		i = j
	}
	for r := range n {
		bounds[r] = starts[n-1-r]
	}
	bounds[n] = len(keys)
	return n
}

// readTop merges the buckets of the window (each in key order) and
// reads the key with the highest summed count.
func readTop(st *AggState, f *Feature, now time.Time, dst *Value) {
	var bounds [maxRuns + 1]int
	n := runs(st.Keys, f.From, now, &bounds)
	var pos [maxRuns]int
	copy(pos[:n], bounds[:n])
	best, bestN := "", uint64(0)
	for {
		// The smallest key at the head of a run, and its summed count.
		key, found := "", false
		for r := range n {
			if pos[r] < bounds[r+1] && (!found || st.Keys[pos[r]].Key < key) {
				key, found = st.Keys[pos[r]].Key, true
			}
		}
		if !found {
			break
		}
		sum := uint64(0)
		for r := range n {
			if pos[r] < bounds[r+1] && st.Keys[pos[r]].Key == key {
				sum += st.Keys[pos[r]].N
				pos[r]++
			}
		}
		if sum > bestN {
			best, bestN = key, sum
		}
	}
	if bestN > 0 {
		*dst = String(best)
	}
}

// readDistinct merges the buckets of the window (each in hash order) and
// counts the distinct hashes, up to MaxDistinct.
func readDistinct(st *AggState, f *Feature, now time.Time, dst *Value) {
	var bounds [maxRuns + 1]int
	n := runs(st.Keys, f.From, now, &bounds)
	var pos [maxRuns]int
	copy(pos[:n], bounds[:n])
	count := 0
	for count < MaxDistinct {
		h, found := uint64(0), false
		for r := range n {
			if pos[r] < bounds[r+1] && (!found || st.Keys[pos[r]].N < h) {
				h, found = st.Keys[pos[r]].N, true
			}
		}
		if !found {
			break
		}
		for r := range n {
			if pos[r] < bounds[r+1] && st.Keys[pos[r]].N == h {
				pos[r]++
			}
		}
		count++
	}
	if count > 0 {
		*dst = Number(float64(count))
	}
}

// mergeTop adds src's counts to st's, bucket by bucket; where a bucket
// overflows, Space-Saving keeps its TopK as it does for events.
func mergeTop(st, src *AggState, a *Aggregation, now time.Time) {
	for _, e := range src.Keys {
		if a.Window > 0 && e.Start < keyedWindowStart(a, now) {
			continue
		}
		st.addTop(e.Start, e.Key, e.N)
	}
	st.dropOldKeys(a, now)
	st.LastAt = max(st.LastAt, src.LastAt)
}

// mergeDistinct adds src's hashes to st's, bucket by bucket.
func mergeDistinct(st, src *AggState, a *Aggregation, now time.Time) {
	for _, e := range src.Keys {
		if a.Window > 0 && e.Start < keyedWindowStart(a, now) {
			continue
		}
		st.addDistinct(e.Start, e.N)
	}
	st.dropOldKeys(a, now)
	st.LastAt = max(st.LastAt, src.LastAt)
}
