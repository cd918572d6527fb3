package featurestore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// A customer's timeline is what an agent opens when the customer calls:
// their recent events on every channel (outcome events included, so the
// offers decided and shown are there with their decision), and the
// changes to their profile, newest first. It is kept by the backends
// beside the record, never inside it: a decision does not read or decode
// it. Each backend keeps the newest TimelineLength entries of a customer
// (its own option, DefaultTimelineLength by default), ordered by
// TimelineEntry.At then Seq, and adds a mutation's entries
// (Mutation.Timeline) in the same atomic commit as its record.

// DefaultTimelineLength is how many entries a backend keeps of a
// customer's timeline unless configured otherwise.
const DefaultTimelineLength = 200

// MaxTimelineProperties bounds the encoded properties of one timeline
// entry, in bytes: an event whose properties are larger is kept without
// them (TimelineEntry.Truncated), so a timeline stays a few hundred KiB at
// most.
const MaxTimelineProperties = 4 << 10

// TimelineKind says what a timeline entry records.
type TimelineKind uint8

// Timeline entry kinds.
const (
	// TimelineEvent is an event: Type, Channel, Properties; an outcome
	// event (impression, click, conversion, dismiss) also names its
	// OfferID and, when known, DecisionID.
	TimelineEvent TimelineKind = iota + 1
	// TimelineProfile is a change of profile attributes: Properties holds
	// each attribute changed with its new value (as Value.JSON renders it).
	TimelineProfile
)

// ProfileChange is the Type of a TimelineProfile entry.
const ProfileChange = "profile"

// TimelineEntry is one line of a customer's timeline.
type TimelineEntry struct {
	// At is when it happened, Unix nanoseconds: the event's time, or the
	// server's time of a profile change.
	At int64
	// Seq orders entries of one At, in the order written; the backend
	// sets it when it stores the entry.
	Seq        uint64
	Kind       TimelineKind
	Type       string // the event's type; ProfileChange for a profile change
	Channel    string
	OfferID    string // outcome events
	DecisionID string // outcome events of a known decision
	EventID    string // the event's id, if it had one
	Properties map[string]any
	// Truncated says the properties were larger than
	// MaxTimelineProperties and were not kept.
	Truncated bool
}

// Time returns e.At as a time.
func (e *TimelineEntry) Time() time.Time { return time.Unix(0, e.At).UTC() }

// Outcome returns the outcome an event entry records, if it records one.
func (e *TimelineEntry) Outcome() (Outcome, bool) {
	if e.Kind != TimelineEvent {
		return 0, false
	}
	return ParseOutcome(e.Type)
}

// TimelineOrderLen is the length of an entry's order bytes.
const TimelineOrderLen = 16

// AppendTimelineOrder appends the order bytes of an entry at at with seq
// to dst: 16 bytes whose byte order is the entries' order (At, then Seq),
// for a backend's keys.
func AppendTimelineOrder(dst []byte, at int64, seq uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(at)^1<<63) // times before 1970 sort first
	return binary.BigEndian.AppendUint64(dst, seq)
}

// ParseTimelineOrder returns the At and Seq of order bytes.
func ParseTimelineOrder(b []byte) (at int64, seq uint64, err error) {
	if len(b) != TimelineOrderLen {
		return 0, 0, fmt.Errorf("%w: timeline order of %d bytes", ErrCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b) ^ 1<<63), binary.BigEndian.Uint64(b[8:]), nil
}

// timelineV1 is the first byte of an entry's body in its current
// encoding: then the kind, a flags byte (bit 0: Truncated), the type,
// channel, offer, decision and event id, each a uvarint length and its
// bytes, and the rest is the properties as a JSON object (none when
// empty). Hand-written, properties included (appendJSON), rather than
// encoding/json, whose reflection and sorted map keys cost the events
// path some ten allocations per event.
const timelineV1 = 1

