package featurestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// ErrCorrupt is returned by UnmarshalRecord for bytes it did not write.
var ErrCorrupt = errors.New("featurestore: corrupt record")

// codecVersion is written first. Version 2 added the contact history;
// version 3 dropped the event ids applied, which moved to the backends'
// dedupe key spaces (Dedupe); version 4 added the keys of top and
// distinct (AggState.Keys): flagged by keysFlag in the kind byte of the
// aggregation's Last, so an aggregation without keys is encoded, and
// decoded, as before. Records of versions 1 and 2 still decode, their ids
// into Record.Seen for the backend to move on the first write. Version 5
// added the experiment exposures (Record.Exposures) after the contacts; a
// record without exposures is still written as version 4, byte for byte
// as before, so a node that knows only version 4 reads every record of a
// catalog without experiments. Version 6 added the segments of the
// customer's latest decision on each channel (Record.Decided) after the
// exposures; a record without them is written as version 5 or 4, as
// before.
const codecVersion = 6

// codecVersionNoExposures is the version of a record without exposures
// and without decision segments.
const codecVersionNoExposures = 4

// codecVersionNoDecided is the version of a record with exposures and
// without decision segments.
const codecVersionNoDecided = 5

// keysFlag marks, in the kind byte of an aggregation's Last, that its
// Keys follow its LogFrom (version 4).
const keysFlag = 0x80

// maxCount bounds every length prefix, so corrupt input cannot make the
// decoder allocate without limit.
const maxCount = 1 << 20

// AppendRecord appends the binary encoding of r to dst. The format is
// versioned by its first byte and independent of any schema. r.Seen is
// not encoded (see Record.Seen).
func AppendRecord(dst []byte, r *Record) []byte {
	version := byte(codecVersion)
	switch {
	case len(r.Decided) > 0:
	case len(r.Exposures) > 0:
		version = codecVersionNoDecided
	default:
		version = codecVersionNoExposures
	}
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, uint64(len(r.Attrs)))
	for name, v := range r.Attrs {
		dst = appendString(dst, name)
		dst = appendValue(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Aggs)))
	for name, st := range r.Aggs {
		dst = appendString(dst, name)
		dst = appendFloat(dst, st.Total)
		dst = binary.AppendUvarint(dst, uint64(len(st.Buckets)))
		prev := int64(0)
		for _, b := range st.Buckets {
			dst = binary.AppendVarint(dst, b.Start-prev)
			prev = b.Start
			dst = appendFloat(dst, b.Sum)
		}
		kindAt := len(dst)
		dst = appendValue(dst, st.Last)
		if len(st.Keys) > 0 {
			dst[kindAt] |= keysFlag
		}
		dst = binary.AppendVarint(dst, st.LastAt)
		dst = binary.AppendVarint(dst, st.ResetAt)
		dst = binary.AppendUvarint(dst, uint64(len(st.Recent)))
		prevAt := int64(0)
		for _, c := range st.Recent {
			dst = binary.AppendVarint(dst, c.At-prevAt)
			prevAt = c.At
			dst = appendFloat(dst, c.X)
		}
		dst = binary.AppendVarint(dst, st.LogFrom)
		if len(st.Keys) > 0 {
			dst = binary.AppendUvarint(dst, uint64(len(st.Keys)))
			prevK := int64(0)
			for _, k := range st.Keys {
				dst = binary.AppendVarint(dst, k.Start-prevK)
				prevK = k.Start
				dst = appendString(dst, k.Key)
				dst = binary.AppendUvarint(dst, k.N)
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Contacts)))
	prevC := int64(0)
	for _, c := range r.Contacts {
		dst = appendString(dst, c.OfferID)
		dst = appendString(dst, c.Channel)
		dst = append(dst, byte(c.Kind))
		dst = binary.AppendVarint(dst, c.At-prevC)
		prevC = c.At
	}
	if version >= 5 {
		dst = binary.AppendUvarint(dst, uint64(len(r.Exposures)))
		for _, e := range r.Exposures {
			dst = appendString(dst, e.Experiment)
			dst = appendString(dst, e.Variant)
			dst = binary.AppendVarint(dst, e.At)
			dst = binary.AppendVarint(dst, e.Conversions)
			dst = appendFloat(dst, e.Value)
		}
	}
	if version >= 6 {
		dst = appendDecided(dst, r.Decided)
	}
	return dst
}

