package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

func open(t testing.TB, opts embedded.Options) *embedded.Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := embedded.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, embedded.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Store {
		return open(t, embedded.Options{Now: o.Now, DedupeWindow: o.DedupeWindow})
	})
}

func TestContractNoSync(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Store {
		return open(t, embedded.Options{NoSync: true, Now: o.Now, DedupeWindow: o.DedupeWindow})
	})
}

func TestJournalContract(t *testing.T) {
	storetest.RunJournal(t, func(t *testing.T, o storetest.Options) storetest.JournalStore {
		return open(t, embedded.Options{Now: o.Now, DedupeWindow: o.DedupeWindow, TimelineLength: o.TimelineLength})
	})
}

// TestJournalContractCached runs the journal suite through the cache
// tier, which writes through the store's Apply and deletes through its
// Erase: a timeline entry must survive the cache's wrapping, and a
// deleted customer must not be read back from the cache.
func TestJournalContractCached(t *testing.T) {
	storetest.RunJournal(t, func(t *testing.T, o storetest.Options) storetest.JournalStore {
		s := open(t, embedded.Options{Now: o.Now, DedupeWindow: o.DedupeWindow, TimelineLength: o.TimelineLength})
		c, err := cache.New(s, cache.Options{MaxCost: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return cachedJournal{c, s}
	})
}

// cachedJournal is a cache over a store, with the store's timeline.
type cachedJournal struct {
	*cache.Cache
	st *embedded.Store
}

func (c cachedJournal) Timeline(ctx context.Context, id string, limit int) ([]featurestore.TimelineEntry, error) {
	return c.st.Timeline(ctx, id, limit)
}

func (c cachedJournal) EventIDs(ctx context.Context, id string) ([]string, error) {
	return c.st.EventIDs(ctx, id)
}

func TestStatsContract(t *testing.T) {
	storetest.RunStats(t, func(t *testing.T) featurestore.StatsStore {
		return open(t, embedded.Options{})
	})
}

func TestOpenOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts embedded.Options
	}{
		{"no dir", embedded.Options{}},
		{"negative cache", embedded.Options{Dir: t.TempDir(), CacheSize: -1}},
		{"dir is a file", embedded.Options{Dir: file}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := embedded.Open(tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
		})
	}
}

// TestPersistence writes through one Store, closes it and reads the same
// records back through a new one on the same directory.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	schema := storetest.Schema()
	now := storetest.Now
	ctx := context.Background()

	s := open(t, embedded.Options{Dir: dir})
	var muts []featurestore.Mutation
	for i := range 50 {
		id := fmt.Sprintf("c-%d", i)
		muts = append(muts, featurestore.AttrsMutation(id, map[string]featurestore.Value{"tier": featurestore.String("gold")}))
		muts = append(muts, featurestore.EventMutations(schema, []featurestore.Event{
			{ID: "e-" + id, CustomerID: id, Type: "cart_add", Time: now},
			{CustomerID: id, Type: "purchase", Time: now.Add(-time.Duration(i) * time.Hour), Properties: map[string]any{"amount": float64(i)}},
		}, now)...)
	}
	want, err := s.Mutate(ctx, muts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "c-1"); !errors.Is(err, embedded.ErrClosed) {
		t.Errorf("Load after Close: err = %v, want ErrClosed", err)
	}

	s = open(t, embedded.Options{Dir: dir})
	for i, m := range muts {
		got, err := s.Load(ctx, m.CustomerID)
		if err != nil {
			t.Fatalf("Load(%q): %v", m.CustomerID, err)
		}
		gv, wv := got.Features(schema, now, nil), want[i].Features(schema, now, nil)
		for j, f := range schema.Features() {
			if !gv[j].Equal(wv[j]) {
				t.Errorf("%s: %s = %v after reopening, want %v", m.CustomerID, f.Name, gv[j], wv[j])
			}
		}
	}
	// The event ids survive too: a retry is not applied again.
	for i := range 50 {
		id := fmt.Sprintf("c-%d", i)
		applied := []bool{true}
		retry := featurestore.EventMutationsApplied(schema, []featurestore.Event{{ID: "e-" + id, CustomerID: id, Type: "cart_add", Time: now}}, now, applied)
		if _, err := s.Mutate(ctx, retry); err != nil {
			t.Fatal(err)
		}
		if applied[0] {
			t.Errorf("%s: event id forgotten after reopening", id)
		}
	}
}

func TestClosed(t *testing.T) {
	s := open(t, embedded.Options{})
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	muts := []featurestore.Mutation{featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": featurestore.String("x")})}
	for name, err := range map[string]error{
		"Ping":        s.Ping(ctx),
		"Load":        func() error { _, err := s.Load(ctx, "c-1"); return err }(),
		"Mutate":      func() error { _, err := s.Mutate(ctx, muts); return err }(),
		"AddStats":    s.AddStats(ctx, []featurestore.StatDelta{{Key: featurestore.StatKey{Offer: "o"}, Counts: featurestore.Counts{Clicks: 1}}}),
		"LearnStats":  func() error { _, err := s.LearnStats(ctx); return err }(),
		"HourlyStats": func() error { _, err := s.HourlyStats(ctx, 1, 2); return err }(),
		"Close":       s.Close(),
	} {
		if !errors.Is(err, embedded.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	s := open(t, embedded.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	applied := false
	_, err := s.Mutate(ctx, []featurestore.Mutation{{CustomerID: "c-1", Apply: func(*featurestore.Record) bool { applied = true; return true }}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Mutate: err = %v, want context.Canceled", err)
	}
	if applied {
		t.Error("a mutation was applied under a canceled context")
	}
	if _, err := s.Load(context.Background(), "c-1"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load: err = %v, want ErrNotFound", err)
	}
}

// TestLockOrder runs calls that each cover many customers, in opposite
// orders, at once: locks taken in call order would deadlock.
func TestLockOrder(t *testing.T) {
	s := open(t, embedded.Options{NoSync: true})
	ids := make([]string, 2000) // far more customers than lock stripes
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
	}
	inc := func(id string) featurestore.Mutation {
		return featurestore.Mutation{CustomerID: id, Apply: func(r *featurestore.Record) bool {
			r.SetAttr("n", featurestore.Number(r.Attrs["n"].Num+1))
			return true
		}}
	}
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			muts := make([]featurestore.Mutation, len(ids))
			for i := range ids {
				j := i
				if w%2 == 1 {
					j = len(ids) - 1 - i
				}
				muts[i] = inc(ids[j])
			}
			if _, err := s.Mutate(context.Background(), muts); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		r, err := s.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Attrs["n"].Num; got != workers {
			t.Fatalf("%s: n = %v, want %d", id, got, workers)
		}
	}
}

func TestIdentityContract(t *testing.T) {
	storetest.RunIdentity(t, func(t *testing.T, o storetest.Options) storetest.IdentityStore {
		return open(t, embedded.Options{Now: o.Now, DedupeWindow: o.DedupeWindow})
	})
}
