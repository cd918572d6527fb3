package cache_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

// memBackend is an in-memory Backend that counts its loads and lets a test
// step into them.
type memBackend struct {
	mu      sync.Mutex
	recs    map[string]*featurestore.Record
	loads   atomic.Int64
	onLoad  func(id string) // called at the start of Load, outside mu
	mutErr  error           // returned by Apply after applying
	loadErr error
	locks   *featurestore.Locks
}

func newMemBackend() *memBackend {
	return &memBackend{recs: make(map[string]*featurestore.Record), locks: featurestore.NewLocks()}
}

func (b *memBackend) Locks() *featurestore.Locks { return b.locks }

func (b *memBackend) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	b.loads.Add(1)
	if b.onLoad != nil {
		b.onLoad(id)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.loadErr != nil {
		return nil, b.loadErr
	}
	r, ok := b.recs[id]
	if !ok {
		return nil, featurestore.ErrNotFound
	}
	return r.Clone(), nil
}

// Apply ignores bases: the backend changes behind the cache's back (set).
func (b *memBackend) Apply(ctx context.Context, muts []featurestore.Mutation, groups []featurestore.Group, _ []*featurestore.Record) ([]*featurestore.Record, func() error, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*featurestore.Record, len(muts))
	for _, g := range groups {
		r := b.recs[g.CustomerID].Clone()
		changed := false
		for _, i := range g.Muts {
			changed = muts[i].Apply(r) || changed
		}
		if changed {
			b.recs[g.CustomerID] = r.Clone()
		}
		for _, i := range g.Muts {
			out[i] = r
		}
	}
	if b.mutErr != nil {
		return nil, nil, b.mutErr
	}
	return out, func() error { return nil }, nil
}

// set changes the backend behind the cache's back, as another node would.
func (b *memBackend) set(id string, n float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &featurestore.Record{}
	r.SetAttr("n", featurestore.Number(n))
	b.recs[id] = r
}