// AppendTimelineEntry appends the stored body of e (all but At and Seq)
// to dst. Properties that encode to more than MaxTimelineProperties
// bytes are left out and the entry marked Truncated.
func AppendTimelineEntry(dst []byte, e *TimelineEntry) ([]byte, error) {
	start := len(dst)
	dst = append(dst, timelineV1, byte(e.Kind), 0)
	for _, s := range [...]string{e.Type, e.Channel, e.OfferID, e.DecisionID, e.EventID} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	truncated := e.Truncated
	if len(e.Properties) > 0 && !truncated {
		at := len(dst)
		var ok bool
		if dst, ok = appendJSON(dst, e.Properties); !ok {
			p, err := json.Marshal(e.Properties)
			if err != nil {
				return dst[:start], fmt.Errorf("timeline entry: properties: %w", err)
			}
			dst = append(dst[:at], p...)
		}
		if len(dst)-at > MaxTimelineProperties {
			dst, truncated = dst[:at], true
		}
	}
	if truncated {
		dst[start+2] |= 1
	}
	return dst, nil
}

// UnmarshalTimelineEntry decodes an entry from its order bytes and body.
func UnmarshalTimelineEntry(order, body []byte) (TimelineEntry, error) {
	at, seq, err := ParseTimelineOrder(order)
	if err != nil {
		return TimelineEntry{}, err
	}
	if len(body) < 3 || body[0] != timelineV1 {
		return TimelineEntry{}, fmt.Errorf("%w: timeline entry of %d bytes, version %v", ErrCorrupt, len(body), body[:min(len(body), 1)])
	}
	e := TimelineEntry{At: at, Seq: seq, Kind: TimelineKind(body[1]), Truncated: body[2]&1 != 0}
	rest := body[3:]
	for _, f := range [...]*string{&e.Type, &e.Channel, &e.OfferID, &e.DecisionID, &e.EventID} {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return TimelineEntry{}, fmt.Errorf("%w: timeline entry: bad string", ErrCorrupt)
		}
		*f, rest = string(rest[w:w+int(n)]), rest[w+int(n):]
	}
	if len(rest) > 0 {
		if err := json.Unmarshal(rest, &e.Properties); err != nil {
			return TimelineEntry{}, fmt.Errorf("%w: timeline entry properties: %v", ErrCorrupt, err)
		}
	}
	return e, nil
}

// SortTimeline sorts entries newest first (At, then Seq, descending), as
// every reader lists them.
func SortTimeline(entries []TimelineEntry) {
	slices.SortFunc(entries, func(a, b TimelineEntry) int {
		switch {
		case a.At != b.At:
			if a.At > b.At {
				return -1
			}
			return 1
		case a.Seq > b.Seq:
			return -1
		case a.Seq < b.Seq:
			return 1
		}
		return 0
	})
}

// eventEntry is the timeline entry of an event.
func eventEntry(ev *Event) TimelineEntry {
	return TimelineEntry{At: ev.Time.UnixNano(), Kind: TimelineEvent, Type: ev.Type, Channel: ev.Channel,
		OfferID: ev.OfferID, DecisionID: ev.DecisionID, EventID: ev.ID, Properties: ev.Properties}
}

// ProfileMutation is AttrsMutation that also adds a TimelineProfile entry
// at at to the customer's timeline, naming the attributes whose value it
// changed (none changed: no entry).
func ProfileMutation(id string, attrs map[string]Value, at time.Time) Mutation {
	var changed map[string]any // of the last run
	return Mutation{CustomerID: id,
		Apply: func(r *Record) bool {
			changed = make(map[string]any, len(attrs))
			for _, k := range slices.Sorted(maps.Keys(attrs)) {
				v := attrs[k]
				if old, ok := r.Attrs[k]; !ok || !old.Equal(v) {
					changed[k] = v.JSON()
				}
				r.SetAttr(k, v)
			}
			return len(attrs) > 0
		},
		Timeline: func() []TimelineEntry {
			if len(changed) == 0 {
				return nil
			}
			return []TimelineEntry{{At: at.UnixNano(), Kind: TimelineProfile, Type: ProfileChange, Properties: changed}}
		},
	}
}

// appendJSON appends v, a value as encoding/json decodes JSON into an
// any (nil, bool, float64, string, []any, map[string]any), to dst as
// JSON, without reflection or sorting: what an event's properties hold.
// It reports false, having appended garbage, for anything else (a
// non-finite number, another type): the caller then uses encoding/json.
func appendJSON(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, false
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64), true
	case string:
		return appendJSONString(dst, x), true
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, e); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case map[string]any:
		dst = append(dst, '{')
		first := true
		for k, e := range x {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendJSON(dst, e); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	}
	return dst, false
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			case b < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
