package featurestore

// Aggregation ops. Everything an op means is one row of the ops table
// below: what it makes and reads (validation, for NewSchema and the
// catalog compiler alike), how an event folds into its state, how a reset
// treats events it arrives after, how the state reads as a value and until
// when that value holds without a write, and how the states of two
// customers merge into one (Record.Merge). Adding an op is a constant and a
// row here, plus its line in docs/catalog.md and its tests; nothing else
// switches on Op.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Op is an event aggregation operator.
type Op uint8

// Aggregation operators.
const (
	OpCount    Op = iota + 1 // number of matching events
	OpSum                    // sum of a numeric property
	OpLast                   // latest value of a property
	OpLastTime               // timestamp of the latest event
	OpTop                    // most frequent value of a string property (sketch.go)
	OpDistinct               // number of distinct values of a string property (sketch.go)
)

// opSpec is one aggregation op.
type opSpec struct {
	name string
	// makes is the type of the value the op makes; 0 for any type (the
	// feature's own).
	makes Type
	// field says the op reads an event property, Aggregation.Field: then
	// it is required, else it is forbidden.
	field bool
	// reads is the type the op reads its field as; 0 for the feature's
	// own type.
	reads Type
	// keyed ops read their field as a key, at most MaxKeyLen bytes, and
	// keep counts per key in Keys (sketch.go).
	keyed bool
	// summed ops keep a count or a sum of contributions, in Total or in
	// Buckets (and in Recent, for a late reset); the others keep the
	// newest event (LastAt, Last) or, keyed, their Keys.
	summed bool
	// fold folds ev, an event of the aggregation's type, into st and
	// reports whether st changed.
	fold func(st *AggState, f *Feature, ev *Event, now time.Time) bool
	// read sets *dst to the value st holds at now, and leaves it (the
	// feature's default) when st holds none. Writing through dst rather
	// than returning a Value keeps Record.Features as fast as the switch
	// it replaced (BenchmarkFeatures: returning the 64-byte Value cost
	// +35%).
	read func(st *AggState, f *Feature, now time.Time, dst *Value)
	// merge folds src, the state of the same feature in the record of an
	// id merged away (Record.Merge), into dst. Both have been brought to
	// the same reset first (alignResets), so each holds only what counts
	// after the later of their resets.
	merge func(dst, src *AggState, a *Aggregation, now time.Time)
}

var ops = [...]opSpec{
	OpCount: {name: "count", makes: TypeNumber, summed: true, fold: foldCount, read: readSummed, merge: mergeSummed},
	OpSum:   {name: "sum", makes: TypeNumber, field: true, reads: TypeNumber, summed: true, fold: foldSum, read: readSummed, merge: mergeSummed},
	OpLast: {name: "last", field: true, fold: foldLast, merge: mergeNewest,
		read: func(st *AggState, f *Feature, now time.Time, dst *Value) {
			if fresh(st, f.From, now) && st.Last.Kind == f.Type {
				*dst = st.Last
			}
		}},
	OpLastTime: {name: "last_time", makes: TypeTime, fold: foldLastTime, merge: mergeNewest,
		read: func(st *AggState, f *Feature, now time.Time, dst *Value) {
			if fresh(st, f.From, now) {
				*dst = Value{Kind: TypeTime, Int: st.LastAt}
			}
		}},
	OpTop: {name: "top", makes: TypeString, field: true, reads: TypeString, keyed: true,
		fold: foldTop, read: readTop, merge: mergeTop},
	OpDistinct: {name: "distinct", makes: TypeNumber, field: true, reads: TypeString, keyed: true,
		fold: foldDistinct, read: readDistinct, merge: mergeDistinct},
}

func (o Op) spec() *opSpec {
	if o == 0 || int(o) >= len(ops) {
		return nil
	}
	return &ops[o]
}

func (o Op) String() string {
	if s := o.spec(); s != nil {
		return s.name
	}
	return fmt.Sprintf("op(%d)", o)
}

// ParseOp returns the Op named s.
func ParseOp(s string) (Op, bool) {
	for o := range ops {
		if ops[o].name != "" && ops[o].name == s {
			return Op(o), true
		}
	}
	return 0, false
}

// OpNames lists the name of every op, in order.
func OpNames() []string {
	var names []string
	for _, s := range ops {
		if s.name != "" {
			names = append(names, s.name)
		}
	}
	return names
}

// Reads returns the type o reads its field as in a feature of type t.
func (o Op) Reads(t Type) Type {
	if s := o.spec(); s != nil && s.reads != 0 {
		return s.reads
	}
	return t
}

// Check reports whether o may aggregate into a feature of type t reading
// the event property field ("" for none), and if not, why.
func (o Op) Check(t Type, field string) *OpError {
	s := o.spec()
	switch {
	case s == nil:
		return &OpError{Op: o, Attr: "op", Problem: OpUnknown}
	case s.makes != 0 && t != s.makes:
		return &OpError{Op: o, Attr: "op", Problem: OpMakesOtherType, Type: t}
	case s.field && field == "":
		return &OpError{Op: o, Attr: "field", Problem: OpNeedsField}
	case !s.field && field != "":
		return &OpError{Op: o, Attr: "field", Problem: OpReadsNoField}
	}
	return nil
}