func newCache(t testing.TB, b cache.Backend, opts cache.Options) *cache.Cache {
	t.Helper()
	c, err := cache.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// inc adds one to the customer's attribute n.
func inc(id string) featurestore.Mutation {
	return featurestore.Mutation{CustomerID: id, Apply: func(r *featurestore.Record) bool {
		r.SetAttr("n", featurestore.Number(r.Attrs["n"].Num+1))
		return true
	}}
}

// n returns attribute n of r; 0 for nil.
func n(r *featurestore.Record) float64 {
	if r == nil {
		return 0
	}
	return r.Attrs["n"].Num
}

// loadN loads id and returns its n; 0 for an unknown customer.
func loadN(t testing.TB, c *cache.Cache, id string) float64 {
	r, err := c.Load(context.Background(), id)
	if errors.Is(err, featurestore.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Errorf("Load(%q): %v", id, err)
		return 0
	}
	return n(r)
}

func TestContract(t *testing.T) {
	tests := []struct {
		name string
		opts cache.Options
	}{
		{"defaults", cache.Options{}},
		// Every record costs more than the whole cache: nothing is admitted.
		{"admits nothing", cache.Options{MaxCost: 1}},
		{"ttl", cache.Options{TTL: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Store {
				s, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true, Now: o.Now, DedupeWindow: o.DedupeWindow})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return newCache(t, s, tt.opts)
			})
		})
	}
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name string
		b    cache.Backend
		opts cache.Options
	}{
		{"nil backend", nil, cache.Options{}},
		{"negative cost", newMemBackend(), cache.Options{MaxCost: -1}},
		{"negative counters", newMemBackend(), cache.Options{NumCounters: -1}},
		{"negative ttl", newMemBackend(), cache.Options{TTL: -time.Second}},
		{"backend without locks", &memBackend{recs: map[string]*featurestore.Record{}}, cache.Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := cache.New(tt.b, tt.opts); err == nil {
				c.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

// TestWriteHoldsBackendLocks checks the pairing of the cache with its
// backend: a write runs the backend's Apply holding the backend's own lock
// of each customer (so whatever else the backend does under that lock,
// such as the embedded store's sweeper, excludes it), and takes no second
// one (a backend locking again would deadlock here).
func TestWriteHoldsBackendLocks(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T) cache.Backend
	}{
		{"memory", func(*testing.T) cache.Backend { return newMemBackend() }},
		{"embedded", func(t *testing.T) cache.Backend {
			s, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.open(t)
			c := newCache(t, b, cache.Options{})
			locks := b.Locks()
			ids := []string{"c-1", "c-2", "c-1", "c-3"}
			held := map[string]bool{}
			muts := make([]featurestore.Mutation, len(ids))
			for i, id := range ids {
				muts[i] = featurestore.Mutation{CustomerID: id, Apply: func(r *featurestore.Record) bool {
					stripe := locks.Stripe(id)
					if locks.TryLockOne(stripe) {
						locks.UnlockOne(stripe)
					} else {
						held[id] = true
					}
					r.SetAttr("n", featurestore.Number(1))
					return true
				}}
			}
			if _, err := c.Mutate(context.Background(), muts); err != nil {
				t.Fatal(err)
			}
			if want := map[string]bool{"c-1": true, "c-2": true, "c-3": true}; !maps.Equal(held, want) {
				t.Errorf("customers whose lock Apply ran under: got %v, want %v", held, want)
			}
		})
	}
}

// TestWriteVisibleToNextLoad is the cache's contract under contention:
// after Mutate returns, the next Load of that customer, on any goroutine,
// sees at least that write, and no reader ever sees a customer go back in
// time, while misses, invalidations and (with a tiny cache) evictions and
// admission refusals race with the writes.
func TestWriteVisibleToNextLoad(t *testing.T) {
	tests := []struct {
		name    string
		maxCost int64
	}{
		{"roomy", 1 << 20},
		{"tiny", 700}, // about two records: constant eviction and refusal
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemBackend()
			// Yield inside loads, so they overlap the writes more often.
			b.onLoad = func(string) { runtime.Gosched() }
			c := newCache(t, b, cache.Options{MaxCost: tt.maxCost})
			ids := []string{"a", "b", "c", "d"}
			const writers, readers, rounds = 4, 4, 150
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range rounds {
						id := ids[(w+i)%len(ids)]
						muts := []featurestore.Mutation{inc(id)}
						if i%5 == 0 { // sometimes two customers in one call
							muts = append(muts, inc(ids[(w+i+1)%len(ids)]))
						}
						recs, err := c.Mutate(ctx, muts)
						if err != nil {
							t.Error(err)
							return
						}
						if got, want := loadN(t, c, id), n(recs[0]); got < want {
							t.Errorf("Load(%q) after Mutate returned n = %v: got n = %v", id, want, got)
						}
					}
				})
			}
			for r := range readers {
				wg.Go(func() {
					seen := map[string]float64{}
					for i := range rounds * 2 {
						id := ids[(r+i)%len(ids)]
						got := loadN(t, c, id)
						if got < seen[id] {
							t.Errorf("reader %d: %q went back from n = %v to %v", r, id, seen[id], got)
						}
						seen[id] = got
						switch {
						case i%37 == 0:
							c.InvalidateAll()
						case i%7 == 0:
							c.Invalidate(id)
						}
					}
				})
			}
			wg.Wait()
			for _, id := range ids {
				b.mu.Lock()
				want := n(b.recs[id])
				b.mu.Unlock()
				if got := loadN(t, c, id); got != want {
					t.Errorf("%q: n = %v after the run, backend has %v", id, got, want)
				}
			}
		})
	}
}

