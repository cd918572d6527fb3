package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
)

// Options configures a Store.
type Options struct {
	// Client reaches Redis: a *redis.Client, *redis.ClusterClient or a
	// failover client. Required. The Store does not close it.
	Client redis.UniversalClient
	// Prefix starts every key. Default "nb:".
	Prefix string
	// MaxAttempts bounds the compare-and-set attempts of one customer's
	// mutation under contention. Default 64.
	MaxAttempts int
	// NodeID names this node in invalidation messages, so a node can skip
	// its own. Default: random.
	NodeID string
	// DedupeWindow is how long an applied event id keeps a retry of the
	// event from being applied again (featurestore.Dedupe). Default
	// featurestore.DefaultDedupeWindow (24h).
	DedupeWindow time.Duration
	// Now is the clock dedupe entries are judged expired by (every node
	// by its own; Redis also drops an entry once the window has passed by
	// its clock). Default time.Now.
	Now func() time.Time
	// TimelineLength is how many entries of each customer's timeline
	// the store keeps (see timeline.go); negative keeps none. Default
	// featurestore.DefaultTimelineLength (200).
	TimelineLength int
}

// Store is the Redis feature store.
type Store struct {
	c        redis.UniversalClient
	prefix   string
	attempts int
	node     string
	channel  string
	window   time.Duration
	now      func() time.Time
	// Writes of one customer on this node take turns (Mutate, or the
	// cache tier, hold locks), so compare-and-set conflicts come only
	// from other nodes: contention is bounded by the number of nodes, not
	// by concurrent requests.
	locks *featurestore.Locks
	// timelineLen is the length of the customers' timelines kept (0:
	// none); timelineSeq orders the entries of one time written by this
	// node (timeline.go).
	timelineLen int
	timelineSeq atomic.Uint64
}

// ErrConflict is returned when a customer's record kept changing under a
// mutation for MaxAttempts attempts.
var ErrConflict = errors.New("redisstore: too much contention on one customer")

// New returns a Store. It does not contact Redis; use Ping.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("redisstore: Options.Client is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "nb:"
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 64
	}
	if opts.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.NodeID = hex.EncodeToString(b[:])
	}
	if strings.ContainsRune(opts.NodeID, '|') {
		return nil, errors.New("redisstore: NodeID must not contain '|'")
	}
	if opts.DedupeWindow < 0 {
		return nil, fmt.Errorf("redisstore: Options.DedupeWindow %v is negative", opts.DedupeWindow)
	}
	if opts.DedupeWindow == 0 {
		opts.DedupeWindow = featurestore.DefaultDedupeWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{c: opts.Client, prefix: opts.Prefix, attempts: opts.MaxAttempts, node: opts.NodeID, channel: opts.Prefix + "invalidate",
		window: opts.DedupeWindow, now: opts.Now, locks: featurestore.NewLocks()}
	switch {
	case opts.TimelineLength == 0:
		s.timelineLen = featurestore.DefaultTimelineLength
	case opts.TimelineLength > 0:
		s.timelineLen = opts.TimelineLength
	}
	s.timelineSeq.Store(uint64(time.Now().UnixNano()))
	return s, nil
}

// NodeID returns the id this node publishes invalidations under.
func (s *Store) NodeID() string { return s.node }

// Channel returns the pub/sub channel invalidations are published on.
func (s *Store) Channel() string { return s.channel }

func (s *Store) key(id string) string { return s.prefix + "{" + id + "}" }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.c.Ping(ctx).Err() }

// Load returns the customer's record, or featurestore.ErrNotFound, or for
// an alias a *featurestore.AliasError (which matches ErrNotFound): the
// alias is a field of the same hash, read in the same command.
func (s *Store) Load(ctx context.Context, id string) (*featurestore.Record, error) {
	vals, err := s.c.HMGet(ctx, s.key(id), "r", "a").Result()
	if err != nil {
		return nil, err
	}
	if target, ok := vals[1].(string); ok {
		return nil, featurestore.NewAliasError(id, target)
	}
	b, ok := vals[0].(string)
	if !ok {
		return nil, featurestore.ErrNotFound
	}
	r, err := featurestore.UnmarshalRecord([]byte(b))
	if err != nil {
		return nil, fmt.Errorf("customer %q: %w", id, err)
	}
	return r, nil
}

