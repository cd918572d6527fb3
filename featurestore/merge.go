package featurestore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// One identity. A visitor known by an anonymous id (a cookie, a device)
// who logs in becomes a customer the service already knows: merging folds
// everything stored under the anonymous id into the known customer's
// record (Record.Merge) and leaves the anonymous id as an alias of the
// known one, so that what arrives later under the anonymous id (late
// events, decisions) lands on the known customer. How a backend makes
// the merge atomic and idempotent is its own (embedded: one batch;
// redisstore: a protocol across cluster slots); what merging two records
// means is here, once.

// Merge is a backend's merge of the customer From into the customer Into:
// From's record is folded into Into's by Fold, From's record is deleted,
// and From becomes an alias of Into. A merge that finds From already an
// alias of Into changes nothing (a retry): the merge is recorded by the
// alias itself.
type Merge struct {
	Into, From string
	// Fold folds from, From's record (empty for a customer without one),
	// into into, a private copy of Into's record (empty for a new
	// customer), and reports whether it changed into. It must not keep
	// either. A backend may run it several times (compare-and-set
	// retries); the last run is the one committed.
	Fold func(into, from *Record) bool
}

// MergeResult is what a backend's merge did.
type MergeResult struct {
	// Record is Into's record after the merge; nil when Into has none
	// (both customers had nothing stored).
	Record *Record
	// Merged is false when From was already an alias of Into: the merge
	// was done before and this call changed nothing.
	Merged bool
}

// MaxAliasHops bounds how many aliases a reader follows from an id to
// its customer. An alias points to the customer it was merged into; a
// backend that cannot repoint the aliases of a customer merged later
// (Redis, across slots) leaves chains, one hop per merge of the same
// person.
const MaxAliasHops = 8

// ErrAliasConflict is returned by a backend's merge when From is already
// an alias of another customer than Into: an anonymous id belongs to one
// known customer.
var ErrAliasConflict = errors.New("featurestore: id is already merged into another customer")

// AliasError is returned by a backend for customer ids that are aliases:
// by Load (Aliases holds the one id asked for), and by a write, which then
// wrote nothing, for the ids of the call that are aliases (each with the
// customer it was merged into). A caller resolves them and asks again for
// the target. It matches ErrNotFound: a caller unaware of aliases sees an
// unknown customer, which is what the alias holds itself.
type AliasError struct {
	Aliases map[string]string // alias → the customer it was merged into
}

// NewAliasError returns the AliasError of one alias.
func NewAliasError(id, target string) *AliasError {
	return &AliasError{Aliases: map[string]string{id: target}}
}

func (e *AliasError) Error() string {
	for id, target := range e.Aliases {
		if len(e.Aliases) == 1 {
			return fmt.Sprintf("featurestore: customer %q was merged into %q", id, target)
		}
		return fmt.Sprintf("featurestore: %d customers were merged into others (e.g. %q into %q)", len(e.Aliases), id, target)
	}
	return "featurestore: customers were merged into others"
}

// Is makes an AliasError match ErrNotFound.
func (e *AliasError) Is(target error) bool { return target == ErrNotFound }

// AsAliasError returns the *AliasError in err's chain (errors.Unwrap), or
// nil. Unlike errors.As it allocates nothing, for the paths that test
// every not-found error (a decision for an unknown customer).
func AsAliasError(err error) *AliasError {
	for ; err != nil; err = errors.Unwrap(err) {
		if e, ok := err.(*AliasError); ok {
			return e
		}
	}
	return nil
}

// Target returns the customer id was merged into, if it is one of e's
// aliases.
func (e *AliasError) Target(id string) (string, bool) {
	t, ok := e.Aliases[id]
	return t, ok
}

// Merge folds from, the record of an id merged away (an anonymous
// visitor's), into r, the known customer's, at now, and reports whether r
// changed:
//
//   - profile attributes: r's values win; from's fill those r lacks;
//   - event aggregates, by their op (the ops table's merge): counts and
//     sums add up, windowed ones bucket by bucket; last and last_time keep
//     the newer value by event time; a feature with reset_on counts only
//     what happened after the later of the two resets;
//   - aggregates of features s does not declare (kept across a catalog
//     change): from's fill those r lacks, r's are kept;
//   - contact history (impressions, clicks, conversions, dismissals): the
//     two merged in time order, bounded by s.ContactRetention and
//     MaxContacts, so caps count both;
//   - experiment exposures: from's fill the experiments r has none of. The
//     statistics counted both ids as customers when they were exposed (an
//     id is the unit experiments randomise); r's conversions from now on
//     count for r's exposures and the ones it took from from;
//   - decision segments: per channel, the newer decision's.
//
// from is not modified.
func (r *Record) Merge(s *Schema, from *Record, now time.Time) bool {
	if from == nil {
		return false
	}
	changed := false
	for name, v := range from.Attrs {
		if _, ok := r.Attrs[name]; !ok {
			r.SetAttr(name, v)
			changed = true
		}
	}
	for name, src := range from.Aggs {
		r.packed = nil
		changed = true
		dst := r.Aggs[name]
		f, declared := s.Lookup(name)
		switch {
		case dst == nil:
			r.agg(name)
			*r.Aggs[name] = src.clone()
		case declared && f.From != nil:
			a := f.From
			cp := src.clone()
			alignResets(dst, &cp, a, now)
			a.Op.spec().merge(dst, &cp, a, now)
		}
	}
	if len(from.Contacts) > 0 {
		r.packed = nil
		r.Contacts = append(r.Contacts, from.Contacts...)
		slices.SortStableFunc(r.Contacts, func(x, y Contact) int { return cmp.Compare(x.At, y.At) })
		r.trimContacts(s.ContactRetention, now)
		changed = true
	}
	for _, e := range from.Exposures {
		if r.Exposure(e.Experiment) == nil {
			r.packed = nil
			r.Exposures = append(r.Exposures, e)
			changed = true
		}
	}
	if r.mergeDecided(from) {
		changed = true
	}
	return changed
}

// alignResets brings the one of a and b that was reset earlier (or
// never) to the other's reset, as if it had been delivered to both: what
// it held from before the later reset goes, exactly as a late reset
// treats it.
func alignResets(a, b *AggState, agg *Aggregation, now time.Time) {
	switch {
	case a.ResetAt < b.ResetAt:
		a.reset(agg, b.ResetAt, now)
	case b.ResetAt < a.ResetAt:
		b.reset(agg, a.ResetAt, now)
	}
}

// clone returns a deep copy of st.
func (st *AggState) clone() AggState {
	cp := *st
	cp.Buckets = slices.Clone(st.Buckets)
	cp.Recent = slices.Clone(st.Recent)
	cp.Keys = slices.Clone(st.Keys)
	return cp
}
