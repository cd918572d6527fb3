package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// Backend is the store behind the cache.
type Backend interface {
	Load(ctx context.Context, id string) (*featurestore.Record, error)
	Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error)
}

// deferredSyncer is a Backend that can split a Mutate at durability
// (featurestore/embedded): the cache then holds its customer locks only
// while the records are applied, not across the fsync, and waits for
// durability after releasing them.
// Such a backend is also the only writer of its data (an embedded store
// owned by this process), so the cache's copy, kept under the customer's
// lock, is current and is offered as the base of the update.
type deferredSyncer interface {
	MutateDeferSync(ctx context.Context, muts []featurestore.Mutation, base func(id string) (*featurestore.Record, bool)) ([]*featurestore.Record, func() error, error)
}

// Options configures a Cache.
type Options struct {
	// MaxCost bounds the memory of cached records, in bytes (estimated
	// from each record's contents). Default 256 MiB.
	MaxCost int64
	// NumCounters is the number of keys whose access frequency ristretto
	// tracks to decide what to keep; about ten times the number of
	// records that fit. Default: ten per KiB of MaxCost (records of about
	// 1 KiB), at least 1000.
	NumCounters int64
	// TTL bounds how long a record stays cached, for backends that can
	// change without the cache hearing of it. Default 0: no expiry.
	TTL time.Duration
}

// expectedRecordCost is the size assumed for a typical record when
// deriving NumCounters from MaxCost.
const expectedRecordCost = 1 << 10

// numStripes is the number of customer locks.
const numStripes = 512

// Cache is a ristretto-backed tier of customer records over a Backend.
type Cache struct {
	b    Backend
	rc   *ristretto.Cache[string, entry]
	ttl  time.Duration
	seed maphash.Seed // of the stripe hash

	// epoch is bumped by InvalidateAll; entries of an older epoch are
	// misses.
	epoch   atomic.Uint64
	stripes [numStripes]stripe
	flights flights

	hits, misses counter
}

// stripe orders the cache writes of the customers that hash to it.
type stripe struct {
	// mu is held by a write across the backend commit and the cache
	// update, and by a miss while it checks gen and inserts.
	mu sync.Mutex
	// gen is bumped, under mu, once a write has reached the backend and
	// on every invalidation. A miss reads it before loading; it inserts
	// what it loaded, and other misses share its load, only while gen is
	// unchanged, so a record loaded before a write is never cached or
	// handed to a read that began after the write.
	gen atomic.Uint64
}

// entry is a cached record; rec is nil for a customer the backend does
// not know.
type entry struct {
	rec   *featurestore.Record
	epoch uint64
}

