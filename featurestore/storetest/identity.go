package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// IdentityStore is a Store that merges customers (featurestore.Merge).
type IdentityStore interface {
	Store
	Merge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error)
	RemoveAliases(ctx context.Context, customer string) ([]string, error)
}

// RunIdentity runs the contract of merges and aliases. open is Run's,
// for stores that merge. Run it on a Redis Cluster too: the ids of the
// suite hash to different slots.
func RunIdentity(t *testing.T, open func(t *testing.T, opts Options) IdentityStore) {
	s := &suite{schema: Schema()}
	o := func(t *testing.T) IdentityStore { return open(t, Options{Now: func() time.Time { return Now }}) }
	t.Run("MergeFolds", func(t *testing.T) { s.mergeFolds(t, o(t)) })
	t.Run("MergeTwiceChangesNothing", func(t *testing.T) { s.mergeTwice(t, o(t)) })
	t.Run("WriteToAlias", func(t *testing.T) { s.writeToAlias(t, o(t)) })
	t.Run("AliasOfAnother", func(t *testing.T) { s.aliasOfAnother(t, o(t)) })
	t.Run("MergeUnknown", func(t *testing.T) { s.mergeUnknown(t, o(t)) })
	t.Run("ChainsAndRemoveAliases", func(t *testing.T) { s.chains(t, o(t)) })
}

// merge merges from into into with Record.Merge at Now.
func (s *suite) merge(st IdentityStore, into, from string) (featurestore.MergeResult, error) {
	return st.Merge(context.Background(), featurestore.Merge{Into: into, From: from, Fold: func(r, f *featurestore.Record) bool {
		return r.Merge(s.schema, f, Now)
	}})
}

func (s *suite) mustMerge(t *testing.T, st IdentityStore, into, from string, merged bool) *featurestore.Record {
	t.Helper()
	res, err := s.merge(st, into, from)
	if err != nil {
		t.Fatalf("Merge(%q into %q): %v", from, into, err)
	}
	if res.Merged != merged {
		t.Errorf("Merge(%q into %q): Merged = %v, want %v", from, into, res.Merged, merged)
	}
	return res.Record
}

// aliasOf returns the target of id's AliasError from Load, "" if Load
// answers anything else.
func aliasOf(t *testing.T, st Store, id string) string {
	t.Helper()
	_, err := st.Load(context.Background(), id)
	var ae *featurestore.AliasError
	if !errors.As(err, &ae) {
		return ""
	}
	if !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load(%q): an AliasError that is not ErrNotFound", id)
	}
	target, _ := ae.Target(id)
	return target
}

func (s *suite) setupPair(t *testing.T, st IdentityStore) {
	t.Helper()
	s.events(t, st,
		ev("known-1", "product_view", -3*time.Hour, map[string]any{"category": "shoes"}),
		ev("known-1", "purchase", -2*time.Hour, map[string]any{"amount": 40.0}),
		ev("anon-7f3a", "product_view", -50*time.Minute, map[string]any{"category": "tents"}),
		ev("anon-7f3a", "product_view", -40*time.Minute, map[string]any{"category": "tents"}),
		ev("anon-7f3a", "product_view", -30*time.Minute, map[string]any{"category": "outdoor"}),
	)
	mutate(t, st, []featurestore.Mutation{
		featurestore.AttrsMutation("known-1", map[string]featurestore.Value{"tier": str("gold")}),
		featurestore.AttrsMutation("anon-7f3a", map[string]featurestore.Value{"tier": str("bronze"), "lifetime_value": num(3)}),
	})
}

var merged = want{
	"views_1d":       num(4),
	"last_category":  str("outdoor"),
	"purchases":      num(1),
	"spend":          num(40),
	"tier":           str("gold"),
	"lifetime_value": num(3),
}

// mergeFolds: the anonymous id's record is folded into the known
// customer's, is gone, and the id is an alias.
func (s *suite) mergeFolds(t *testing.T, st IdentityStore) {
	s.setupPair(t, st)
	rec := s.mustMerge(t, st, "known-1", "anon-7f3a", true)
	s.check(t, "merge result", rec, Now, merged)
	s.check(t, "known after merge", load(t, st, "known-1"), Now, merged)
	if got := aliasOf(t, st, "anon-7f3a"); got != "known-1" {
		t.Errorf("Load(anon-7f3a) is an alias of %q, want known-1", got)
	}
}

// mergeTwice: a retried merge changes nothing and answers the same.
func (s *suite) mergeTwice(t *testing.T, st IdentityStore) {
	s.setupPair(t, st)
	s.mustMerge(t, st, "known-1", "anon-7f3a", true)
	rec := s.mustMerge(t, st, "known-1", "anon-7f3a", false)
	s.check(t, "second merge's result", rec, Now, merged)
	s.check(t, "known after two merges", load(t, st, "known-1"), Now, merged)
}