// UnmarshalRecord decodes a record written by AppendRecord.
func UnmarshalRecord(b []byte) (*Record, error) {
	d := decoder{b: b}
	version := d.byte()
	if version < 1 || version > codecVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	r := &Record{}
	if n := d.count(); n > 0 {
		r.Attrs = make(map[string]Value, n)
		for range n {
			name := d.name()
			r.Attrs[name] = d.value()
		}
	}
	if n := d.count(); n > 0 {
		r.Aggs = make(map[string]*AggState, n)
		// One allocation for every aggregate rather than one each: a write
		// decodes the record of each customer it touches.
		states := make([]AggState, n)
		for i := range states {
			name := d.name()
			st := &states[i]
			d.aggState(st, nil, version)
			r.Aggs[name] = st
		}
	}
	if version <= 2 {
		if n := d.count(); n > 0 {
			r.Seen = make([]SeenEvent, n)
			prev := int64(0)
			for i := range r.Seen {
				r.Seen[i].ID = d.string()
				prev += d.varint()
				r.Seen[i].At = prev
			}
		}
	}
	if version >= 2 {
		r.Contacts = d.contacts(nil)
	}
	if version >= 5 {
		r.Exposures = d.exposures(nil)
	}
	if version >= 6 {
		r.Decided = d.decided()
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return r, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.Kind))
	switch v.Kind {
	case TypeNumber:
		dst = appendFloat(dst, v.Num)
	case TypeString:
		dst = appendString(dst, v.Str)
	case TypeBool, TypeTime:
		dst = binary.AppendVarint(dst, v.Int)
	case TypeList:
		dst = binary.AppendUvarint(dst, uint64(len(v.List)))
		for _, s := range v.List {
			dst = appendString(dst, s)
		}
	}
	return dst
}

// decoder reads the encoding; the first error sticks and later reads
// return zero values. With a view, it decodes for View.Read: strings
// point into the (immutable, packed) input and lists and the slices of an
// AggState reuse the view's buffers, so decoding allocates nothing.
type decoder struct {
	b    []byte
	err  error
	view *View
}

// aggState decodes the state of one aggregation, written by codec
// version, into st, its slices reusing v's buffers when v is not nil
// (else allocated).
func (d *decoder) aggState(st *AggState, v *View, version byte) {
	*st = AggState{Total: d.float()}
	if nb := d.count(); nb > 0 {
		if v != nil {
			v.buckets = growTo(v.buckets, nb)
			st.Buckets = v.buckets
		} else {
			st.Buckets = make([]Bucket, nb)
		}
		prev := int64(0)
		for j := range st.Buckets {
			prev += d.varint()
			st.Buckets[j] = Bucket{Start: prev, Sum: d.float()}
		}
	}
	kind := d.byte()
	keys := kind&keysFlag != 0 && version >= 4
	if keys {
		kind &^= keysFlag
	}
	st.Last = d.valueOf(kind)
	st.LastAt = d.varint()
	st.ResetAt = d.varint()
	if nr := d.count(); nr > 0 {
		if v != nil {
			// No op reads the log of a reset: skip it.
			for range nr {
				d.varint()
				d.float()
			}
		} else {
			st.Recent = make([]Contribution, nr)
		}
		prevAt := int64(0)
		for j := range st.Recent {
			prevAt += d.varint()
			st.Recent[j] = Contribution{At: prevAt, X: d.float()}
		}
	}
	st.LogFrom = d.varint()
	if !keys {
		return
	}
	if nk := d.count(); nk == 0 {
		d.fail("keys") // flagged, so at least one
	} else {
		if v != nil {
			v.keys = growTo(v.keys, nk)
			st.Keys = v.keys
		} else {
			st.Keys = make([]KeyCount, nk)
		}
		prev := int64(0)
		for j := range st.Keys {
			prev += d.varint()
			st.Keys[j] = KeyCount{Start: prev, Key: d.string(), N: d.uvarint()}
		}
	}
}

