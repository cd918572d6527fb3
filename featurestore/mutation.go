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
	// Dedupe, when not nil, holds the ids of the events Apply applies:
	// the backend marks those applied within its dedupe window before
	// each run and stores the others with the record (see Dedupe).
	Dedupe *Dedupe
}

// EventMutations groups events by customer, keeping their order, and
// returns one mutation per customer that folds them into the record. An
// event whose ID was applied within the backend's dedupe window is
// skipped, so retries are safe; the id check and the update are one
// atomic mutation (see Dedupe). Every event must have passed
// s.CheckEvent.
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
		var d *Dedupe
		for _, j := range idx {
			if evID := events[j].ID; evID != "" {
				if d == nil {
					d = &Dedupe{index: map[string]int{}}
				}
				if _, dup := d.index[evID]; !dup {
					d.index[evID] = len(d.IDs)
					d.IDs = append(d.IDs, evID)
				}
			}
		}
		muts[i] = Mutation{CustomerID: id, Dedupe: d, Apply: func(r *Record) bool {
			changed := false
			var done []bool // by index in d.IDs: applied by this run
			if d != nil {
				done = make([]bool, len(d.IDs))
			}
			for _, j := range idx {
				ev := &events[j]
				if ev.ID != "" {
					k := d.index[ev.ID]
					if done[k] || (k < len(d.Seen) && d.Seen[k]) {
						if applied != nil {
							applied[j] = false
						}
						continue // a retry of an event already applied
					}
					done[k] = true
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
