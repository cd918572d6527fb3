package nextbest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// aliasStore is fakeStore with merges: ids in aliases answer reads and
// refuse writes with an AliasError, as the backends do.
type aliasStore struct {
	*fakeStore
	aliases map[string]string
}

func (s *aliasStore) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	s.mu.Lock()
	target, ok := s.aliases[id]
	s.mu.Unlock()
	if ok {
		return nil, featurestore.NewAliasError(id, target)
	}
	return s.fakeStore.Load(ctx, id)
}

func (s *aliasStore) Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	s.mu.Lock()
	var e *featurestore.AliasError
	for _, m := range muts {
		if target, ok := s.aliases[m.CustomerID]; ok {
			if e == nil {
				e = &featurestore.AliasError{Aliases: map[string]string{}}
			}
			e.Aliases[m.CustomerID] = target
		}
	}
	s.mu.Unlock()
	if e != nil {
		return nil, e
	}
	return s.fakeStore.Mutate(ctx, muts)
}

func (s *aliasStore) Merge(_ context.Context, m featurestore.Merge) (featurestore.MergeResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if target, ok := s.aliases[m.Into]; ok {
		return featurestore.MergeResult{}, featurestore.NewAliasError(m.Into, target)
	}
	if target, ok := s.aliases[m.From]; ok {
		if target != m.Into {
			return featurestore.MergeResult{}, featurestore.ErrAliasConflict
		}
		return featurestore.MergeResult{Record: s.recs[m.Into]}, nil
	}
	into := s.recs[m.Into].Clone()
	m.Fold(into, s.recs[m.From].Clone())
	s.recs[m.Into] = into
	delete(s.recs, m.From)
	s.aliases[m.From] = m.Into
	return featurestore.MergeResult{Record: into, Merged: true}, nil
}

func TestServiceMerge(t *testing.T) {
	svc, fake := newTestService(t, false, nil)
	store := &aliasStore{fakeStore: fake, aliases: map[string]string{}}
	svc.store = store
	ctx := context.Background()
	cat := svc.Catalog()
	cartItems := func(p *Profile) float64 {
		t.Helper()
		f, _ := p.Schema.Lookup("cart_items")
		return p.Features[f.Index].Num
	}
	add := func(id string) {
		t.Helper()
		evs := []featurestore.Event{{CustomerID: id, Type: "cart_add", Channel: "web", Time: testNow.Add(-time.Minute)}}
		if _, err := svc.ApplyEvents(cat, evs, testNow, true); err != nil {
			t.Fatal(err)
		}
	}
	add("anon-1")
	add("anon-1")
	add("anon-1")

	p, err := svc.Merge(ctx, "carter", "anon-1")
	if err != nil {
		t.Fatal(err)
	}
	if p.CustomerID != "carter" || cartItems(p) != 5 {
		t.Fatalf("merge: %s with %v cart items, want carter with 5", p.CustomerID, cartItems(p))
	}
	if p, err = svc.Merge(ctx, "carter", "anon-1"); err != nil || cartItems(p) != 5 {
		t.Fatalf("merge again: %v, %v; want 5 cart items", p, err)
	}

	// Late events, reads and writes of the alias are carter's.
	add("anon-1")
	if p, _ := svc.Profile(ctx, "anon-1"); p.CustomerID != "carter" || cartItems(p) != 6 {
		t.Errorf("profile of the alias: %s with %v, want carter with 6", p.CustomerID, cartItems(p))
	}
	if p, err := svc.SetProfile(ctx, "anon-1", map[string]featurestore.Value{"tier": featurestore.String("gold")}); err != nil || p.CustomerID != "carter" {
		t.Errorf("profile update of the alias: %v, %v; want carter's", p, err)
	}
	if _, ok := store.recs["anon-1"]; ok {
		t.Error("a write to the alias created a record for it")
	}

	// A decision for the alias decides for carter: carter's features,
	// and the impressions recorded are carter's.
	var d Decision
	if err := svc.Decide(ctx, &Request{CustomerID: "anon-1", Channel: "web", Limit: 1}, &d); err != nil {
		t.Fatal(err)
	}
	if d.req.CustomerID != "carter" {
		t.Errorf("decided for %q, want carter", d.req.CustomerID)
	}

	tests := []struct {
		into, from string
		conflict   bool
	}{
		{"someone", "anon-1", true},
		{"carter", "carter", false},
		{"anon-1", "carter", false},
	}
	for _, tt := range tests {
		_, err := svc.Merge(ctx, tt.into, tt.from)
		var re *RequestError
		var ce *ConflictError
		if (tt.conflict && !errors.As(err, &ce)) || (!tt.conflict && !errors.As(err, &re)) {
			t.Errorf("Merge(%s, %s) = %v, want a conflict %v", tt.into, tt.from, err, tt.conflict)
		}
	}
	// Into an alias: the merge goes to its customer.
	add("anon-2")
	if p, err := svc.Merge(ctx, "anon-1", "anon-2"); err != nil || p.CustomerID != "carter" || cartItems(p) != 7 {
		t.Errorf("merge into the alias: %v, %v; want carter with 7", p, err)
	}
}