// writeToAlias: a write to an alias writes nothing and names it.
func (s *suite) writeToAlias(t *testing.T, st IdentityStore) {
	s.setupPair(t, st)
	s.mustMerge(t, st, "known-1", "anon-7f3a", true)
	evs := []featurestore.Event{
		ev("anon-7f3a", "product_view", -time.Minute, map[string]any{"category": "late"}),
		ev("other", "product_view", -time.Minute, map[string]any{"category": "x"}),
	}
	_, err := st.Mutate(context.Background(), featurestore.EventMutations(s.schema, evs, Now))
	var ae *featurestore.AliasError
	if !errors.As(err, &ae) {
		t.Fatalf("Mutate of an alias: %v, want an AliasError", err)
	}
	if got, _ := ae.Target("anon-7f3a"); got != "known-1" || len(ae.Aliases) != 1 {
		t.Errorf("AliasError %v, want anon-7f3a → known-1 only", ae.Aliases)
	}
	s.check(t, "known after a refused write", load(t, st, "known-1"), Now, merged)
	if _, err := st.Load(context.Background(), "other"); !errors.Is(err, featurestore.ErrNotFound) || errors.As(err, &ae) {
		t.Errorf("Load(other) = %v: the refused call wrote its other customer", err)
	}
	if got := aliasOf(t, st, "anon-7f3a"); got != "known-1" {
		t.Errorf("after the refused write, anon-7f3a is an alias of %q", got)
	}
}

// aliasOfAnother: an id belongs to one customer; merging into an alias
// names the alias.
func (s *suite) aliasOfAnother(t *testing.T, st IdentityStore) {
	s.setupPair(t, st)
	s.mustMerge(t, st, "known-1", "anon-7f3a", true)
	if _, err := s.merge(st, "known-2", "anon-7f3a"); !errors.Is(err, featurestore.ErrAliasConflict) {
		t.Errorf("merging an alias into another customer: %v, want ErrAliasConflict", err)
	}
	_, err := s.merge(st, "anon-7f3a", "anon-other")
	var ae *featurestore.AliasError
	if !errors.As(err, &ae) {
		t.Fatalf("merging into an alias: %v, want an AliasError", err)
	}
	if got, _ := ae.Target("anon-7f3a"); got != "known-1" {
		t.Errorf("AliasError %v, want anon-7f3a → known-1", ae.Aliases)
	}
	s.check(t, "known after refused merges", load(t, st, "known-1"), Now, merged)
}

// mergeUnknown: merging an id with nothing stored still makes it an
// alias, so that what comes later under it lands on the customer.
func (s *suite) mergeUnknown(t *testing.T, st IdentityStore) {
	s.setupPair(t, st)
	s.mustMerge(t, st, "known-1", "never-seen", true)
	s.check(t, "known", load(t, st, "known-1"), Now, want{"views_1d": num(1), "tier": str("gold")})
	if got := aliasOf(t, st, "never-seen"); got != "known-1" {
		t.Errorf("never-seen is an alias of %q, want known-1", got)
	}
	// Into a customer unknown too.
	s.mustMerge(t, st, "brand-new", "never-seen-2", true)
	if got := aliasOf(t, st, "never-seen-2"); got != "brand-new" {
		t.Errorf("never-seen-2 is an alias of %q, want brand-new", got)
	}
}

// chains: a customer merged into another takes its aliases along
// (resolved in at most MaxAliasHops), and RemoveAliases of the last
// removes every id that resolves to it.
func (s *suite) chains(t *testing.T, st IdentityStore) {
	s.events(t, st,
		ev("device-a", "product_view", -3*time.Minute, map[string]any{"category": "a"}),
		ev("web-b", "product_view", -2*time.Minute, map[string]any{"category": "b"}),
		ev("crm-c", "product_view", -time.Minute, map[string]any{"category": "c"}),
	)
	s.mustMerge(t, st, "web-b", "device-a", true)
	s.mustMerge(t, st, "crm-c", "web-b", true)
	s.check(t, "crm-c", load(t, st, "crm-c"), Now, want{"views_1d": num(3), "last_category": str("c")})
	for _, id := range []string{"device-a", "web-b"} {
		got := id
		for hops := 0; hops < featurestore.MaxAliasHops; hops++ {
			next := aliasOf(t, st, got)
			if next == "" {
				break
			}
			got = next
		}
		if got != "crm-c" {
			t.Errorf("%s resolves to %q, want crm-c", id, got)
		}
	}
	removed, err := st.RemoveAliases(context.Background(), "crm-c")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"device-a", "web-b"}; !slices.Equal(removed, want) {
		t.Errorf("RemoveAliases = %v, want %v", removed, want)
	}
	for _, id := range []string{"device-a", "web-b"} {
		if _, err := st.Load(context.Background(), id); !errors.Is(err, featurestore.ErrNotFound) {
			t.Errorf("Load(%s) after RemoveAliases = %v, want ErrNotFound", id, err)
		}
		if got := aliasOf(t, st, id); got != "" {
			t.Errorf("%s is still an alias of %q", id, got)
		}
	}
	if removed, err := st.RemoveAliases(context.Background(), "crm-c"); err != nil || len(removed) != 0 {
		t.Errorf("RemoveAliases again = %v, %v; want none", removed, err)
	}
	// The ids are free: a merge of one into another customer works.
	s.mustMerge(t, st, "crm-d", "web-b", true)
}
