package nextbest

import (
	"context"
	"errors"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// Profile is a customer's features as the catalog in force reads them.
type Profile struct {
	CustomerID string
	Known      bool // the store has a record of the customer
	Schema     *featurestore.Schema
	Features   featurestore.Vector // by Schema's features, at the service's clock
	// History is what the catalog in force makes of the customer's
	// contact history at the service's clock; nil when they have none.
	History *ContactSummary
}

// Profile reads the customer's record under Options.MutateTimeout. An
// unknown customer has the schema's defaults (Known false); an alias
// (identity.go) is the profile of the customer it resolves to, whose id
// Profile.CustomerID then holds; a store failure is returned as is.
func (s *Service) Profile(ctx context.Context, id string) (*Profile, error) {
	if s.store == nil {
		return s.profile(id, false, nil), nil
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	for hops := 0; ; hops++ {
		rec, err := s.store.Load(c, id)
		switch {
		case err == nil:
			return s.profile(id, true, rec), nil
		case errors.Is(err, featurestore.ErrNotFound):
			if target, ok := aliasTarget(err, id); ok && hops < featurestore.MaxAliasHops {
				id = target
				continue
			}
			return s.profile(id, false, nil), nil
		}
		return nil, err
	}
}

// SetProfile sets the customer's profile attributes (checked against the
// schema by the caller: featurestore.Coerce; a feature's default resets
// it) under Options.MutateTimeout, durably, and returns the profile after
// the change. An attribute the catalog refuses beyond its type (a time
// zone feature naming no zone, rules.Catalog.CheckAttrs) is a
// *RequestError; a store failure is returned as is.
func (s *Service) SetProfile(ctx context.Context, id string, attrs map[string]featurestore.Value) (*Profile, error) {
	if err := checkAttrs(s.catalog.Load(), attrs); err != nil {
		return nil, err
	}
	if s.store == nil {
		return nil, errNoStore
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	defer cancel()
	var recs []*featurestore.Record
	var err error
	for hops := 0; ; hops++ {
		recs, err = s.store.Mutate(c, []featurestore.Mutation{s.attrsMutation(id, attrs, s.now())})
		// An alias refuses the write, having written nothing: write to
		// the customer it resolves to.
		target, ok := aliasTarget(err, id)
		if !ok || hops == featurestore.MaxAliasHops {
			break
		}
		id = target
	}
	if err != nil {
		return nil, err
	}
	var rec *featurestore.Record
	if len(recs) > 0 {
		rec = recs[0]
	}
	return s.profile(id, true, rec), nil
}

func (s *Service) profile(id string, known bool, rec *featurestore.Record) *Profile {
	cat, now := s.catalog.Load(), s.now()
	p := &Profile{CustomerID: id, Known: known, Schema: cat.Schema, Features: rec.Features(cat.Schema, now, nil)}
	if rec != nil && len(rec.Contacts) > 0 {
		h := Contacts(cat, rec.Contacts, now)
		p.History = &h
	}
	return p
}

// checkAttrs checks profile attributes against what cat reads them as,
// returning a refusal as a *RequestError.
func checkAttrs(cat *rules.Catalog, attrs map[string]featurestore.Value) error {
	var ae *rules.AttrError
	if err := cat.CheckAttrs(attrs); errors.As(err, &ae) {
		return &RequestError{Field: "features." + ae.Feature, Reason: ae.Reason}
	}
	return nil
}