// New returns a Cache in front of b.
func New(b Backend, opts Options) (*Cache, error) {
	switch {
	case b == nil:
		return nil, errors.New("cache: backend is nil")
	case opts.MaxCost < 0:
		return nil, fmt.Errorf("cache: Options.MaxCost %d is negative", opts.MaxCost)
	case opts.NumCounters < 0:
		return nil, fmt.Errorf("cache: Options.NumCounters %d is negative", opts.NumCounters)
	case opts.TTL < 0:
		return nil, fmt.Errorf("cache: Options.TTL %v is negative", opts.TTL)
	}
	if opts.MaxCost == 0 {
		opts.MaxCost = 256 << 20
	}
	if opts.NumCounters == 0 {
		opts.NumCounters = max(10*opts.MaxCost/expectedRecordCost, 1000)
	}
	c := &Cache{b: b, ttl: opts.TTL, seed: maphash.MakeSeed()}
	rc, err := ristretto.NewCache(&ristretto.Config[string, entry]{
		NumCounters: opts.NumCounters,
		MaxCost:     opts.MaxCost,
		BufferItems: 64, // ristretto's recommended value
		Metrics:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.rc = rc
	return c, nil
}

func (c *Cache) stripe(id string) int {
	return int(maphash.String(c.seed, id) % numStripes)
}

// Cached returns the customer's record if the cache holds it, without
// I/O: ok is false on a miss, and rec is nil for a customer known to be
// absent. It does not keep id, so id may be a transient view of bytes.
// A miss is counted in Stats only if Load follows it.
func (c *Cache) Cached(id string) (rec *featurestore.Record, ok bool) {
	e, ok := c.rc.Get(id)
	if !ok || e.epoch != c.epoch.Load() {
		return nil, false
	}
	c.hits.inc()
	return e.rec, true
}

// current is Cached without counting a hit, for a backend's update base.
func (c *Cache) current(id string) (*featurestore.Record, bool) {
	e, ok := c.rc.Get(id)
	if !ok || e.epoch != c.epoch.Load() {
		return nil, false
	}
	return e.rec, true
}

// Load returns the customer's record, from memory or else from the
// backend, or featurestore.ErrNotFound. The record is shared: callers must
// not modify it. Concurrent misses of one customer share one backend load.
func (c *Cache) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	rec, ok := c.Cached(id)
	if !ok {
		c.misses.inc()
		var err error
		if rec, err = c.loadShared(ctx, id); err != nil {
			return nil, err
		}
	}
	if rec == nil {
		return nil, featurestore.ErrNotFound
	}
	return rec, nil
}

// loadShared joins the load of id in flight, or starts one.
func (c *Cache) loadShared(ctx context.Context, id string) (*featurestore.Record, error) {
	st := &c.stripes[c.stripe(id)]
	for {
		gen, epoch := st.gen.Load(), c.epoch.Load()
		f, leader := c.flights.join(id, gen, epoch)
		if leader {
			return c.flights.run(id, f, func() (*featurestore.Record, error) { return c.fill(ctx, id, st, gen, epoch) })
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// The leader's deadline is not ours: if only it ran out, try again.
		if isContextErr(f.err) && ctx.Err() == nil {
			continue
		}
		return f.rec, f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fill loads id from the backend and caches it, unless a write or an
// invalidation of its stripe st came in since gen and epoch were read.
// nil with no error means the backend does not know the customer.
func (c *Cache) fill(ctx context.Context, id string, st *stripe, gen, epoch uint64) (*featurestore.Record, error) {
	// A load that finished just before this one started may have cached
	// the record already.
	if e, ok := c.rc.Get(id); ok && e.epoch == epoch {
		return e.rec, nil
	}
	rec, err := c.b.Load(ctx, id)
	if errors.Is(err, featurestore.ErrNotFound) {
		rec, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The lock is busy when a write of this stripe is in progress: it
	// will cache its own, newer record, and ours must not follow it, so
	// skip rather than wait for a commit.
	if st.mu.TryLock() {
		if st.gen.Load() == gen {
			c.rc.SetWithTTL(id, entry{rec, epoch}, cost(rec), c.ttl)
			// Apply the insert before letting go of the stripe: no insert
			// is ever queued while the lock is free, so none can surface
			// after a newer record, and the followers' next load hits
			// instead of loading again.
			c.rc.Wait()
			st.mu.Unlock()
			return rec, nil
		}
		st.mu.Unlock()
	}
	// A write committed since the load began, and rec may be newer than
	// what the cache holds until that write updates it. Answer with the
	// cached record if there is one: it reflects every finished write,
	// and this read is concurrent with the others, so it is a valid
	// answer; rec would let this reader's next read go back in time.
	if e, ok := c.rc.Get(id); ok && e.epoch == c.epoch.Load() {
		return e.rec, nil
	}
	return rec, nil
}

// Mutate applies muts through the backend and returns once the backend
// has committed them and the cache holds the new records (or, if
// ristretto declines one, nothing for that customer): the next Load sees
// the write. Records are shared, as with Load. If the backend fails, the
// customers' cached records are dropped, since the backend may have
// applied the write anyway (a timeout after its commit).
func (c *Cache) Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	recs, durable, err := c.mutate(ctx, muts)
	if err != nil {
		return nil, err
	}
	if err := durable(); err != nil {
		return nil, err
	}
	return recs, nil
}

// MutateVisible is Mutate that returns as soon as the new records are
// visible (committed to the backend's memory and in the cache), with the
// wait for their durability to call afterwards, from any goroutine. With
// a backend that cannot split the two, durable returns at once.
func (c *Cache) MutateVisible(ctx context.Context, muts []featurestore.Mutation) (recs []*featurestore.Record, durable func() error, err error) {
	return c.mutate(ctx, muts)
}

func noWait() error { return nil }

// mutate runs muts under the customers' stripe locks and returns the
// backend's durability wait, to be called after the locks are released.
func (c *Cache) mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error) {
	if len(muts) == 0 {
		return nil, noWait, nil
	}
	// Note which mutations changed their record: unchanged customers keep
	// their cached entry, and an unknown customer stays a negative entry.
	// A backend that retries a mutation applies it again, and its last
	// run is the one committed.
	changed := make([]bool, len(muts))
	wrapped := make([]featurestore.Mutation, len(muts))
	for i, m := range muts {
		apply := m.Apply
		wrapped[i] = featurestore.Mutation{CustomerID: m.CustomerID, Dedupe: m.Dedupe, Apply: func(r *featurestore.Record) bool {
			changed[i] = apply(r)
			return changed[i]
		}}
	}
	custs := customers(muts)
	stripes := make([]int, len(custs))
	for i, cu := range custs {
		stripes[i] = c.stripe(cu.id)
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes { // in order, so calls cannot deadlock
		c.stripes[s].mu.Lock()
	}
	defer func() {
		for _, s := range stripes {
			c.stripes[s].mu.Unlock()
		}
	}()

	epoch := c.epoch.Load()
	var recs []*featurestore.Record
	var err error
	durable := noWait
	if ds, ok := c.b.(deferredSyncer); ok {
		recs, durable, err = ds.MutateDeferSync(ctx, wrapped, c.current)
	} else {
		recs, err = c.b.Mutate(ctx, wrapped)
	}
	// From here a load may see the new records, so loads that started
	// before must neither cache nor share what they read.
	for _, s := range stripes {
		c.stripes[s].gen.Add(1)
	}
	if err == nil && len(recs) != len(muts) {
		err = fmt.Errorf("cache: backend returned %d records for %d mutations", len(recs), len(muts))
	}
	if err != nil {
		for _, cu := range custs {
			c.rc.Del(cu.id)
		}
		return nil, nil, err
	}

	set := custs[:0]
	for _, cu := range custs {
		cu.rec = recs[cu.last]
		if slices.ContainsFunc(cu.muts, func(i int) bool { return changed[i] }) {
			set = append(set, cu)
		}
	}
	if len(set) == 0 {
		return recs, durable, nil
	}
	for _, cu := range set {
		c.rc.SetWithTTL(cu.id, entry{cu.rec, epoch}, cost(cu.rec), c.ttl)
	}
	// An absent customer is inserted through ristretto's buffer: wait
	// until it is applied (or refused), so the next Load sees it.
	c.rc.Wait()
	// Inserts are made and waited for only under the stripe lock, so no
	// older insert of these customers can have been queued ahead of ours
	// and won admission over it. Ristretto's buffered semantics are subtle
	// enough that a lookup per write to make sure is worth it.
	for _, cu := range set {
		if e, ok := c.rc.Get(cu.id); ok && e.rec != cu.rec {
			c.rc.SetWithTTL(cu.id, entry{cu.rec, epoch}, cost(cu.rec), c.ttl)
		}
	}
	return recs, durable, nil
}

// customer is one customer's share of a Mutate call.
type customer struct {
	id   string
	muts []int // indexes of the customer's mutations
	last int   // index of the last one
	rec  *featurestore.Record
}

// customers returns the distinct customers of muts in order of first
// appearance.
func customers(muts []featurestore.Mutation) []*customer {
	var out []*customer
	var index map[string]*customer // only for large calls; a scan is cheaper below
	if len(muts) > 16 {
		index = make(map[string]*customer, len(muts))
	}
	for i, m := range muts {
		var cu *customer
		if index != nil {
			cu = index[m.CustomerID]
		} else {
			for _, x := range out {
				if x.id == m.CustomerID {
					cu = x
					break
				}
			}
		}
		if cu == nil {
			cu = &customer{id: m.CustomerID}
			out = append(out, cu)
			if index != nil {
				index[m.CustomerID] = cu
			}
		}
		cu.muts = append(cu.muts, i)
		cu.last = i
	}
	return out
}

// Invalidate drops the customer's cached record, so the next Load reads
// the backend: for a change made elsewhere (another node). A load in
// flight does not cache what it read.
func (c *Cache) Invalidate(id string) {
	st := &c.stripes[c.stripe(id)]
	st.mu.Lock()
	st.gen.Add(1)
	c.rc.Del(id)
	st.mu.Unlock()
}

// InvalidateAll makes every cached record a miss, as when the cache may
// have missed invalidations (a lost subscription). Loads in flight do not
// cache what they read; records are refreshed as they are next loaded.
func (c *Cache) InvalidateAll() {
	c.epoch.Add(1)
}

// Close releases the cache. It must be the last call: ristretto does not
// allow a Close concurrent with other operations.
func (c *Cache) Close() {
	c.rc.Close()
}