func TestConcurrentMissesLoadOnce(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("known=%v", known), func(t *testing.T) {
			b := newMemBackend()
			if known {
				b.set("c-1", 7)
			}
			release := make(chan struct{})
			b.onLoad = func(string) { <-release }
			c := newCache(t, b, cache.Options{})
			const n = 50
			var started, wg sync.WaitGroup
			started.Add(n)
			for range n {
				wg.Go(func() {
					started.Done()
					r, err := c.Load(context.Background(), "c-1")
					switch {
					case known && (err != nil || r == nil):
						t.Errorf("Load = %v, %v", r, err)
					case !known && !errors.Is(err, featurestore.ErrNotFound):
						t.Errorf("Load: err = %v, want ErrNotFound", err)
					}
				})
			}
			started.Wait()
			close(release)
			wg.Wait()
			// Whatever the interleaving, a load that starts after another
			// finished hits the cache, and one that overlaps it joins it.
			if got := b.loads.Load(); got != 1 {
				t.Errorf("backend loads = %d, want 1", got)
			}
			for range 3 {
				c.Load(context.Background(), "c-1")
			}
			if got := b.loads.Load(); got != 1 {
				t.Errorf("backend loads after more reads = %d, want 1", got)
			}
		})
	}
}

func TestFollowerStopsAtItsDeadline(t *testing.T) {
	b := newMemBackend()
	entered, release := make(chan struct{}), make(chan struct{})
	b.onLoad = func(string) { close(entered); <-release }
	c := newCache(t, b, cache.Options{})
	done := make(chan error)
	go func() {
		_, err := c.Load(context.Background(), "c-1")
		done <- err
	}()
	<-entered // the leader is inside the backend
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Load(ctx, "c-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("follower: err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("leader: err = %v, want ErrNotFound", err)
	}
}

func TestLoadPanicDoesNotWedge(t *testing.T) {
	b := newMemBackend()
	b.onLoad = func(string) { panic("backend bug") }
	c := newCache(t, b, cache.Options{})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Load did not pass the backend's panic on")
			}
		}()
		c.Load(context.Background(), "c-1")
	}()
	b.onLoad = nil
	b.set("c-1", 3)
	if got := loadN(t, c, "c-1"); got != 3 {
		t.Errorf("n = %v after a panicked load, want 3", got)
	}
}