// casScript writes a record if its version is still the one read, bumps
// the version and publishes the change, stores the event ids the
// mutation claimed and adds its timeline entries, all or nothing: it
// refuses (0) when the version moved or when an id to check has an entry
// that has not expired (another node applied that event since the read).
// KEYS[1] is the customer's hash, KEYS[2..n+1] the dedupe entries of the
// n ids claimed (dedupe.go), then the customer's timeline when there are
// entries to add (timeline.go); ARGV: expected version ("0" for a new
// customer), encoded record ("" to leave the record unchanged), channel,
// message, now (Unix ms), how many of the dedupe entries to check, n, the
// timeline's length, then per dedupe entry its expiry (Unix ms) and its
// time to live (ms), then per timeline entry its score and member. The
// check and the SET ... PX are one atomic step, so an id is claimed by
// one writer only: SET NX PX, except that an entry past its expiry by the
// nodes' clock is taken over too.
var casScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
local now = tonumber(ARGV[5])
local n = tonumber(ARGV[7])
for i = 2, tonumber(ARGV[6]) + 1 do
  local e = redis.call('GET', KEYS[i])
  if e and tonumber(e) > now then return 0 end
end
for i = 2, n + 1 do
  redis.call('SET', KEYS[i], ARGV[2*i+5], 'PX', ARGV[2*i+6])
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 'r', ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
local t = 2*n + 9
if #ARGV >= t then
  for i = t, #ARGV, 2 do
    redis.call('ZADD', KEYS[n+2], ARGV[i], ARGV[i+1])
  end
  redis.call('ZREMRANGEBYRANK', KEYS[n+2], 0, -(tonumber(ARGV[8]) + 1))