// contacts decodes a contact history, appending to dst (a fresh slice
// when dst is nil and there are contacts).
func (d *decoder) contacts(dst []Contact) []Contact {
	n := d.count()
	if n == 0 {
		return dst
	}
	if dst == nil {
		dst = make([]Contact, 0, n)
	}
	prev := int64(0)
	for range n {
		c := Contact{OfferID: d.string(), Channel: d.name()}
		if c.Kind = Outcome(d.byte()); c.Kind < Impression || c.Kind > Dismiss {
			d.fail("outcome")
			return dst
		}
		prev += d.varint()
		c.At = prev
		dst = append(dst, c)
	}
	return dst
}

// exposures decodes experiment exposures, appending to dst (a fresh
// slice when dst is nil and there are exposures).
func (d *decoder) exposures(dst []Exposure) []Exposure {
	n := d.count()
	if n == 0 {
		return dst
	}
	if dst == nil {
		dst = make([]Exposure, 0, n)
	}
	for range n {
		e := Exposure{Experiment: d.name(), Variant: d.name(), At: d.varint(), Conversions: d.varint(), Value: d.float()}
		if d.err != nil {
			return dst
		}
		dst = append(dst, e)
	}
	return dst
}

// growTo returns s with length n, reusing its storage if it can.
func growTo[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if len(d.b) > 0 && d.b[0] < 0x80 { // most lengths and counts
		x := uint64(d.b[0])
		d.b = d.b[1:]
		return x
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a length prefix, checking it against the bytes left (every
// element takes at least one byte).
func (d *decoder) count() int {
	n := d.uvarint()
	if n > maxCount || n > uint64(len(d.b)) {
		d.fail("length")
		return 0
	}
	return int(n)
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.fail("float")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return f
}

// bytes reads a string's bytes, without copying.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) string() string {
	if d.view != nil {
		return viewString(d.bytes())
	}
	return string(d.bytes())
}

// name decodes the name of an attribute, an aggregate or a channel,
// interned.
func (d *decoder) name() string {
	if d.view != nil {
		return viewString(d.bytes())
	}
	return internName(d.bytes())
}

// Interned names. A write decodes the record of every customer it
// touches, and the names of its attributes and aggregates are the
// schema's: the same few in every record, each copied per record before
// (14% of the allocations of a durable event). Readers look the name up
// in the current table without a lock or an allocation; a name not yet
// there is added under a lock, copying the table (names are few, and
// added once). Customer attributes may be named freely, so the table
// stops growing at maxInterned names; past it names are copied per
// record, as before.
var interned struct {
	table atomic.Pointer[map[string]string]
	mu    sync.Mutex
}

const maxInterned = 1024

func internName(b []byte) string {
	if t := interned.table.Load(); t != nil {
		if s, ok := (*t)[string(b)]; ok {
			return s
		}
	}
	interned.mu.Lock()
	defer interned.mu.Unlock()
	var old map[string]string
	if t := interned.table.Load(); t != nil {
		old = *t
	}
	if s, ok := old[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(old) >= maxInterned {
		return s
	}
	t := make(map[string]string, len(old)+1)
	for k, v := range old {
		t[k] = v
	}
	t[s] = s
	interned.table.Store(&t)
	return s
}

func (d *decoder) value() Value { return d.valueOf(d.byte()) }

// valueOf decodes a value whose kind byte, kind, was read.
func (d *decoder) valueOf(kind byte) Value {
	v := Value{Kind: Type(kind)}
	switch v.Kind {
	case 0:
	case TypeNumber:
		v.Num = d.float()
	case TypeString:
		v.Str = d.string()
	case TypeBool, TypeTime:
		v.Int = d.varint()
	case TypeList:
		n := d.count()
		if n > 0 && d.view != nil {
			start := len(d.view.strs)
			for range n {
				d.view.strs = append(d.view.strs, d.string())
			}
			v.List = d.view.strs[start:len(d.view.strs):len(d.view.strs)]
		} else if n > 0 {
			v.List = make([]string, n)
			for i := range v.List {
				v.List[i] = d.string()
			}
		}
	default:
		d.fail("value kind")
	}
	return v
}
