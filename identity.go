package nextbest

import (
	"context"
	"errors"
	"fmt"

	"github.com/nextbest/nextbest/featurestore"
)

// One identity: merging an anonymous id into a known customer, and
// resolving the aliases merges leave.
//
// An id merged into another customer is an alias: the store answers a
// read of it, or a write to it, with a *featurestore.AliasError naming
// the customer it resolves to, and the service asks again for that
// customer. So events sent under the anonymous id after the merge land
// on the known customer, a profile read or update of it reads or updates
// the known customer, and a decision for it decides for the known
// customer: the known customer's features, contact history (caps count
// both ids' impressions), experiment variants (assignment hashes the
// known id) and impressions recorded. An id that is not an alias pays
// nothing: the store learns that an id is an alias only from a read that
// found no record (featurestore/embedded, alias.go) or from the same
// read (redisstore), and the cache keeps aliases as it keeps unknown
// customers.

// Merger is what the service needs of a store to merge customers (the
// cache tier, featurestore/cache, in front of a backend that merges).
type Merger interface {
	Merge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error)
}

// ConflictError is a request that conflicts with what is stored: the
// field at fault and why.
type ConflictError struct {
	Field  string
	Reason string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Reason }

// Merge folds the customer from (typically an anonymous visitor's id)
// into the customer into (featurestore.Record.Merge says how each kind
// of data combines), atomically and idempotently, under
// Options.MutateTimeout, and leaves from an alias of into. It returns
// into's profile after the merge. into may be an alias itself: the merge
// goes to the customer it resolves to, whose profile is returned. A
// merge done before (from already an alias of into) changes nothing and
// answers the same. from merged into another customer before is a
// *ConflictError; from and into naming one customer a *RequestError.
func (s *Service) Merge(ctx context.Context, into, from string) (*Profile, error) {
	if s.store == nil {
		return nil, errNoStore
	}
	m, ok := s.store.(Merger)
	if !ok {
		return nil, errors.New("nextbest: the store cannot merge customers")
	}
	if into == from {
		return nil, &RequestError{Field: "from", Reason: "is the customer merged into"}
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	cat := s.catalog.Load()
	now := s.now()
	fold := func(r, f *featurestore.Record) bool { return r.Merge(cat.Schema, f, now) }
	target := into
	for hops := 0; ; hops++ {
		res, err := m.Merge(c, featurestore.Merge{Into: target, From: from, Fold: fold})
		if err == nil {
			return s.profile(target, true, res.Record), nil
		}
		next, alias := aliasTarget(err, target)
		switch {
		case errors.Is(err, featurestore.ErrAliasConflict):
			return nil, &ConflictError{Field: "from", Reason: fmt.Sprintf("%q was merged into another customer before", from)}
		case !alias:
			return nil, err
		case next == from:
			return nil, &RequestError{Field: "from", Reason: fmt.Sprintf("%q was merged into %q: they are one customer", target, from)}
		case hops == featurestore.MaxAliasHops:
			return nil, fmt.Errorf("customer %q: more than %d aliases deep", into, featurestore.MaxAliasHops)
		}
		target = next
	}
}

// aliasTarget returns the customer id resolves to when err says that id
// is an alias, without allocating: a decision for an unknown customer
// allocates nothing for aliases (TestDecideAllocs).
func aliasTarget(err error, id string) (string, bool) {
	if e := featurestore.AsAliasError(err); e != nil {
		return e.Target(id)
	}
	return "", false
}

// redirect rewrites the customer of every event that err, when it is a
// *featurestore.AliasError, names as an alias to the customer it
// resolves to, and reports whether it rewrote any.
func redirect(events []featurestore.Event, err error) bool {
	var e *featurestore.AliasError
	if !errors.As(err, &e) {
		return false
	}
	changed := false
	for i := range events {
		if target, ok := e.Target(events[i].CustomerID); ok {
			events[i].CustomerID = target
			changed = true
		}
	}
	return changed
}

// redirectLines rewrites the customer of every import line, and of its
// events, that err, when it is a *featurestore.AliasError, names as an
// alias to the customer it resolves to, and reports whether it rewrote
// any.
func redirectLines(lines []ImportLine, err error) bool {
	var e *featurestore.AliasError
	if !errors.As(err, &e) {
		return false
	}
	changed := false
	for i := range lines {
		l := &lines[i]
		if target, ok := e.Target(l.CustomerID); ok {
			l.CustomerID = target
			changed = true
		}
		if redirect(l.Events, err) {
			changed = true
		}
	}
	return changed
}

// AliasRemover is what the service needs of a store to forget a
// customer's aliases (the cache tier in front of a backend that merges).
type AliasRemover interface {
	RemoveAliases(ctx context.Context, customer string) ([]string, error)
}

// RemoveAliases deletes every id that resolves to the customer (the ids
// merged into it), under Options.MutateTimeout, and returns them: they
// become unknown ids. For the deletion of a customer.
func (s *Service) RemoveAliases(ctx context.Context, customer string) ([]string, error) {
	r, ok := s.store.(AliasRemover)
	if !ok {
		return nil, errors.New("nextbest: the store cannot remove aliases")
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	return r.RemoveAliases(c, customer)
}
