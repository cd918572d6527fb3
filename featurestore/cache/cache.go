package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/nextbest/nextbest/featurestore"
)

// Backend is the store behind the cache (featurestore/embedded,
// featurestore/redisstore). The backend owns the customer locks; the cache
// holds them for its writes and calls the backend's unlocked Apply under
// them, so a write takes one lock per customer, shared with whatever else
// the backend does under it (the embedded store's sweeper of event ids).
type Backend interface {
	Load(ctx context.Context, id string) (*featurestore.Record, error)
	// Locks returns the backend's customer locks, which the cache holds
	// across each Apply of the customers and each insert of a miss.
	Locks() *featurestore.Locks
	// Apply applies muts, grouped by customer in groups, atomically per
	// customer, and returns each mutation's record as the call leaves it
	// and a func that waits until the write is durable. The cache calls it
	// holding the Locks of every customer of groups, and the durable func
	// after releasing them. bases holds a copy of each group's customer
	// decoded from the cache, nil when the cache has none (an empty record
	// for a customer known to be absent): a backend that is the only
	// writer of its data may start from it, and change it, instead of
	// reading the customer. The cache packs (featurestore.Record.Pack)
	// the records Apply returns: a backend that packed them already
	// (to write them) saves it the work.
	Apply(ctx context.Context, muts []featurestore.Mutation, groups []featurestore.Group, bases []*featurestore.Record) ([]*featurestore.Record, func() error, error)
}

// Options configures a Cache.
type Options struct {
	// MaxCost bounds the memory of the cache's entries, in bytes: each
	// entry costs its packed record plus what ristretto and the cache
	// keep beside it (about 720 bytes for a customer of the retail
	// example, TypicalEntryCost). It does not include the admission
	// sketch (NumCounters, SketchBytes). Default 256 MiB.
	MaxCost int64
	// Entries is the number of customers expected to fit in MaxCost, from
	// which NumCounters is derived. Default: MaxCost over
	// TypicalEntryCost, the cost of a customer of the retail example.
	Entries int64
	// NumCounters is the number of keys whose access frequency ristretto
	// tracks to decide what to keep (its admission sketch, about 3.2
	// bytes each, touched on every read and write). Default:
	// CountersPerEntry times Entries, at least 1000.
	NumCounters int64
	// TTL bounds how long a record stays cached, for backends that can
	// change without the cache hearing of it. Default 0: no expiry.
	TTL time.Duration
}

// CountersPerEntry is the default number of sketch counters per entry
// expected. ristretto suggests ten, for caches of large values; for
// entries of a few hundred bytes ten counters would cost a tenth of the
// cache in a sketch that every read touches at four random places (192
// MiB at 4 GiB), out of the CPU caches. Two keep the frequency of every
// entry held and as many candidates, and with the sketch halved every
// NumCounters increments, that is the recent window that decides
// admission.
const CountersPerEntry = 2

// SketchBytes is the memory ristretto's admission sketch and doorkeeper
// take for numCounters counters (rounded up to a power of two): 4 rows of
// 4-bit counters and a bloom filter of about 1.2 bytes per counter. A
// memory budget shared between the cache and other users subtracts it.
func SketchBytes(numCounters int64) int64 {
	n := int64(1)
	for n < numCounters {
		n <<= 1
	}
	return n*2 + n*12/10
}

// DefaultCounters returns the NumCounters New uses for opts.
func DefaultCounters(opts Options) int64 {
	if opts.NumCounters > 0 {
		return opts.NumCounters
	}
	entries := opts.Entries
	if entries == 0 {
		maxCost := opts.MaxCost
		if maxCost == 0 {
			maxCost = defaultMaxCost
		}
		entries = maxCost / TypicalEntryCost
	}
	return max(CountersPerEntry*entries, 1000)
}

const defaultMaxCost = 256 << 20

