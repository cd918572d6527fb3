package featurestore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Type is the type of a feature value.
type Type uint8

// Feature types. The zero Type is invalid.
const (
	TypeNumber Type = iota + 1
	TypeString
	TypeBool
	TypeTime
	TypeList
)

var typeNames = [...]string{TypeNumber: "number", TypeString: "string", TypeBool: "bool", TypeTime: "time", TypeList: "list"}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// ParseType returns the Type named s ("number", "string", "bool", "time" or "list").
func ParseType(s string) (Type, bool) {
	for t, n := range typeNames {
		if n != "" && n == s {
			return Type(t), true
		}
	}
	return 0, false
}

// Aggregation derives a feature from events of one type.
type Aggregation struct {
	Event   string        // event type that feeds the feature
	Op      Op            // aggregation operator
	Field   string        // event property read by OpSum and OpLast
	Window  time.Duration // sliding window; 0 means all time
	ResetOn []string      // event types that reset the feature to its default
	// Where, when not nil, selects the events of type Event that feed the
	// feature; the others are skipped (resets are not filtered). The
	// catalog compiler sets it from the feature's where expression.
	Where EventFilter
}

// EventFilter selects events. It is what an aggregation's where compiles
// to; this package runs it and does not know how it is written. Match
// must be safe for concurrent use and must not keep or change ev.
type EventFilter interface {
	Match(ev *Event) bool
}

// BucketWidth is the width of the time buckets a windowed aggregation is
// kept in. For count and sum: 1/96 of the window, at least one minute
// and at most one day, so a window is exact to within one bucket (day
// granularity or better) and a customer never holds more than 97 buckets
// per feature. For top and distinct, which keep several keys per bucket
// (sketch.go): 1/24 of the window, at least one minute, so at most 25
// buckets.
func (a *Aggregation) BucketWidth() time.Duration {
	if s := a.Op.spec(); s != nil && s.keyed {
		return keyedWidth(a.Window)
	}
	return summedWidth(a.Window)
}

// summedWidth is BucketWidth of a count or sum over window w: the fold of
// every windowed event computes it, with a constant divisor.
func summedWidth(w time.Duration) time.Duration {
	w /= 96
	switch {
	case w < time.Minute:
		w = time.Minute
	case w > 24*time.Hour:
		w = 24 * time.Hour
	}
	return w.Truncate(time.Second)
}

// keyedWidth is BucketWidth of top or distinct over window w.
func keyedWidth(w time.Duration) time.Duration {
	return max(w/sketchBuckets, time.Minute).Truncate(time.Second)
}

// Feature is one typed attribute of a customer.
type Feature struct {
	Name    string
	Index   int // position in a Vector
	Type    Type
	Default Value
	From    *Aggregation // nil for a profile attribute
}

// Schema is the ordered set of features a catalog declares.
type Schema struct {
	features []Feature
	byName   map[string]int
	byEvent  map[string][]int // event type → features it feeds or resets
	defaults Vector           // every feature's default, shared read-only
	// where is whether an aggregation has a where filter, so Apply
	// tests none when none has.
	where bool
	// props are the declared property types of event types
	// (DeclareProperties), checked by CheckEvent; nil when none is.
	props map[string][]declaredProperty
	// ContactRetention is how long contact history is kept: the longest
	// window any contact policy of the catalog looks back. Set it before
	// the schema is shared; 0 keeps contacts until MaxContacts pushes
	// them out.
	ContactRetention time.Duration
	// OfferValues is the value of a conversion of each offer whose event
	// carries no properties.value (ConversionValue). Set it before the
	// schema is shared; nil counts such conversions as 0.
	OfferValues map[string]float64
}

