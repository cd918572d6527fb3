package featurestore

import (
	"fmt"
	"time"
)

// Event is something a customer did, or that happened to them, on a channel.
type Event struct {
	ID         string // optional client-chosen idempotency key
	CustomerID string
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