// OpProblem is what is wrong with an op where it is used.
type OpProblem uint8

// Problems of an op.
const (
	OpUnknown        OpProblem = iota + 1 // not an op
	OpMakesOtherType                      // it makes another type than the feature's
	OpNeedsField                          // it reads a property, and none is named
	OpReadsNoField                        // it reads no property, and one is named
)

// OpError is an op used where it does not fit, structured so that a
// catalog compiler can place it: Attr is the attribute of the aggregation
// at fault ("op" or "field").
type OpError struct {
	Op      Op
	Attr    string
	Problem OpProblem
	Type    Type // the feature's type, for OpMakesOtherType
}

// Error words the problem for a caller of NewSchema (in terms of Go fields).
func (e *OpError) Error() string {
	switch e.Problem {
	case OpMakesOtherType:
		return fmt.Sprintf("op %s makes a %s, feature is a %s", e.Op, e.Op.spec().makes, e.Type)
	case OpNeedsField:
		return fmt.Sprintf("op %s needs a field", e.Op)
	case OpReadsNoField:
		return fmt.Sprintf("op %s reads no field", e.Op)
	}
	return "op must be one of " + strings.Join(OpNames(), ", ")
}

// Detail words the problem for a catalog author, who writes the attribute
// Attr: the catalog compiler prefixes it with the position and the
// attribute.
func (e *OpError) Detail() string {
	switch e.Problem {
	case OpMakesOtherType:
		return fmt.Sprintf("%s makes a %s, but the feature's type is %s", e.Op, e.Op.spec().makes, e.Type)
	case OpNeedsField:
		return fmt.Sprintf("op %s needs the event property to read", e.Op)
	case OpReadsNoField:
		return fmt.Sprintf("op %s reads no property", e.Op)
	}
	return e.Error()
}

func foldCount(st *AggState, f *Feature, ev *Event, now time.Time) bool {
	return st.count(f.From, ev.Time, 1, now)
}

func foldSum(st *AggState, f *Feature, ev *Event, now time.Time) bool {
	x, ok := ev.Field(f.From.Field)
	if !ok {
		return false
	}
	v, err := Coerce(TypeNumber, x)
	if err != nil {
		return false
	}
	return st.count(f.From, ev.Time, v.Num, now)
}

func foldLast(st *AggState, f *Feature, ev *Event, _ time.Time) bool {
	ts := ev.Time.UnixNano()
	x, ok := ev.Field(f.From.Field)
	if !ok || ts < st.LastAt {
		return false
	}
	v, err := Coerce(f.Type, x)
	if err != nil {
		return false
	}
	st.Last, st.LastAt = v, ts
	return true
}

func foldLastTime(st *AggState, _ *Feature, ev *Event, _ time.Time) bool {
	ts := ev.Time.UnixNano()
	if ts < st.LastAt {
		return false
	}
	st.LastAt = ts
	return true
}

// readSummed reads a count or sum: the running total, or the buckets still
// inside the window.
func readSummed(st *AggState, f *Feature, now time.Time, dst *Value) {
	a := f.From
	if a.Window == 0 {
		*dst = Number(st.Total)
		return
	}
	oldest := windowStart(a, now)
	sum := 0.0
	for _, b := range st.Buckets {
		if b.Start >= oldest {
			sum += b.Sum
		}
	}
	*dst = Number(sum)
}

// mergeSummed adds a count or sum: the running totals, the window
// buckets bucket by bucket (those slid out of the window at now are
// dropped), and the logs of recent contributions (for a later late
// reset), still bounded by MaxRecent.
func mergeSummed(dst, src *AggState, a *Aggregation, now time.Time) {
	if a.Window == 0 {
		dst.Total += src.Total
	} else {
		for _, b := range src.Buckets {
			dst.add(a, time.Unix(b.Start, 0), b.Sum, now)
		}
	}
	dst.LastAt = max(dst.LastAt, src.LastAt)
	dst.LogFrom = max(dst.LogFrom, src.LogFrom)
	if len(src.Recent) > 0 {
		dst.Recent = append(dst.Recent, src.Recent...)
		slices.SortStableFunc(dst.Recent, func(x, y Contribution) int { return cmp.Compare(x.At, y.At) })
		if drop := len(dst.Recent) - MaxRecent; drop > 0 {
			dst.LogFrom = max(dst.LogFrom, dst.Recent[drop-1].At)
			dst.Recent = append(dst.Recent[:0], dst.Recent[drop:]...)
		}
	}
}

// mergeNewest keeps the newer of two latest values (last, last_time): by
// the time of the event that set it, dst's on a tie.
func mergeNewest(dst, src *AggState, _ *Aggregation, _ time.Time) {
	if src.LastAt > dst.LastAt {
		dst.Last, dst.LastAt = src.Last, src.LastAt
	}
}

// fresh reports whether the newest event of st is inside a's window.
func fresh(st *AggState, a *Aggregation, now time.Time) bool {
	return st.LastAt != 0 && (a.Window == 0 || st.LastAt >= now.Add(-a.Window).UnixNano())
}
