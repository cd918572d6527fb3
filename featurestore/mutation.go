package featurestore

import (
	"errors"
	"time"
)

// ErrNotFound is returned by a backend's Load for a customer it has no
// record of. An unknown customer is a real case (an anonymous visitor): a
// decision for them uses the schema's defaults.
var ErrNotFound = errors.New("featurestore: customer not found")

// Mutation is one read-modify-write of a customer's record. A backend runs
// every Mutation of one call atomically per customer: no concurrent
// mutation of the same customer is lost, and the call returns only once
// the change is durable.
type Mutation struct {
	CustomerID string
	// Apply changes r, a private copy (never nil; empty for a new
	// customer), and reports whether it changed anything. It must not keep r.
	Apply func(r *Record) bool
}

// EventMutations groups events by customer, keeping their order, and
// returns one mutation per customer that folds them into the record. An
// event whose ID was applied within DedupeWindow is skipped, so retries
// are safe; the id check and the update are one atomic mutation.
// Every event must have passed s.CheckEvent.
func EventMutations(s *Schema, events []Event, now time.Time) []Mutation {
	return EventMutationsApplied(s, events, now, nil)
}

// EventMutationsApplied is EventMutations that also reports which events
// took effect: once the backend's Mutate has returned without error,
// applied[i] is false when events[i] was skipped as a retry of an event
// already applied, true otherwise. A backend may run a mutation several
// times (compare-and-set retries); every run rewrites the flags of its
// customer's events, so they describe the run that was committed. applied
// must be nil or have len(events).
func EventMutationsApplied(s *Schema, events []Event, now time.Time, applied []bool) []Mutation {
	var order []string
	byCustomer := make(map[string][]int)
	for i := range events {
		ev := &events[i]
		if applied != nil {
			applied[i] = true
		}
		if _, outcome := ParseOutcome(ev.Type); !outcome && !s.Affects(ev.Type) && ev.ID == "" {
			continue
		}
		if _, ok := byCustomer[ev.CustomerID]; !ok {
			order = append(order, ev.CustomerID)
		}
		byCustomer[ev.CustomerID] = append(byCustomer[ev.CustomerID], i)
	}
	muts := make([]Mutation, len(order))
	for i, id := range order {
		idx := byCustomer[id]
		muts[i] = Mutation{CustomerID: id, Apply: func(r *Record) bool {
			changed := false
			for _, j := range idx {
				ev := &events[j]
				if ev.ID != "" {
					if r.HasSeen(ev.ID) {
						if applied != nil {
							applied[j] = false
						}
						continue // a retry of an event already applied
					}
					r.MarkSeen(ev.ID, now)
					changed = true
				}
				if applied != nil {
					applied[j] = true
				}
				if kind, ok := ParseOutcome(ev.Type); ok && ev.OfferID != "" {
					r.AddContact(Contact{OfferID: ev.OfferID, Channel: ev.Channel, Kind: kind, At: ev.Time.UnixNano()}, s.ContactRetention, now)
					changed = true
				}
				changed = r.Apply(s, ev, now) || changed
			}
			return changed
		}}
	}
	return muts
}

// AttrsMutation sets profile attributes of one customer.
func AttrsMutation(id string, attrs map[string]Value) Mutation {
	return Mutation{CustomerID: id, Apply: func(r *Record) bool {
		for k, v := range attrs {
			r.SetAttr(k, v)
		}
		return len(attrs) > 0
	}}
}
