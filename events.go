package nextbest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// EventsResult is what ApplyEvents did with a request's events.
type EventsResult struct {
	// Accepted is every event: applied, or known to be applied already.
	Accepted int
	// Applied is the events that took effect; the others are retries of
	// event ids applied within the dedupe window.
	Applied int
	// Ignored is the events accepted whose type nothing in the catalog
	// reads (no feature, outcome or experiment): each is also passed to
	// Observer.IgnoredEvent.
	Ignored int
}

// ApplyEvents checks events against the catalog's event semantics
// (CheckEvents; the first event refused is returned as an *EventError and
// nothing is applied), applies them and then credits the outcome
// statistics of those that took effect. With durable, it returns once the
// events are durable;
// otherwise, when the store can tell the two apart, once they are written
// and visible to the next decision: with the embedded store they are then
// in the operating system's hands (a process crash keeps them, a machine
// crash may lose those not yet synced by a later durable write).
func (s *Service) ApplyEvents(cat *rules.Catalog, events []featurestore.Event, now time.Time, durable bool) (EventsResult, error) {
	res, wait, err := s.applyEvents(cat, events, now, durable, false)
	if err != nil {
		return EventsResult{}, err
	}
	if err := wait(); err != nil {
		return EventsResult{}, err
	}
	return res, nil
}

// ApplyEventsVisible is the durable ApplyEvents in two steps: it returns
// once the events are applied and visible to the next decision, with
// wait, which returns once they are durable and then credits their
// outcome statistics. A caller acknowledges the events only once wait has
// returned nil. In between the caller uses no CPU: the store's group
// commit shares one fsync between the writes that wait for it, and a
// caller that bounds the requests it serves at once (httpapi's admission
// control) need not count those waiting for it. wait is never nil and
// must be called once.
func (s *Service) ApplyEventsVisible(cat *rules.Catalog, events []featurestore.Event, now time.Time) (res EventsResult, wait func() error, err error) {
	return s.applyEvents(cat, events, now, true, true)
}

// applyEvents applies events and returns the wait for their durability
// (with durable) and the crediting of their outcomes. With split and a
// cache that can tell visible from durable, the write returns once
// visible and wait waits for the fsync; otherwise the write has waited
// already.
func (s *Service) applyEvents(cat *rules.Catalog, events []featurestore.Event, now time.Time, durable, split bool) (EventsResult, func() error, error) {
	if err := CheckEvents(cat, events); err != nil {
		return EventsResult{}, nil, err
	}
	if s.store == nil {
		return EventsResult{}, nil, errNoStore
	}
	applied := make([]bool, len(events))
	muts, recs, synced, err := s.writeEvents(cat.Schema, events, now, durable, split, false, applied)
	if err != nil {
		return EventsResult{}, nil, err
	}
	res := EventsResult{Accepted: len(events)}
	for i, a := range applied {
		if a {
			res.Applied++
		}
		if !cat.ReadsEvent(events[i].Type) {
			res.Ignored++
			if s.obs.IgnoredEvent != nil {
				s.obs.IgnoredEvent(events[i].Type)
			}
		}
	}
	wait := func() error {
		if err := synced(); err != nil {
			return err
		}
		s.eventsWritten(cat, events, applied, muts, recs, now)
		return nil
	}
	return res, wait, nil
}

// eventsWritten is what follows a write of events, whichever door they
// came in by (ApplyEvents, Import): an outcome line in the decision log
// for each outcome naming a logged decision (declog_outcome.go), and
// the outcome statistics credited. applied says which events took
// effect; muts and recs are the write's mutations and the records they
// left, in the same order.
func (s *Service) eventsWritten(cat *rules.Catalog, events []featurestore.Event, applied []bool, muts []featurestore.Mutation, recs []*featurestore.Record, now time.Time) {
	s.logOutcomes(cat, events, applied, now)
	if s.stats == nil {
		return
	}
	byID := make(map[string]*featurestore.Record, len(muts))
	for i, m := range muts {
		if i < len(recs) {
			byID[m.CustomerID] = recs[i]
		}
	}
	s.creditOutcomes(cat, events, applied, byID, now)
}

