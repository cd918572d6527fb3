package featurestore

import (
	"fmt"
	"time"
)

// Event is something a customer did, or that happened to them, on a channel.
type Event struct {
	ID         string // optional client-chosen idempotency key
	CustomerID string
	OfferID    string // outcome events: the offer shown, clicked, converted or dismissed
	DecisionID string // outcome events: the decision that presented the offer, if known
	Type       string
	Channel    string
	Time       time.Time
	Properties map[string]any // values as decoded from JSON
}

// FieldChannel is the field an aggregation names to read the event's
// channel (Event.Channel) rather than one of its properties: distinct of
// channel counts the channels a customer used.
const FieldChannel = "channel"

// Field returns the value of the field an aggregation reads: the
// property called name, or the event's channel for FieldChannel (absent
// when the event names none).
func (ev *Event) Field(name string) (any, bool) {
	if name == FieldChannel {
		return ev.Channel, ev.Channel != ""
	}
	x, ok := ev.Properties[name]
	return x, ok
}

// CheckEvent reports whether the properties that s's aggregations read from
// ev have the types those aggregations need, and those declared for its
// type (DeclareProperties) the declared types, so that a bad event is
// rejected at the door rather than silently ignored.
func (s *Schema) CheckEvent(ev *Event) error {
	for _, i := range s.byEvent[ev.Type] {
		f := &s.features[i]
		a := f.From
		if a.Event != ev.Type || a.Field == "" || a.Field == FieldChannel {
			continue // the channel is checked where the event is decoded
		}
		x, ok := ev.Properties[a.Field]
		if !ok || x == nil {
			continue
		}
		v, err := Coerce(a.Op.Reads(f.Type), x)
		if err == nil && a.Op.spec().keyed && len(v.Str) > MaxKeyLen {
			err = fmt.Errorf("a string of %d bytes, at most %d for %s", len(v.Str), MaxKeyLen, a.Op)
		}
		if err != nil {
			return fmt.Errorf("property %q (feeds feature %q): %w", a.Field, f.Name, err)
		}
	}
	for _, p := range s.props[ev.Type] {
		x, ok := ev.Properties[p.name]
		if !ok || x == nil {
			continue
		}
		if _, err := Coerce(p.typ, x); err != nil {
			return fmt.Errorf("property %q (declared a %s for %s events): %w", p.name, p.typ, ev.Type, err)
		}
	}
	return nil
}

// Affects reports whether an event of type typ feeds or resets any feature.
func (s *Schema) Affects(typ string) bool { return len(s.byEvent[typ]) > 0 }

// Outcome is what happened to an offer presented to a customer.
type Outcome uint8

// Outcomes, as event types.
const (
	Impression Outcome = iota + 1
	Click
	Conversion
	Dismiss
)

var outcomeNames = [...]string{Impression: "impression", Click: "click", Conversion: "conversion", Dismiss: "dismiss"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return "outcome"
}

// ParseOutcome returns the outcome an event type names, if it names one.
func ParseOutcome(typ string) (Outcome, bool) {
	for o, n := range outcomeNames {
		if n != "" && n == typ {
			return Outcome(o), true
		}
	}
	return 0, false
}

// Contact is one outcome in a customer's contact history.
type Contact struct {
	OfferID string
	Channel string
	Kind    Outcome
	At      int64 // Unix nanoseconds
}