func (s *aliasStore) RemoveAliases(_ context.Context, customer string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, target := range s.aliases {
		if target == customer {
			delete(s.aliases, id)
			out = append(out, id)
		}
	}
	return out, nil
}

func TestServiceRemoveAliases(t *testing.T) {
	svc, fake := newTestService(t, false, nil)
	store := &aliasStore{fakeStore: fake, aliases: map[string]string{"anon-1": "carter", "anon-2": "other"}}
	svc.store = store
	got, err := svc.RemoveAliases(context.Background(), "carter")
	if err != nil || len(got) != 1 || got[0] != "anon-1" {
		t.Fatalf("RemoveAliases = %v, %v; want [anon-1]", got, err)
	}
	if p, err := svc.Profile(context.Background(), "anon-1"); err != nil || p.CustomerID != "anon-1" || p.Known {
		t.Errorf("after RemoveAliases, anon-1 is %+v, %v; want an unknown customer", p, err)
	}
}

// TestForgetMerged: forgetting a customer forgets the ids merged into
// them (they become unknown ids), and forgetting such an id forgets the
// customer it resolves to, on the embedded store behind the cache.
func TestForgetMerged(t *testing.T) {
	ctx := context.Background()
	for _, forget := range []string{"c-00002", "c-00004"} {
		t.Run(forget, func(t *testing.T) {
			svc, st := campaignService(t, 10)
			svc.eraser, svc.journal, svc.timelineLen = svc.store.(Eraser), st, featurestore.DefaultTimelineLength
			// The anonymous id's browsing, on its timeline before the merge.
			ev := []featurestore.Event{{CustomerID: "c-00004", Type: "page_view", Channel: "web", Time: testNow.Add(-time.Hour)}}
			if _, err := svc.ApplyEvents(svc.Catalog(), ev, testNow, true); err != nil {
				t.Fatal(err)
			}
			if tl, _ := st.Timeline(ctx, "c-00004", 10); len(tl) != 1 {
				t.Fatalf("timeline before the merge: %v, want the page view", tl)
			}
			if _, err := svc.Merge(ctx, "c-00002", "c-00004"); err != nil {
				t.Fatal(err)
			}
			if err := svc.Forget(ctx, forget); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"c-00002", "c-00004"} {
				p, err := svc.Profile(ctx, id)
				if err != nil || p.Known || p.CustomerID != id {
					t.Errorf("after forgetting %s, profile of %s: %+v, %v; want an unknown customer under its own id", forget, id, p, err)
				}
			}
			if tl, err := st.Timeline(ctx, "c-00004", 10); err != nil || len(tl) != 0 {
				t.Errorf("timeline of the merged id after forgetting %s: %v, %v; want none", forget, tl, err)
			}
			if p, _ := svc.Profile(ctx, "c-00006"); !p.Known {
				t.Error("another customer was forgotten")
			}
		})
	}
}