func noWait() error { return nil }

// observeWrite reports a store write that began at start and ended with
// err.
func (s *Service) observeWrite(start time.Time, err error) {
	if s.obs.StoreWrite != nil {
		s.obs.StoreWrite(time.Since(start))
	}
	if err != nil {
		s.storeError(err)
	}
}

// writeEvents folds events, checked, into their customers' records (see
// ApplyEvents for durable) and reports in applied, which must have
// len(events), those that took effect. It returns the mutations it ran,
// the records they left, in the same order, and synced, which returns
// once the write is durable (with durable and split, the write returned
// once visible; otherwise it has waited already) and reports the write;
// synced is never nil on success and must be called once. With fresh,
// the events' ids were minted for this write (featurestore.Dedupe.Fresh).
// Events of a customer id that is an alias (identity.go) are written to
// the customer it resolves to, and their CustomerID is rewritten to it:
// the store refuses the write naming the aliases, having written
// nothing, and the write is made again.
func (s *Service) writeEvents(schema *featurestore.Schema, events []featurestore.Event, now time.Time, durable, split, fresh bool, applied []bool) (muts []featurestore.Mutation, recs []*featurestore.Record, synced func() error, err error) {
	for hops := 0; ; hops++ {
		muts, recs, synced, err = s.writeEventsOnce(schema, events, now, durable, split, fresh, applied)
		if err == nil || hops == featurestore.MaxAliasHops || !redirect(events, err) {
			return muts, recs, synced, err
		}
	}
}

// writeEventsOnce is writeEvents without the resolution of aliases.
func (s *Service) writeEventsOnce(schema *featurestore.Schema, events []featurestore.Event, now time.Time, durable, split, fresh bool, applied []bool) (muts []featurestore.Mutation, recs []*featurestore.Record, synced func() error, err error) {
	muts = s.eventMutations(schema, events, now, applied)
	if len(muts) == 0 {
		return nil, nil, noWait, nil
	}
	if fresh {
		for _, m := range muts {
			if m.Dedupe != nil {
				m.Dedupe.Fresh = true
			}
		}
	}
	start := time.Now()
	c, cancel := context.WithTimeout(context.Background(), s.mutateTimeout)
	wait := noWait
	switch {
	case s.cache != nil && !durable:
		// Written, not waited for: the next durable write's sync covers
		// it.
		recs, _, err = s.cache.MutateVisible(c, muts)
		cancel()
	case s.cache != nil && split:
		// The deadline covers the wait for the fsync too.
		var w func() error
		if recs, w, err = s.cache.MutateVisible(c, muts); err != nil {
			cancel()
			break
		}
		wait = func() error {
			defer cancel()
			return w()
		}
	default:
		recs, err = s.store.Mutate(c, muts)
		cancel()
	}
	if err != nil {
		s.observeWrite(start, err)
		return nil, nil, nil, err
	}
	return muts, recs, func() error {
		err := wait()
		s.observeWrite(start, err)
		return err
	}, nil
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
			o.LearnKey, o.Terms = s.engine.OutcomeLearning(nil, cat, f, ev.Channel, now)
			if m := cat.Learning.Model; m != nil {
				o.Model, o.Success = m, cat.Learning.Success
			}
		}
		if len(cat.Segments) > 0 {
			// The segments of the decision the outcome follows (the
			// customer's latest on its channel), not the customer's now.
			o.Segments = recs[ev.CustomerID].DecidedSegments(ev.Channel)
		}
		deltas = decision.AppendOutcomeDeltas(deltas, &o)
	}
	deltas = appendConversionDeltas(deltas, cat, events, applied, recs)
	if len(deltas) > 0 {
		s.stats.Add(deltas...)
	}
}