func TestNegativeEntries(t *testing.T) {
	b := newMemBackend()
	c := newCache(t, b, cache.Options{})
	ctx := context.Background()
	for range 3 {
		if _, err := c.Load(ctx, "anon"); !errors.Is(err, featurestore.ErrNotFound) {
			t.Fatalf("Load: err = %v, want ErrNotFound", err)
		}
	}
	if got := b.loads.Load(); got != 1 {
		t.Errorf("backend loads = %d, want 1", got)
	}
	if r, ok := c.Cached("anon"); !ok || r != nil {
		t.Errorf("Cached = %v, %v; want nil, true", r, ok)
	}
	// A mutation that changes nothing leaves the customer unknown.
	noop := featurestore.Mutation{CustomerID: "anon", Apply: func(*featurestore.Record) bool { return false }}
	if _, err := c.Mutate(ctx, []featurestore.Mutation{noop}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(ctx, "anon"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load after no-op: err = %v, want ErrNotFound", err)
	}
	if _, err := c.Mutate(ctx, []featurestore.Mutation{inc("anon")}); err != nil {
		t.Fatal(err)
	}
	if got := loadN(t, c, "anon"); got != 1 {
		t.Errorf("n = %v after the first write, want 1", got)
	}
	if got := b.loads.Load(); got != 1 {
		t.Errorf("backend loads = %d, want 1", got)
	}
}

func TestInvalidate(t *testing.T) {
	b := newMemBackend()
	c := newCache(t, b, cache.Options{})
	b.set("c-1", 1)
	b.set("c-2", 1)
	steps := []struct {
		name       string
		do         func()
		want1      float64
		want2      float64
		wantLoads  int64
		backendSet float64 // written to both customers behind the cache after the step
	}{
		{"first loads", func() {}, 1, 1, 2, 2},
		{"cached copies are stale", func() {}, 1, 1, 2, 0},
		{"invalidate one", func() { c.Invalidate("c-1") }, 2, 1, 3, 3},
		{"invalidate all", c.InvalidateAll, 3, 3, 5, 0},
		{"refreshed", func() {}, 3, 3, 5, 0},
	}
	for _, s := range steps {
		s.do()
		if got := loadN(t, c, "c-1"); got != s.want1 {
			t.Errorf("%s: c-1 n = %v, want %v", s.name, got, s.want1)
		}
		if got := loadN(t, c, "c-2"); got != s.want2 {
			t.Errorf("%s: c-2 n = %v, want %v", s.name, got, s.want2)
		}
		if got := b.loads.Load(); got != s.wantLoads {
			t.Errorf("%s: backend loads = %d, want %d", s.name, got, s.wantLoads)
		}
		if s.backendSet != 0 {
			b.set("c-1", s.backendSet)
			b.set("c-2", s.backendSet)
		}
	}
}

// TestFailedWriteDropsEntry: a backend may fail after committing (a
// timeout on the way back), so the cache must not keep the old record.
func TestFailedWriteDropsEntry(t *testing.T) {
	b := newMemBackend()
	c := newCache(t, b, cache.Options{})
	ctx := context.Background()
	if _, err := c.Mutate(ctx, []featurestore.Mutation{inc("c-1")}); err != nil {
		t.Fatal(err)
	}
	b.mutErr = errors.New("timeout")
	if _, err := c.Mutate(ctx, []featurestore.Mutation{inc("c-1")}); !errors.Is(err, b.mutErr) {
		t.Fatalf("Mutate: err = %v, want the backend's", err)
	}
	if got := loadN(t, c, "c-1"); got != 2 {
		t.Errorf("n = %v after a failed write the backend applied, want 2", got)
	}
}

func TestLoadErrorNotCached(t *testing.T) {
	b := newMemBackend()
	c := newCache(t, b, cache.Options{})
	b.set("c-1", 5)
	b.loadErr = errors.New("unreachable")
	if _, err := c.Load(context.Background(), "c-1"); !errors.Is(err, b.loadErr) {
		t.Fatalf("Load: err = %v, want the backend's", err)
	}
	b.loadErr = nil
	if got := loadN(t, c, "c-1"); got != 5 {
		t.Errorf("n = %v after the backend recovered, want 5", got)
	}
}

func TestMetrics(t *testing.T) {
	b := newMemBackend()
	c := newCache(t, b, cache.Options{})
	ctx := context.Background()
	if _, err := c.Mutate(ctx, []featurestore.Mutation{inc("c-1")}); err != nil {
		t.Fatal(err)
	}
	loadN(t, c, "c-1") // hit
	loadN(t, c, "c-2") // miss, negative entry
	loadN(t, c, "c-2") // hit
	c.Cached("c-1")    // hit
	c.Cached("c-3")    // a probe: a miss counts only if Load follows
	loadN(t, c, "c-3") // miss
	got := c.Metrics()
	if got.Hits != 3 || got.Misses != 2 || got.HitRatio != 0.6 {
		t.Errorf("hits, misses, ratio = %d, %d, %v; want 3, 2, 0.6", got.Hits, got.Misses, got.HitRatio)
	}
	if got.Entries != 3 {
		t.Errorf("entries = %d, want 3", got.Entries)
	}
	if got.CostAdded == 0 {
		t.Error("cost added = 0")
	}
}

func TestIdentityContract(t *testing.T) {
	tests := []struct {
		name string
		opts cache.Options
	}{
		{"defaults", cache.Options{}},
		{"admits nothing", cache.Options{MaxCost: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.RunIdentity(t, func(t *testing.T, o storetest.Options) storetest.IdentityStore {
				s, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true, Now: o.Now, DedupeWindow: o.DedupeWindow})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return newCache(t, s, tt.opts)
			})
		})
	}
}
