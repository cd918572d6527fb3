package nextbest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// A customer's journey and their right to be forgotten (issue 13, points
// 3 and 7): the timeline an agent opens, everything stored about a
// customer as one export, and its deletion.

// Journal is what the service reads of what a store keeps about a
// customer beside their record (featurestore/embedded,
// featurestore/redisstore): their timeline, newest first (at most limit
// entries; all when limit <= 0), and the ids of their events applied
// within the dedupe window.
type Journal interface {
	Timeline(ctx context.Context, id string, limit int) ([]featurestore.TimelineEntry, error)
	EventIDs(ctx context.Context, id string) ([]string, error)
}

// Eraser deletes everything a store keeps about a customer, durably,
// and is not troubled by a customer it does not know (cache.Cache, which
// drops its cached copy under the customer's lock).
type Eraser interface {
	Delete(ctx context.Context, id string) error
}

// ErrNoTimeline is returned by Timeline when the service keeps no
// timelines (no Options.Journal, or a negative Options.TimelineLength).
var ErrNoTimeline = errors.New("nextbest: timelines are not kept")

// journaled reports whether writes add to the customers' timelines.
func (s *Service) journaled() bool { return s.journal != nil && s.timelineLen > 0 }

// eventMutations returns the mutations of events: journaled ones when
// the store keeps timelines.
func (s *Service) eventMutations(schema *featurestore.Schema, events []featurestore.Event, now time.Time, applied []bool) []featurestore.Mutation {
	if s.journaled() {
		return featurestore.JournaledEventMutations(schema, events, now, applied)
	}
	return featurestore.EventMutationsApplied(schema, events, now, applied)
}

// attrsMutation returns the mutation of a profile update at now: one
// that adds the attributes it changes to the timeline when the store
// keeps timelines.
func (s *Service) attrsMutation(id string, attrs map[string]featurestore.Value, now time.Time) featurestore.Mutation {
	if s.journaled() {
		return featurestore.ProfileMutation(id, attrs, now)
	}
	return featurestore.AttrsMutation(id, attrs)
}

// TimelineLength is the length of the timelines kept, the largest limit
// of Timeline; 0 when none are kept.
func (s *Service) TimelineLength() int {
	if !s.journaled() {
		return 0
	}
	return s.timelineLen
}

// Timeline returns the customer's newest limit timeline entries, newest
// first, under Options.MutateTimeout: their events on every channel
// (outcome events with their offer and decision, the impressions a
// decision_is_impression channel recorded included) and their profile
// changes. A limit outside 1 to TimelineLength is a *RequestError; an
// unknown customer has none; a store failure is returned as is.
func (s *Service) Timeline(ctx context.Context, id string, limit int) ([]featurestore.TimelineEntry, error) {
	if !s.journaled() {
		return nil, ErrNoTimeline
	}
	if limit < 1 || limit > s.timelineLen {
		return nil, &RequestError{Field: "limit", Reason: fmt.Sprintf("must be a whole number from 1 to %d, got %d", s.timelineLen, limit)}
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	return s.journal.Timeline(c, id, limit)
}

// Forget deletes everything stored about the customer, durably, under
// Options.MutateTimeout: their record (profile attributes, features,
// contact history), timeline, event ids and the ids merged into them
// (aliases, which become unknown ids), on the store and in its cache, so
// the next read finds an unknown customer. An id merged into a customer
// is that customer (the same person): forgetting it forgets the customer
// it resolves to. Forgetting a customer the store does not know succeeds
// (nothing is stored about them); so does forgetting one twice. The
// outcome statistics, which count offers and hold no customer, stay.
func (s *Service) Forget(ctx context.Context, id string) error {
	if s.eraser == nil {
		return errNoStore
	}
	start := time.Now()
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	for hops := 0; hops < featurestore.MaxAliasHops; hops++ {
		_, err := s.store.Load(c, id)
		target, ok := aliasTarget(err, id)
		if !ok {
			break
		}
		id = target
	}
	// The ids merged into the customer: their aliases go, and what is
	// still stored under them (the timeline and event ids they had
	// before the merge) with them.
	ids := []string{id}
	var err error
	if r, ok := s.store.(AliasRemover); ok {
		var aliases []string
		aliases, err = r.RemoveAliases(c, id)
		ids = append(ids, aliases...)
	}
	for _, x := range ids {
		if err != nil {
			break
		}
		err = s.eraser.Delete(c, x)
	}
	s.observeWrite(start, err)
	return err
}

// Export is everything stored about a customer.
type Export struct {
	CustomerID string
	Known      bool // the store has a record of the customer
	// Attrs are the profile attributes stored, whether or not the
	// catalog in force declares them.
	Attrs map[string]featurestore.Value
	// Aggregates are the running state of the features derived from
	// events, by feature name, whether or not the catalog in force
	// declares them.
	Aggregates map[string]*featurestore.AggState
	// Schema and Features are the customer's features as the catalog in
	// force reads them, at the service's clock.
	Schema   *featurestore.Schema
	Features featurestore.Vector
	// Contacts is the customer's contact history, oldest first, and
	// History what the catalog in force makes of it.
	Contacts []featurestore.Contact
	History  ContactSummary
	// Exposures are the customer's first exposures to experiments and
	// their conversions since, as measurement by customer keeps them.
	Exposures []featurestore.Exposure
	// Timeline is every entry of the customer's timeline, newest first.
	Timeline []featurestore.TimelineEntry
	// EventIDs are the ids of the customer's events applied within the
	// dedupe window.
	EventIDs []string
}

// Export returns everything stored about the customer, under
// Options.MutateTimeout. A customer the store does not know exports as
// unknown, with the schema's defaults and nothing else; a store failure is
// returned as is.
func (s *Service) Export(ctx context.Context, id string) (*Export, error) {
	if s.store == nil {
		return nil, errNoStore
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	rec, err := s.store.Load(c, id)
	switch {
	case errors.Is(err, featurestore.ErrNotFound):
		rec, err = nil, nil
	case err != nil:
		return nil, err
	}
	now := s.now()
	cat := s.catalog.Load()
	x := &Export{CustomerID: id, Known: rec != nil, Schema: cat.Schema, Features: rec.Features(cat.Schema, now, nil)}
	if rec != nil {
		x.Attrs, x.Aggregates, x.Contacts, x.Exposures = rec.Attrs, rec.Aggs, rec.Contacts, rec.Exposures
		x.History = Contacts(cat, rec.Contacts, now)
	}
	if s.journal != nil {
		if x.Timeline, err = s.journal.Timeline(c, id, 0); err != nil {
			return nil, err
		}
		if x.EventIDs, err = s.journal.EventIDs(c, id); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
