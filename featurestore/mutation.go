package featurestore

import (
	"errors"
	"slices"
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
	// Timeline, when not nil, returns the entries the last run of Apply
	// adds to the customer's timeline (the events it applied, the profile
	// attributes it changed): a backend that keeps timelines calls it once
	// the run it commits is over and stores them in the same atomic commit
	// as the record, even when the record is unchanged (an event nothing
	// reads is still on the timeline). The entries' Seq is the backend's
	// to set.
	Timeline func() []TimelineEntry
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
	return eventMutations(s, events, now, applied, false)
}

// JournaledEventMutations is EventMutationsApplied for a store that keeps
// timelines: every event, including those nothing in s reads, makes its
// customer's mutation, whose Timeline lists the events its last run
// applied (a retry of an event id already applied is not listed twice).
func JournaledEventMutations(s *Schema, events []Event, now time.Time, applied []bool) []Mutation {
	return eventMutations(s, events, now, applied, true)
}

func eventMutations(s *Schema, events []Event, now time.Time, applied []bool, journal bool) []Mutation {
	// The events that make a mutation, grouped by customer in order of
	// first appearance. A batch's events are mostly of distinct
	// customers, so what is per customer is allocated once per call, not
	// once per customer (a write of 100 events allocated some 600 times
	// here): the groups' event indexes share one array, as do their
	// Dedupes and run flags.
	var byCustomer map[string]int // only for large calls; a scan is cheaper below
	if len(events) > 16 {
		byCustomer = make(map[string]int, len(events))
	}
	var order []string
	group := make([]int, len(events)) // each event's group; -1: none
	var counts []int
	for i := range events {
		ev := &events[i]
		if applied != nil {
			applied[i] = true
		}
		group[i] = -1
		if _, outcome := ParseOutcome(ev.Type); !outcome && !s.Affects(ev.Type) && ev.ID == "" && !journal {
			continue
		}
		g, ok := -1, false
		if byCustomer != nil {
			g, ok = byCustomer[ev.CustomerID]
		} else if j := slices.Index(order, ev.CustomerID); j >= 0 {
			g, ok = j, true
		}
		if !ok {
			g = len(order)
			order = append(order, ev.CustomerID)
			counts = append(counts, 0)
			if byCustomer != nil {
				byCustomer[ev.CustomerID] = g
			}
		}
		group[i] = g
		counts[g]++
	}
	// Lay out each group's event indexes, and count the events with ids.
	all := make([]int, 0, len(events))
	idxs := make([][]int, len(order))
	withIDs := 0
	for g, n := range counts {
		idxs[g] = all[len(all) : len(all) : len(all)+n]
		all = all[:len(all)+n]
	}
	for i, g := range group {
		if g >= 0 {
			idxs[g] = append(idxs[g], i)
			if events[i].ID != "" {
				withIDs++
			}
		}
	}
	var dedupes []Dedupe
	var ids []string
	var flags []bool
	if withIDs > 0 {
		dedupes = make([]Dedupe, 0, len(order))
		ids = make([]string, 0, withIDs)
		flags = make([]bool, withIDs)
	}
	var took []bool               // by event: applied by its customer's last run
	var journaled []TimelineEntry // the groups' entries, one window each
	if journal {
		took = make([]bool, len(events))
		journaled = make([]TimelineEntry, len(all))
	}
	muts := make([]Mutation, len(order))
	for i, id := range order {
		idx := idxs[i]
		var d *Dedupe
		var done []bool // by index in d.IDs: applied by this run
		for _, j := range idx {
			if evID := events[j].ID; evID != "" {
				if d == nil {
					dedupes = append(dedupes, Dedupe{IDs: ids[len(ids):]})
					d = &dedupes[len(dedupes)-1]
				}
				if d.position(evID) < 0 {
					d.add(evID)
				}
			}
		}
		if d != nil {
			// The ids of d are ids' next elements: a later customer's
			// start after them (d.IDs is full to its capacity, so an
			// append elsewhere never writes into it).
			ids = ids[:len(ids)+len(d.IDs)]
			d.IDs = d.IDs[:len(d.IDs):len(d.IDs)]
			done, flags = flags[:len(d.IDs):len(d.IDs)], flags[len(d.IDs):]
		}
		muts[i] = Mutation{CustomerID: id, Dedupe: d, Apply: func(r *Record) bool {
			changed := false
			clear(done)
			for _, j := range idx {
				if took != nil {
					took[j] = false
				}
				ev := &events[j]
				if ev.ID != "" {
					k := d.position(ev.ID)
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
				if took != nil {
					took[j] = true
				}
				if kind, ok := ParseOutcome(ev.Type); ok && ev.OfferID != "" {
					r.AddContact(Contact{OfferID: ev.OfferID, Channel: ev.Channel, Kind: kind, At: ev.Time.UnixNano()}, s.ContactRetention, now)
					changed = true
				}
				changed = r.Apply(s, ev, now) || changed
				if len(r.Exposures) > 0 && ev.Type == "conversion" {
					changed = r.creditConversion(ev, s.ConversionValue(ev)) || changed
				}
			}
			return changed
		}}
		if journal {
			window := journaled[:0:len(idx)]
			journaled = journaled[len(idx):]
			muts[i].Timeline = func() []TimelineEntry {
				entries := window
				for _, j := range idx {
					if took[j] {
						entries = append(entries, eventEntry(&events[j]))
					}
				}
				return entries
			}
		}
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
