package featurestore

import (
	"time"
	"unsafe"
)

// Packed is a record in its encoded form (AppendRecord): what the cache
// holds of a customer. A cached customer costs its encoding and nothing
// else: no maps, no per-feature structs, no memoised vector, and no
// pointer for the garbage collector to follow inside it. A decision reads
// it through a View, which decodes only what the schema reads, into
// buffers it reuses. A nil Packed is a customer known to have no record.
//
// A Packed is immutable: nothing writes to its bytes once made, which is
// what lets a View hand out strings that point into them.
type Packed []byte

// Pack returns r's encoding, made on the first call and kept until r
// changes through one of its methods (SetAttr, Apply, AddContact,
// TakeLegacySeen); code that changes r's fields directly must not call
// Pack before. Like every use of a Record, it is not safe for concurrent
// use: a backend packs a record before it shares it.
func (r *Record) Pack() Packed {
	if r.packed == nil {
		buf := packBuf.get()
		*buf = AppendRecord((*buf)[:0], r)
		r.packed = Packed(append(make([]byte, 0, len(*buf)), *buf...))
		packBuf.put(buf)
	}
	return r.packed
}

// Record decodes p into a new record, which may be changed; nil for a
// nil p.
func (p Packed) Record() (*Record, error) {
	if p == nil {
		return nil, nil
	}
	r, err := UnmarshalRecord(p)
	if err != nil {
		return nil, err
	}
	if len(r.Seen) == 0 {
		r.packed = p // the same record, and immutable
	}
	return r, nil
}

// View reads what a decision needs of a packed record: its features
// under a schema and its contact history. The zero View is ready to use.
// A View is not safe for concurrent use; keep one per goroutine (or per
// pooled request) and reuse it, so that a decision allocates nothing.
type View struct {
	vec      Vector
	strs     []string // list elements
	buckets  []Bucket
	keys     []KeyCount // of top and distinct
	contacts []Contact
	// exposures are the last read record's: its own (ReadRecord, never
	// written to) or expBuf, decoded into (Read).
	exposures, expBuf []Exposure
	// The decision segments of the last read record: its own
	// (ReadRecord), or their encoding, decoded on demand (Read).
	decided    *Record
	decidedRaw []byte
	// st is the state of the aggregation being read: a field rather than
	// a local, which would escape through the op table's read func.
	st AggState
}

// Read returns the features of p under s at now, as Record.Features
// computes them for the decoded record, and p's contact history, oldest
// first. What it returns is valid until the next Read of v; its strings
// point into p (which is immutable) and stay valid as long as they are
// used. A nil p (no record) gives the schema's defaults and no history.
// A corrupt p gives what could be read before the corruption.
func (v *View) Read(p Packed, s *Schema, now time.Time) (Vector, []Contact) {
	v.decided, v.decidedRaw = nil, nil
	if p == nil {
		v.exposures = nil
		return s.defaults, nil
	}
	v.vec = s.Defaults(v.vec)
	v.strs, v.contacts, v.exposures = v.strs[:0], v.contacts[:0], nil
	d := decoder{b: p, view: v}
	version := d.byte()
	if version < 1 || version > codecVersion {
		return v.vec, nil
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		name := d.bytes()
		val := d.value()
		if i, ok := s.byName[string(name)]; ok {
			if f := &s.features[i]; f.From == nil && val.Kind == f.Type {
				v.vec[i] = val
			}
		}
	}
	st := &v.st
	for n := d.count(); n > 0 && d.err == nil; n-- {
		name := d.bytes()
		d.aggState(st, v, version)
		if i, ok := s.byName[string(name)]; ok {
			if f := &s.features[i]; f.From != nil {
				f.From.Op.spec().read(st, f, now, &v.vec[i])
			}
		}
	}
	if version <= 2 {
		for n := d.count(); n > 0 && d.err == nil; n-- {
			d.bytes()
			d.varint()
		}
	}
	if version >= 2 {
		v.contacts = d.contacts(v.contacts)
	}
	if version >= 5 {
		v.expBuf = d.exposures(v.expBuf[:0])
		v.exposures = v.expBuf
	}
	if version >= 6 {
		v.decidedRaw = d.b
	}
	if d.err != nil {
		v.exposures, v.decidedRaw = nil, nil
		return v.vec, nil
	}
	return v.vec, v.contacts
}

// Exposed reports whether the record of the last Read or ReadRecord has
// an exposure to experiment. A record that could not be read has none.
func (v *View) Exposed(experiment string) bool {
	for i := range v.exposures {
		if v.exposures[i].Experiment == experiment {
			return true
		}
	}
	return false
}

// ReadRecord is Read of a record that is not packed (a store's, read on
// a cache miss): r is not modified, and may be shared.
func (v *View) ReadRecord(r *Record, s *Schema, now time.Time) (Vector, []Contact) {
	v.decided, v.decidedRaw = r, nil
	if r == nil {
		v.exposures = nil
		return s.defaults, nil
	}
	v.vec = r.Features(s, now, v.vec)
	v.exposures = r.Exposures
	return v.vec, r.Contacts
}

// viewString returns b as a string without copying: b is part of a
// Packed, which is never written to.
func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