end
return 1
`)

// pending is one customer's share of a Mutate call.
type pending struct {
	id      string
	muts    []int // indexes into the call's mutations, in order
	version string
	rec     *featurestore.Record
	enc     []byte // empty: the record is unchanged
	done    bool
	alias   string // the customer this id was merged into, if it is an alias
	dedupe         // the event ids of the mutations (dedupe.go)
	// timeline holds the entries the run adds to the customer's
	// timeline (timeline.go).
	timeline []featurestore.TimelineEntry
}

// Mutate applies muts, atomically per customer, and returns once Redis
// confirmed every changed record. Customers are read in one pipeline and
// written in another, whatever their number; a customer whose record
// changed meanwhile is re-read and re-applied. It holds the customers'
// locks (Locks) across Apply.
func (s *Store) Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	groups := featurestore.GroupByCustomer(muts)
	stripes := s.locks.Stripes(groups)
	s.locks.Lock(stripes)
	defer s.locks.Unlock(stripes)
	recs, _, err := s.Apply(ctx, muts, groups, nil)
	return recs, err
}

// Locks returns the node's customer locks, which Mutate takes and a
// caller of Apply holds. Correctness does not need them (the
// compare-and-set does); they keep this node's writers of a customer from
// conflicting with each other.
func (s *Store) Locks() *featurestore.Locks { return s.locks }

func noWait() error { return nil }

// Apply is the body of Mutate, for a caller that holds the locks (Locks)
// of the customers of groups, which are muts grouped by customer
// (featurestore.GroupByCustomer). bases is ignored: other nodes write
// too, so the record is always read from Redis. A write is durable once
// Redis confirmed it, so the durable func returned is a no-op. A call
// with customers that are aliases (alias.go) writes nothing and returns
// a *featurestore.AliasError naming them; a customer merged away while
// the call retried a conflict (after it wrote others) fails the call
// with ErrConflict, to be retried.
func (s *Store) Apply(ctx context.Context, muts []featurestore.Mutation, groups []featurestore.Group, _ []*featurestore.Record) ([]*featurestore.Record, func() error, error) {
	order := make([]*pending, len(groups))
	for i, g := range groups {
		p := &pending{id: g.CustomerID, muts: g.Muts}
		for _, j := range g.Muts {
			p.addIDs(muts[j].Dedupe)
		}
		order[i] = p
	}
	now := s.now()
	// todo is a slice of its own, filtered after every attempt: order is
	// read at the end to hand each mutation its customer's record, and
	// filtering in place over it would drop some customers from it (their
	// mutations then answered with nil, which the cache tier takes for
	// "no such customer") and list others twice.
	todo := slices.Clone(order)
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == s.attempts {
			return nil, nil, fmt.Errorf("%w (%d customers, e.g. %q)", ErrConflict, len(todo), todo[0].id)
		}
		if attempt > 0 {
			// Another node won the race: back off a little, with jitter,
			// so the nodes do not collide again in lockstep.
			d := time.Duration(mrand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(d):
			}
		}
		if err := s.read(ctx, todo); err != nil {
			return nil, nil, err
		}
		if err := aliased(todo, len(todo) < len(order)); err != nil {
			return nil, nil, err
		}
		var writes []*pending
		for _, p := range todo {
			changed := p.startRun(p.rec, s.window, now)
			for _, i := range p.muts {
				changed = p.apply(muts[i], p.rec, s.window, now) || changed
			}
			p.timeline = p.timeline[:0]
			for _, i := range p.muts {
				if t := muts[i].Timeline; t != nil && s.timelineLen > 0 {
					p.timeline = append(p.timeline, t()...)
				}
			}
			if !changed && len(p.claims) == 0 && len(p.timeline) == 0 {
				p.done = true
				continue
			}
			p.enc = p.enc[:0] // empty: casScript leaves the record as it is
			if changed {
				p.enc = featurestore.AppendRecord(p.enc, p.rec)
			}
			writes = append(writes, p)
		}
		if err := s.write(ctx, writes); err != nil {
			return nil, nil, err
		}
		todo = slices.DeleteFunc(todo, func(p *pending) bool { return p.done })
	}
	out := make([]*featurestore.Record, len(muts))
	for _, p := range order {
		for _, i := range p.muts {
			out[i] = p.rec
		}
	}
	return out, noWait, nil
}

func (s *Store) read(ctx context.Context, ps []*pending) error {
	cmds := make([]*redis.SliceCmd, len(ps))
	ids := make([][]*redis.StringCmd, len(ps))
	_, err := s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, p := range ps {
			cmds[i] = pl.HMGet(ctx, s.key(p.id), "v", "r", "a")
			ids[i] = s.readIDs(ctx, pl, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: an id without entry
		return err
	}
	for i, p := range ps {
		if err := cmds[i].Err(); err != nil {
			return err
		}
		if err := p.seenIDs(ids[i]); err != nil {
			return fmt.Errorf("customer %q: %w", p.id, err)
		}
	}
	for i, p := range ps {
		vals := cmds[i].Val()
		p.version, p.rec, p.alias = "0", &featurestore.Record{}, ""
		if len(vals) == 3 && vals[0] != nil {
			v, _ := vals[0].(string)
			if _, err := strconv.ParseUint(v, 10, 64); err != nil {
				return fmt.Errorf("customer %q: bad version %q", p.id, v)
			}
			p.version = v
			// A hash may hold no record: an alias's (alias.go), or a
			// customer a merge of nothing created.
			if r, ok := vals[1].(string); ok {
				rec, err := featurestore.UnmarshalRecord([]byte(r))
				if err != nil {
					return fmt.Errorf("customer %q: %w", p.id, err)
				}
				p.rec = rec
			}
			p.alias, _ = vals[2].(string)
		}
	}
	return nil
}

func (s *Store) write(ctx context.Context, ps []*pending) error {
	if len(ps) == 0 {
		return nil
	}
	for try := 0; ; try++ {
		cmds := make([]*redis.Cmd, len(ps))
		_, err := s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, p := range ps {
				keys, args, err := s.casArgs(p)
				if err != nil {
					return err
				}
				cmds[i] = casScript.EvalSha(ctx, pl, keys, args...)
			}
			return nil
		})
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") && try == 0 {
			// Redis lost its script cache (a restart or a failover): load
			// it everywhere and try once more.
			if lerr := s.loadScript(ctx); lerr != nil {
				return lerr
			}
			continue
		}
		if err != nil {
			return err
		}
		for i, p := range ps {
			if n, _ := cmds[i].Int(); n == 1 {
				p.done = true
			}
		}
		return nil
	}
}

func (s *Store) loadScript(ctx context.Context) error {
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return cc.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
			return casScript.Load(ctx, shard).Err()
		})
	}
	return casScript.Load(ctx, s.c).Err()
}

// Close releases nothing: the client belongs to the caller.
func (s *Store) Close() error { return nil }
