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

// CheckEvent reports whether the properties that s's aggregations read from
// ev have the types those aggregations need, so that a bad event is
// rejected at the door rather than silently ignored.
func (s *Schema) CheckEvent(ev *Event) error {
	for _, i := range s.byEvent[ev.Type] {
		f := &s.features[i]
		a := f.From
		if a.Event != ev.Type || a.Field == "" {
			continue
		}
		x, ok := ev.Properties[a.Field]
		if !ok || x == nil {
			continue
		}
		want := f.Type
		if _, err := Coerce(want, x); err != nil {
			return fmt.Errorf("property %q (feeds feature %q): %w", a.Field, f.Name, err)
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