// Cache is a ristretto-backed tier of customer records over a Backend.
type Cache struct {
	b   Backend
	rc  *ristretto.Cache[string, entry]
	ttl time.Duration
	// locks are the backend's customer locks. A write holds its
	// customers' across the backend's commit and the cache update, and a
	// miss holds its customer's while it checks gen and inserts.
	locks *featurestore.Locks

	// epoch is bumped by InvalidateAll; entries of an older epoch are
	// misses.
	epoch   atomic.Uint64
	gens    [featurestore.LockStripes]gen // by stripe of locks
	flights flights

	hits, misses counter
}

// gen is the write generation of the customers of one stripe of the
// locks. It is bumped, under the stripe's lock, once a write has reached
// the backend and on every invalidation. A miss reads it before loading;
// it inserts what it loaded, and other misses share its load, only while
// gen is unchanged, so a record loaded before a write is never cached or
// handed to a read that began after the write.
type gen struct {
	atomic.Uint64
	_ [56]byte // a cache line each: writes of other stripes do not contend
}

// entry is a cached record, packed: nil for a customer the backend does
// not know. legacy marks a record of an old codec whose event ids
// (Record.Seen) the packed form does not keep: the backend must read it
// again on the next write, to move them.
type entry struct {
	rec    featurestore.Packed
	epoch  uint64
	legacy bool
	// alias, when not nil, says the customer is an alias
	// (featurestore.Merge): no record, and what Load answers.
	alias *featurestore.AliasError
}

// New returns a Cache in front of b.
func New(b Backend, opts Options) (*Cache, error) {
	switch {
	case b == nil:
		return nil, errors.New("cache: backend is nil")
	case opts.MaxCost < 0:
		return nil, fmt.Errorf("cache: Options.MaxCost %d is negative", opts.MaxCost)
	case opts.Entries < 0:
		return nil, fmt.Errorf("cache: Options.Entries %d is negative", opts.Entries)
	case opts.NumCounters < 0:
		return nil, fmt.Errorf("cache: Options.NumCounters %d is negative", opts.NumCounters)
	case opts.TTL < 0:
		return nil, fmt.Errorf("cache: Options.TTL %v is negative", opts.TTL)
	}
	opts.NumCounters = DefaultCounters(opts)
	if opts.MaxCost == 0 {
		opts.MaxCost = defaultMaxCost
	}
	c := &Cache{b: b, ttl: opts.TTL, locks: b.Locks()}
	if c.locks == nil {
		return nil, errors.New("cache: backend has no locks")
	}
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

// Cached returns the customer's packed record if the cache holds it,
// without I/O or allocation: ok is false on a miss, and rec is nil for a
// customer known to be absent. Read it with a featurestore.View. It does
// not keep id, so id may be a transient view of bytes. A miss is counted
// in Stats only if Load follows it.
func (c *Cache) Cached(id string) (rec featurestore.Packed, ok bool) {
	e, ok := c.rc.Get(id)
	if !ok || e.epoch != c.epoch.Load() || e.alias != nil {
		return nil, false // an alias is Load's to answer
	}
	c.hits.inc()
	return e.rec, true
}

// Load returns the customer's record, from memory or else from the
// backend, or featurestore.ErrNotFound. The record may be shared: callers
// must not modify it. Concurrent misses of one customer share one backend
// load. A hit decodes the packed record: a decision reads Cached instead.
func (c *Cache) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	if e, ok := c.rc.Get(id); ok && e.epoch == c.epoch.Load() && e.alias != nil {
		c.hits.inc()
		return nil, e.alias
	}
	p, ok := c.Cached(id)
	if ok {
		if p == nil {
			return nil, featurestore.ErrNotFound
		}
		rec, err := p.Record()
		if err != nil {
			return nil, fmt.Errorf("customer %q: cached: %w", id, err)
		}
		return rec, nil
	}
	c.misses.inc()
	rec, err := c.loadShared(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, featurestore.ErrNotFound
	}
	return rec, nil
}