// conversionValue is a conversion's properties.value, or its offer's
// value when the event carries none (the schema's rule, which the
// customers' exposures count too).
func conversionValue(cat *rules.Catalog, ev *featurestore.Event) float64 {
	return cat.Schema.ConversionValue(ev)
}

// EventError is an event the service refuses: the event at Index of the
// batch, the field at fault and why, written for whoever sent it.
type EventError struct {
	Index  int
	Field  string // "offer_id", "channel"
	Reason string
}

func (e *EventError) Error() string {
	return fmt.Sprintf("events[%d].%s: %s", e.Index, e.Field, e.Reason)
}

// CheckEvents checks events, well formed and valid against cat's schema,
// against what events mean: an outcome event (impression, click,
// conversion, dismiss) names a channel of the catalog and an offer of the
// catalog (a conversion may name none: it then counts for experiment
// measurement only, as an organic conversion), and no other event names
// an offer. It returns the first refused as an *EventError. It completes
// an impression of a decision with no event_id with ImpressionID, so one
// decision's impression of an offer counts once, whoever reports it: a
// client reporting what a decision_is_impression channel already
// recorded, or reporting twice, does not count it twice.
func CheckEvents(cat *rules.Catalog, events []featurestore.Event) error {
	for i := range events {
		ev := &events[i]
		if err := checkOutcome(cat, ev); err != nil {
			err.Index = i
			return err
		}
		if ev.Type == "impression" && ev.ID == "" && ev.DecisionID != "" {
			ev.ID = ImpressionID(ev.DecisionID, ev.OfferID)
		}
	}
	return nil
}

func checkOutcome(cat *rules.Catalog, ev *featurestore.Event) *EventError {
	if _, outcome := featurestore.ParseOutcome(ev.Type); !outcome {
		if ev.OfferID != "" {
			return &EventError{Field: "offer_id", Reason: "only outcome events (impression, click, conversion, dismiss) name an offer"}
		}
		return nil
	}
	if ev.OfferID == "" && ev.Type != "conversion" {
		return &EventError{Field: "offer_id", Reason: fmt.Sprintf("required for a %s event", ev.Type)}
	}
	if _, ok := cat.Offer(ev.OfferID); !ok && ev.OfferID != "" {
		return &EventError{Field: "offer_id", Reason: fmt.Sprintf("%q is not an offer of the catalog", ev.OfferID)}
	}
	if _, ok := cat.Channel(ev.Channel); !ok {
		return &EventError{Field: "channel", Reason: fmt.Sprintf("%s %s event needs the catalog channel it happened on, one of %s", article(ev.Type), ev.Type, strings.Join(cat.ChannelNames(), ", "))}
	}
	return nil
}

// article is "an" before a vowel, "a" otherwise.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// appendConversionDeltas appends the increments of the conversions among
// events that took effect (applied; nil: all) to the cohorts of their
// customers' exposures, which their write credited
// (featurestore.AppendConversionDeltas); recs holds the customers'
// records after the events. The conversions are grouped by customer by
// sorting their indexes: one allocation, where a map of lists cost two
// per customer (BenchmarkApplyEventsExposed).
func appendConversionDeltas(dst []featurestore.StatDelta, cat *rules.Catalog, events []featurestore.Event, applied []bool, recs map[string]*featurestore.Record) []featurestore.StatDelta {
	if len(cat.Experiments) == 0 {
		return dst
	}
	var idx []int
	for i := range events {
		ev := &events[i]
		if ev.Type != "conversion" || (applied != nil && !applied[i]) {
			continue
		}
		if r := recs[ev.CustomerID]; r != nil && len(r.Exposures) > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(events[a].CustomerID, events[b].CustomerID) })
	for len(idx) > 0 {
		id := events[idx[0]].CustomerID
		n := 1
		for n < len(idx) && events[idx[n]].CustomerID == id {
			n++
		}
		dst = featurestore.AppendConversionDeltas(dst, cat.Schema, recs[id], events, idx[:n])
		idx = idx[n:]
	}
	return dst
}
