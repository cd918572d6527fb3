package featurestore

import (
	"encoding/binary"
	"slices"
	"time"
)

// Decision segments: the catalog segments a customer was in when they
// were last decided for on each channel. Statistics split by segment
// count an outcome (an impression, a click, a conversion, a dismissal)
// in the segments of the decision it follows, not in those the customer
// is in when it is reported: the click on a win-back offer made to a
// lapsed customer counts for "lapsed" even though the purchase it led to
// has taken them out of it. A decision finds its segments in the
// request's context too, which an event does not carry, so they cannot
// be evaluated again when the outcome arrives. The record keeps, per
// channel, the segment names of the latest decision there; the decision
// writes them only when they change, so a customer whose segments are
// stable costs their decisions nothing, and a catalog without segments
// never writes them.

// DecisionSegments is the segments a customer was in at their latest
// decision on a channel.
type DecisionSegments struct {
	Channel  string
	Segments []string // by name, in the catalog's order; empty: in none
	At       int64    // Unix nanoseconds of the decision that set them
}

// DecidedSegments returns the segments of the customer's latest decision
// on channel, as SetDecidedSegments stored them; nil when none is known.
func (r *Record) DecidedSegments(channel string) []string {
	if r == nil {
		return nil
	}
	for i := range r.Decided {
		if r.Decided[i].Channel == channel {
			return r.Decided[i].Segments
		}
	}
	return nil
}

// SetDecidedSegments records that the customer was in segments when
// decided for on channel at at, and reports whether that changed the
// record: the same segments as the ones recorded are not written again
// (At stays that of the first decision that found them). segments is
// copied.
func (r *Record) SetDecidedSegments(channel string, segments []string, at time.Time) bool {
	i := slices.IndexFunc(r.Decided, func(d DecisionSegments) bool { return d.Channel == channel })
	if i >= 0 && slices.Equal(r.Decided[i].Segments, segments) {
		return false
	}
	if i < 0 && len(segments) == 0 {
		return false // none recorded means none
	}
	r.packed = nil
	d := DecisionSegments{Channel: channel, Segments: slices.Clone(segments), At: at.UnixNano()}
	if i < 0 {
		r.Decided = append(r.Decided, d)
	} else {
		r.Decided[i] = d
	}
	return true
}

// mergeDecided takes from's decision segments of each channel where they
// are newer than r's.
func (r *Record) mergeDecided(from *Record) bool {
	changed := false
	for _, d := range from.Decided {
		i := slices.IndexFunc(r.Decided, func(x DecisionSegments) bool { return x.Channel == d.Channel })
		if i >= 0 && d.At <= r.Decided[i].At {
			continue
		}
		d.Segments = slices.Clone(d.Segments)
		if i < 0 {
			r.Decided = append(r.Decided, d)
		} else {
			r.Decided[i] = d
		}
		r.packed = nil
		changed = true
	}
	return changed
}

// DecidedSegmentsAre reports whether the record of the last Read or
// ReadRecord holds exactly segments as those of its latest decision on
// channel (none recorded counts as none). It allocates nothing.
func (v *View) DecidedSegmentsAre(channel string, segments []string) bool {
	if v.decided != nil {
		return slices.Equal(v.decided.DecidedSegments(channel), segments)
	}
	if len(v.decidedRaw) == 0 {
		return len(segments) == 0 // a record of before version 6, or none
	}
	d := decoder{b: v.decidedRaw, view: v}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		ch := d.bytes()
		m := d.count()
		same := string(ch) == channel
		if same && m != len(segments) {
			return false
		}
		for j := range m {
			name := d.bytes()
			if same && string(name) != segments[j] {
				return false
			}
		}
		d.varint()
		if same {
			return d.err == nil
		}
	}
	return len(segments) == 0
}

func appendDecided(dst []byte, ds []DecisionSegments) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ds)))
	for _, d := range ds {
		dst = appendString(dst, d.Channel)
		dst = binary.AppendUvarint(dst, uint64(len(d.Segments)))
		for _, s := range d.Segments {
			dst = appendString(dst, s)
		}
		dst = binary.AppendVarint(dst, d.At)
	}
	return dst
}

// decided decodes decision segments (codec version 6), nil when there
// are none.
func (d *decoder) decided() []DecisionSegments {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]DecisionSegments, 0, n)
	for range n {
		ds := DecisionSegments{Channel: d.name()}
		if m := d.count(); m > 0 {
			ds.Segments = make([]string, m)
			for j := range ds.Segments {
				ds.Segments[j] = d.name()
			}
		}
		ds.At = d.varint()
		if d.err != nil {
			return out
		}
		out = append(out, ds)
	}
	return out
}
