package featurestore

import (
	"slices"
	"time"
)

// DefaultDedupeWindow is how long an applied event id keeps a retry of
// the event from being applied again, unless a backend is configured
// with another window.
const DefaultDedupeWindow = 24 * time.Hour

// MaxEventIDLen bounds the event id a client sends (its idempotency key),
// in bytes: room for a UUID, a ULID or a hex SHA-256 with a prefix, while
// keeping every dedupe entry small.
const MaxEventIDLen = 128

// Dedupe is the idempotency side of a Mutation: the ids of the events it
// applies. Event ids are kept outside the customer's record, in a key
// space of the backend where each id applied lives for the backend's
// dedupe window and then expires, so a record does not grow with the
// customer's event rate and an event does not rewrite every id.
//
// A backend that runs a Mutation with a Dedupe, for every run of Apply:
// sets Seen[i] when IDs[i] was applied within its window (an entry not
// yet expired, or an id an earlier mutation of the same call claimed);
// runs Apply, which skips the events whose id is seen; and commits, with
// the record and atomically with it, an entry expiring one window later
// for every id not seen. A concurrent claim of the same id (another node)
// makes the commit fail and the mutation run again, as a compare-and-set
// conflict on the record does.
type Dedupe struct {
	// IDs are the distinct event ids, in order of first appearance.
	IDs []string
	// Seen is set by the backend before each run of Apply, one flag per id.
	Seen []bool
	// Fresh says the writer minted IDs for this write and no one could
	// have applied them before (a decision's impressions, named after
	// its new decision id): a backend may then skip looking them up (the
	// embedded store's lookup is a seek down to its tables) but still
	// writes their entries, so a later report of the same id is a
	// duplicate.
	Fresh bool

	// index is the position of each id in IDs, for EventMutations'
	// Apply, once there are more than a few: below, a scan is cheaper.
	index map[string]int
}

// dedupeScan is how many ids a Dedupe finds by a scan of IDs rather than
// a map.
const dedupeScan = 8

// position returns the position of id in d.IDs, or -1.
func (d *Dedupe) position(id string) int {
	if d.index != nil {
		if k, ok := d.index[id]; ok {
			return k
		}
		return -1
	}
	return slices.Index(d.IDs, id)
}

// add appends id, not in d.IDs, to d.IDs.
func (d *Dedupe) add(id string) {
	d.IDs = append(d.IDs, id)
	switch {
	case d.index != nil:
		d.index[id] = len(d.IDs) - 1
	case len(d.IDs) > dedupeScan:
		d.index = make(map[string]int, 2*len(d.IDs))
		for k, x := range d.IDs {
			d.index[x] = k
		}
	}
}

// Reset sizes Seen to IDs and marks no id seen.
func (d *Dedupe) Reset() {
	if cap(d.Seen) < len(d.IDs) {
		d.Seen = make([]bool, len(d.IDs))
	}
	d.Seen = d.Seen[:len(d.IDs)]
	clear(d.Seen)
}

// LegacyClaim is an event id to move from a record written by codec
// version 2 or earlier (Record.Seen) into a backend's dedupe key space,
// with the time its entry expires.
type LegacyClaim struct {
	ID      string
	Expires time.Time
}

// TakeLegacySeen removes the event ids the record kept inside it (codec
// version 2 or earlier) and returns those still within window at now,
// each expiring window after it was applied. The backend treats them as
// claimed ids of the call, seen by every mutation, and stores them as
// dedupe entries whenever it commits the customer; a record that is not
// rewritten keeps them for the next write.
func (r *Record) TakeLegacySeen(window time.Duration, now time.Time) []LegacyClaim {
	r.packed = nil
	var claims []LegacyClaim
	for _, s := range r.Seen {
		if exp := time.Unix(0, s.At).Add(window); exp.After(now) {
			claims = append(claims, LegacyClaim{ID: s.ID, Expires: exp})
		}
	}
	r.Seen = nil
	return claims
}
