package nextbest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

var testNow = time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)

// fakeStore holds records in a map; with cached, it also answers Cached
// as a cache tier does.
type fakeStore struct {
	mu     sync.Mutex
	recs   map[string]*featurestore.Record
	err    error // returned by every call when set
	muts   int   // mutations applied
	loads  int
	schema *featurestore.Schema
}

func (s *fakeStore) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.err != nil {
		return nil, s.err
	}
	r, ok := s.recs[id]
	if !ok {
		return nil, featurestore.ErrNotFound
	}
	return r, nil
}

func (s *fakeStore) Mutate(_ context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make([]*featurestore.Record, len(muts))
	for i, m := range muts {
		r := s.recs[m.CustomerID].Clone()
		m.Apply(r)
		s.recs[m.CustomerID] = r
		out[i] = r
		s.muts++
	}
	return out, nil
}

type cachingStore struct{ *fakeStore }

func (s cachingStore) Cached(id string) (featurestore.Packed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if r == nil {
		return nil, ok
	}
	return r.Pack(), ok // under the lock, the only use of Pack
}

// MutateVisible is Mutate: the fake has no durability to wait for.
func (s cachingStore) MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error) {
	recs, err := s.Mutate(ctx, muts)
	return recs, func() error { return nil }, err
}

// fakeStats serves a fixed learned table and counts what it is given.
type fakeStats struct {
	learned *featurestore.LearnTable
	added   atomic.Int64
}

func (f *fakeStats) Add(deltas ...featurestore.StatDelta) { f.added.Add(int64(len(deltas))) }
func (f *fakeStats) Learned() *featurestore.LearnTable    { return f.learned }

// newTestService returns a service on the example retail catalog whose
// store knows "carter", a cart abandoner.
func newTestService(t testing.TB, cached bool, edit func(*Options)) (*Service, *fakeStore) {
	t.Helper()
	cat, err := rules.LoadFile("examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p atomic.Pointer[rules.Catalog]
	p.Store(cat)
	store := &fakeStore{recs: map[string]*featurestore.Record{}, schema: cat.Schema}
	r := &featurestore.Record{}
	for range 2 {
		r.Apply(cat.Schema, &featurestore.Event{ID: xid.New().String(), CustomerID: "carter", Type: "cart_add", Channel: "web", Time: testNow.Add(-time.Hour)}, testNow)
	}
	store.recs["carter"] = r
	opts := Options{Catalog: &p, Store: store, Now: func() time.Time { return testNow }}
	if cached {
		opts.Store = cachingStore{store}
		opts.Cache = cachingStore{store}
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

func offerIDs(d *Decision) []string {
	var ids []string
	for _, o := range d.Result.Offers {
		ids = append(ids, o.Offer.ID)
	}
	return ids
}

func TestNewValidates(t *testing.T) {
	var empty atomic.Pointer[rules.Catalog]
	tests := []struct {
		name string
		opts Options
	}{
		{"no catalog", Options{Store: &fakeStore{}}},
		{"empty catalog", Options{Catalog: &empty, Store: &fakeStore{}}},
		{"no store", Options{Catalog: &empty}},
		{"negative timeout", Options{Catalog: &empty, Store: &fakeStore{}, StoreTimeout: -1}},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name         string
		customer     string
		channel      string
		storeErr     error
		readOnly     bool
		wantDegraded Degradation
		// Writes: the customer's exposure on their first decision in the
		// catalog's experiment (every known or unknown customer id takes
		// part), and impressions on a decision_is_impression channel.
		wantMuts int
	}{
		{"known customer", "carter", "web", nil, false, NotDegraded, 1},
		{"unknown customer", "nobody", "web", nil, false, NotDegraded, 1},
		{"anonymous", "", "web", nil, false, NotDegraded, 0},
		{"store fails", "carter", "web", errors.New("store down"), false, DegradedError, 0},
		{"store past its deadline", "carter", "web", context.DeadlineExceeded, false, DegradedDeadline, 0},
		{"deciding is delivering", "carter", "email", nil, false, NotDegraded, 2},
		{"read-only records nothing", "carter", "email", nil, true, NotDegraded, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stats := &fakeStats{}
			s, store := newTestService(t, false, func(o *Options) { o.Stats = stats; o.ReadOnly = tt.readOnly })
			store.err = tt.storeErr
			var d Decision
			err := s.Decide(context.Background(), &Request{CustomerID: tt.customer, Channel: tt.channel, Limit: 1}, &d)
			if err != nil {
				t.Fatal(err)
			}
			if d.Degraded != tt.wantDegraded {
				t.Errorf("degraded: got %v, want %v", d.Degraded, tt.wantDegraded)
			}
			if d.ID.IsZero() || !d.ID.Time().Equal(testNow) {
				t.Errorf("decision id %v: want one made at %v", d.ID, testNow)
			}
			if store.muts != tt.wantMuts {
				t.Errorf("writes: got %d mutations, want %d (offers %v)", store.muts, tt.wantMuts, offerIDs(&d))
			}
			if got, want := stats.added.Load() > 0, !tt.readOnly; got != want {
				t.Errorf("statistics counted: %v, want %v", got, want)
			}
		})
	}
}

// TestDecideReplays: the same request with the same id and time is the
// same decision, Thompson draws included.
func TestDecideReplays(t *testing.T) {
	s, _ := newTestService(t, true, nil)
	req := Request{CustomerID: "carter", Channel: "web", Placement: "cart_page", Limit: 3, Explain: true,
		Context: map[string]any{"page": "cart"}, ID: xid.NewWithTime(testNow)}
	var first, again Decision
	if err := s.Decide(context.Background(), &req, &first); err != nil {
		t.Fatal(err)
	}
	if len(first.Result.Offers) < 2 {
		t.Fatalf("offers %v: want several, to compare their scores", offerIDs(&first))
	}
	for range 3 {
		again.Reset()
		if err := s.Decide(context.Background(), &req, &again); err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || len(again.Result.Offers) != len(first.Result.Offers) {
			t.Fatalf("replay: got %v %v, want %v %v", again.ID, offerIDs(&again), first.ID, offerIDs(&first))
		}
		for i := range first.Result.Offers {
			if g, w := again.Result.Offers[i], first.Result.Offers[i]; g.Offer.ID != w.Offer.ID || g.Score != w.Score {
				t.Errorf("replay offer %d: got %s %v, want %s %v", i, g.Offer.ID, g.Score, w.Offer.ID, w.Score)
			}
		}
	}
}

// TestReadOnlyWithoutStore: a read-only service needs no store; every
// customer has the schema's defaults, and events have nowhere to go.
func TestReadOnlyWithoutStore(t *testing.T) {
	s, _ := newTestService(t, false, func(o *Options) { o.Store, o.ReadOnly = nil, true })
	var d Decision
	if err := s.Decide(context.Background(), &Request{CustomerID: "carter", Channel: "web", Limit: 1}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Degraded != NotDegraded || len(d.Result.Segments) != 0 {
		t.Errorf("got degraded %v, segments %v: want the schema's defaults, not degraded", d.Degraded, d.Result.Segments)
	}
	cat := s.catalog.Load()
	ev := featurestore.Event{ID: "e1", CustomerID: "carter", Type: "cart_add", Channel: "web", Time: testNow}
	if _, err := s.ApplyEvents(cat, []featurestore.Event{ev}, testNow, true); !errors.Is(err, errNoStore) {
		t.Errorf("ApplyEvents without a store: got %v, want errNoStore", err)
	}
}