// NewSchema validates features and indexes them. Feature indexes are
// assigned in order; a Default whose Kind is zero becomes the type's zero
// value.
func NewSchema(features []Feature) (*Schema, error) {
	s := &Schema{
		features: make([]Feature, len(features)),
		byName:   make(map[string]int, len(features)),
		byEvent:  make(map[string][]int),
	}
	var errs []error
	for i, f := range features {
		f.Index = i
		if f.Name == "" {
			errs = append(errs, fmt.Errorf("feature %d: empty name", i))
		}
		if _, dup := s.byName[f.Name]; dup {
			errs = append(errs, fmt.Errorf("feature %q: declared twice", f.Name))
		}
		if f.Type == 0 || int(f.Type) >= len(typeNames) {
			errs = append(errs, fmt.Errorf("feature %q: invalid type", f.Name))
		}
		if f.Default.Kind == 0 {
			f.Default = Zero(f.Type)
		} else if f.Default.Kind != f.Type {
			errs = append(errs, fmt.Errorf("feature %q: default is a %s, want %s", f.Name, f.Default.Kind, f.Type))
		}
		if a := f.From; a != nil {
			if err := checkAggregation(f.Type, a); err != nil {
				errs = append(errs, fmt.Errorf("feature %q: from: %w", f.Name, err))
			}
			s.byEvent[a.Event] = appendUnique(s.byEvent[a.Event], i)
			s.where = s.where || a.Where != nil
			for _, r := range a.ResetOn {
				s.byEvent[r] = appendUnique(s.byEvent[r], i)
			}
		}
		s.byName[f.Name] = i
		s.features[i] = f
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.defaults = s.Defaults(nil)
	return s, nil
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func checkAggregation(t Type, a *Aggregation) error {
	if a.Event == "" {
		return errors.New("event is required")
	}
	if a.Window < 0 {
		return errors.New("window must be positive")
	}
	if err := a.Op.Check(t, a.Field); err != nil {
		return err
	}
	return nil
}

// DeclareProperties declares the types of the properties of events of
// type typ: CheckEvent refuses an event of that type whose declared
// property, when present and not null, has another type, and a
// compiled where may rely on them. Call it before the schema is shared
// (as ContactRetention is set). Declared types are number, string and
// bool; FieldChannel names the event's channel and is not a property.
func (s *Schema) DeclareProperties(typ string, props map[string]Type) error {
	for name, t := range props {
		switch {
		case name == FieldChannel:
			return fmt.Errorf("event %q: %q is the event's channel, not a property", typ, name)
		case t != TypeNumber && t != TypeString && t != TypeBool:
			return fmt.Errorf("event %q: property %q: a %s property cannot be declared (number, string or bool)", typ, name, t)
		}
	}
	if s.props == nil {
		s.props = make(map[string][]declaredProperty)
	}
	list := make([]declaredProperty, 0, len(props))
	for name, t := range props {
		list = append(list, declaredProperty{name, t})
	}
	// In name order, so the first property CheckEvent refuses is always
	// the same.
	slices.SortFunc(list, func(a, b declaredProperty) int { return strings.Compare(a.name, b.name) })
	s.props[typ] = list
	return nil
}

type declaredProperty struct {
	name string
	typ  Type
}

// Property returns the declared type of property name of events of type
// typ (DeclareProperties).
func (s *Schema) Property(typ, name string) (Type, bool) {
	for _, p := range s.props[typ] {
		if p.name == name {
			return p.typ, true
		}
	}
	return 0, false
}

// Len returns the number of features.
func (s *Schema) Len() int { return len(s.features) }

// Features returns the features in index order. The caller must not modify it.
func (s *Schema) Features() []Feature { return s.features }

// Lookup returns the feature called name.
func (s *Schema) Lookup(name string) (*Feature, bool) {
	i, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return &s.features[i], true
}

// Defaults fills dst with every feature's default value and returns it.
func (s *Schema) Defaults(dst Vector) Vector {
	dst = grow(dst, len(s.features))
	for i := range s.features {
		dst[i] = s.features[i].Default
	}
	return dst
}

func grow(v Vector, n int) Vector {
	if cap(v) < n {
		return make(Vector, n)
	}
	return v[:n]
}
