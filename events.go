package nextbest

import (
	"context"
	"errors"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// ApplyEvents applies events, validated against cat, and then credits
// the outcome statistics of those that took effect. It returns how many
// took effect. With durable, it returns once the events are durable;
// otherwise, when the store can tell the two apart, once they are written
// and visible to the next decision: with the embedded store they are then
// in the operating system's hands (a process crash keeps them, a machine
// crash may lose those not yet synced by a later durable write).
func (s *Service) ApplyEvents(cat *rules.Catalog, events []featurestore.Event, now time.Time, durable bool) (int, error) {
	if s.store == nil {
		return 0, errNoStore
	}
	applied := make([]bool, len(events))
	muts := featurestore.EventMutationsApplied(cat.Schema, events, now, applied)
	var recs []*featurestore.Record
	if len(muts) > 0 {
		start := time.Now()
		c, cancel := context.WithTimeout(context.Background(), s.mutateTimeout)
		var err error
		if s.cache != nil && !durable {
			// Written, not waited for: the next durable write's sync
			// covers it.
			recs, _, err = s.cache.MutateVisible(c, muts)
		} else {
			recs, err = s.store.Mutate(c, muts)
		}
		cancel()
		if s.obs.StoreWrite != nil {
			s.obs.StoreWrite(time.Since(start))
		}
		if err != nil {
			s.storeError(err)
			return 0, err
		}
	}
	n := 0
	for _, a := range applied {
		if a {
			n++
		}
	}
	if s.stats != nil {
		byID := make(map[string]*featurestore.Record, len(muts))
		for i, m := range muts {
			if i < len(recs) {
				byID[m.CustomerID] = recs[i]
			}
		}
		s.creditOutcomes(cat, events, applied, byID, now)
	}
	return n, nil
}

var errNoStore = errors.New("nextbest: no store to apply events to (a read-only service without one)")

// creditOutcomes adds the statistics of the outcome events that took
// effect (applied; retries of events already applied are not counted
// twice). recs holds the customers' records after the events, for their
// learn keys.
func (s *Service) creditOutcomes(cat *rules.Catalog, events []featurestore.Event, applied []bool, recs map[string]*featurestore.Record, now time.Time) {
	var deltas []featurestore.StatDelta
	for i := range events {
		ev := &events[i]
		kind, ok := featurestore.ParseOutcome(ev.Type)
		if !ok || (applied != nil && !applied[i]) {
			continue
		}
		o := decision.Outcome{Kind: kind, OfferID: ev.OfferID, Channel: ev.Channel, Time: ev.Time,
			Assignments: decision.Assign(nil, cat, ev.CustomerID)}
		if kind == featurestore.Conversion {
			o.Value = conversionValue(cat, ev)
		}
		if ev.OfferID != "" {
			var f featurestore.Vector
			if r := recs[ev.CustomerID]; r != nil {
				f = r.Features(cat.Schema, now, nil)
			}
			o.LearnKey = s.engine.LearnKeyFor(cat, f, ev.Channel, now)
		}
		deltas = decision.AppendOutcomeDeltas(deltas, &o)
	}
	if len(deltas) > 0 {
		s.stats.Add(deltas...)
	}
}

// conversionValue is a conversion's properties.value, or its offer's
// value when the event carries none.
func conversionValue(cat *rules.Catalog, ev *featurestore.Event) float64 {
	if v, ok := ev.Properties["value"].(float64); ok {
		return v
	}
	if o, ok := cat.Offer(ev.OfferID); ok {
		return o.Value
	}
	return 0
}