// loadShared joins the load of id in flight, or starts one.
func (c *Cache) loadShared(ctx context.Context, id string) (*featurestore.Record, error) {
	stripe := c.locks.Stripe(id)
	for {
		gen, epoch := c.gens[stripe].Load(), c.epoch.Load()
		f, leader := c.flights.join(id, gen, epoch)
		if leader {
			return c.flights.run(id, f, func() (*featurestore.Record, error) { return c.fill(ctx, id, stripe, gen, epoch) })
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
// invalidation of its stripe came in since gen and epoch were read.
// nil with no error means the backend does not know the customer.
func (c *Cache) fill(ctx context.Context, id string, stripe int, gen, epoch uint64) (*featurestore.Record, error) {
	// A load that finished just before this one started may have cached
	// the record already.
	if e, ok := c.rc.Get(id); ok && e.epoch == epoch {
		return e.answer()
	}
	rec, err := c.b.Load(ctx, id)
	alias := featurestore.AsAliasError(err)
	if alias != nil || errors.Is(err, featurestore.ErrNotFound) {
		rec, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The lock is busy when a write of this stripe is in progress: it
	// will cache its own, newer record, and ours must not follow it, so
	// skip rather than wait for a commit.
	if c.locks.TryLockOne(stripe) {
		if c.gens[stripe].Load() == gen {
			var p featurestore.Packed
			if rec != nil {
				p = rec.Pack()
			}
			c.rc.SetWithTTL(id, entry{rec: p, epoch: epoch, legacy: rec != nil && len(rec.Seen) > 0, alias: alias}, cost(p), c.ttl)
			// Apply the insert before letting go of the stripe: no insert
			// is ever queued while the lock is free, so none can surface
			// after a newer record, and the followers' next load hits
			// instead of loading again.
			c.rc.Wait()
			c.locks.UnlockOne(stripe)
			if alias != nil {
				return nil, alias
			}
			return rec, nil
		}
		c.locks.UnlockOne(stripe)
	}
	// A write committed since the load began, and rec may be newer than
	// what the cache holds until that write updates it. Answer with the
	// cached record if there is one: it reflects every finished write,
	// and this read is concurrent with the others, so it is a valid
	// answer; rec would let this reader's next read go back in time.
	if e, ok := c.rc.Get(id); ok && e.epoch == c.epoch.Load() {
		return e.answer()
	}
	if alias != nil {
		return nil, alias
	}
	return rec, nil
}

// answer is what a load answers from e: its record, or its alias.
func (e entry) answer() (*featurestore.Record, error) {
	if e.alias != nil {
		return nil, e.alias
	}
	return e.rec.Record()
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

// mutate runs muts through the backend's Apply under the customers'
// locks and returns the backend's durability wait, to be called after the
// locks are released.
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
		wrapped[i] = featurestore.Mutation{CustomerID: m.CustomerID, Dedupe: m.Dedupe, Timeline: m.Timeline, Apply: func(r *featurestore.Record) bool {
			changed[i] = apply(r)
			return changed[i]
		}}
	}
	groups := featurestore.GroupByCustomer(muts)
	stripes := c.locks.Stripes(groups)
	c.locks.Lock(stripes)
	defer c.locks.Unlock(stripes)

	epoch := c.epoch.Load()
	// The cached copies, current under the locks when the backend is
	// their only writer, spare it a read: decoding one is the copy the
	// write changes.
	bases := make([]*featurestore.Record, len(groups))
	var aliased *featurestore.AliasError
	for i, g := range groups {
		if e, ok := c.rc.Get(g.CustomerID); ok && e.epoch == epoch && !e.legacy {
			if e.alias != nil {
				// An alias is not written to (featurestore.Merge): the
				// caller resolves it and writes to its customer.
				if aliased == nil {
					aliased = &featurestore.AliasError{Aliases: map[string]string{}}
				}
				for id, target := range e.alias.Aliases {
					aliased.Aliases[id] = target
				}
			} else if e.rec == nil {
				bases[i] = &featurestore.Record{}
			} else if r, err := e.rec.Record(); err == nil {
				bases[i] = r
			}
		}
	}
	if aliased != nil {
		return nil, nil, aliased
	}
	recs, durable, err := c.b.Apply(ctx, wrapped, groups, bases)
	// From here a load may see the new records, so loads that started
	// before must neither cache nor share what they read.
	for _, s := range stripes {
		c.gens[s].Add(1)
	}
	if err == nil && len(recs) != len(muts) {
		err = fmt.Errorf("cache: backend returned %d records for %d mutations", len(recs), len(muts))
	}
	if errors.As(err, &aliased) {
		// Nothing was written: what is cached stands, and the aliases
		// are cached for the next write.
		for id, target := range aliased.Aliases {
			c.rc.SetWithTTL(id, entry{epoch: epoch, alias: featurestore.NewAliasError(id, target)}, cost(nil), c.ttl)
		}
		c.rc.Wait()
		return nil, nil, err
	}
	if err != nil {
		for _, g := range groups {
			c.rc.Del(g.CustomerID)
		}
		return nil, nil, err
	}
	if durable == nil {
		durable = noWait
	}

	set := groups[:0]
	for _, g := range groups {
		if slices.ContainsFunc(g.Muts, func(i int) bool { return changed[i] }) {
			set = append(set, g)
		}
	}
	if len(set) == 0 {
		return recs, durable, nil
	}
	packed := make([]featurestore.Packed, len(set))
	for i, g := range set {
		packed[i] = recs[g.Last()].Pack()
		c.rc.SetWithTTL(g.CustomerID, entry{rec: packed[i], epoch: epoch}, cost(packed[i]), c.ttl)
	}
	// An absent customer is inserted through ristretto's buffer: wait
	// until it is applied (or refused), so the next Load sees it.
	c.rc.Wait()
	// Inserts are made and waited for only under the stripe lock, so no
	// older insert of these customers can have been queued ahead of ours
	// and won admission over it. Ristretto's buffered semantics are subtle
	// enough that a lookup per write to make sure is worth it.
	for i, g := range set {
		p := packed[i]
		if e, ok := c.rc.Get(g.CustomerID); ok && unsafe.SliceData(e.rec) != unsafe.SliceData(p) {
			c.rc.SetWithTTL(g.CustomerID, entry{rec: p, epoch: epoch}, cost(p), c.ttl)
		}
	}
	return recs, durable, nil
}

// Invalidate drops the customer's cached record, so the next Load reads
// the backend: for a change made elsewhere (another node). A load in
// flight does not cache what it read.
func (c *Cache) Invalidate(id string) {
	stripe := c.locks.Stripe(id)
	c.locks.LockOne(stripe)
	c.gens[stripe].Add(1)
	c.rc.Del(id)
	c.locks.UnlockOne(stripe)
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

// Eraser is a Backend that can delete a customer: the embedded and Redis
// stores. Erase removes everything the backend keeps about the customer;
// the cache calls it holding the customer's lock (Backend.Locks).
type Eraser interface {
	Erase(ctx context.Context, id string) error
}

// ErrCannotDelete is returned by Delete when the backend is no Eraser.
var ErrCannotDelete = errors.New("cache: the backend cannot delete customers")

// Delete removes everything the backend keeps about the customer (its
// Erase) and drops the cached record, under the customer's lock, so no
// write can start from the cached copy in between and bring it back: the
// next Load reads the backend and finds no customer. A load in flight does
// not cache what it read. The cached record is dropped even when Erase
// fails, since it may have deleted some of it.
func (c *Cache) Delete(ctx context.Context, id string) error {
	e, ok := c.b.(Eraser)
	if !ok {
		return ErrCannotDelete
	}
	stripe := c.locks.Stripe(id)
	c.locks.LockOne(stripe)
	defer c.locks.UnlockOne(stripe)
	err := e.Erase(ctx, id)
	c.gens[stripe].Add(1)
	c.rc.Del(id)
	return err
}
