package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/nextbest/nextbest/featurestore"
)

// Options configures a Store.
type Options struct {
	// Dir is the directory holding the store, created if missing. Required.
	Dir string
	// NoSync acknowledges a Mutate before its write-ahead log entry is
	// on disk: faster, but pebble buffers the log in memory, so a crash,
	// of the process or of the machine, may lose the last acknowledged
	// writes. For tests and bulk loads. Default false: every write is
	// fsynced before Mutate returns.
	NoSync bool
	// CacheSize is the size in bytes of pebble's block cache. Default 64 MiB.
	CacheSize int64
	// Logger receives pebble's messages and background errors. Default: discard.
	Logger *slog.Logger
	// DedupeWindow is how long an applied event id keeps a retry of the
	// event from being applied again (featurestore.Dedupe). Default
	// featurestore.DefaultDedupeWindow (24h).
	DedupeWindow time.Duration
	// Now is the clock dedupe entries expire by. Default time.Now.
	Now func() time.Time
	// MinFreeBytes and MinFreePercent (of the volume's size) set the
	// free-space floor: while the volume holding Dir has less space
	// available than the floor, writes are refused with ErrDiskFull, so
	// pebble never meets a full disk (see disk.go), and accepted again once
	// there is more. The floor is the smaller of the two when both are set.
	// A negative MinFreeBytes turns the floor off. Default (both 0): the
	// smaller of DefaultMinFreeBytes (256 MiB) and DefaultMinFreePercent (5%).
	MinFreeBytes   int64
	MinFreePercent float64
	// Refused, when not nil, is called for every write refused because it
	// could not be made durable, with the cause: ErrDiskFull or
	// ErrWriteFailed (for metrics). Default nil.
	Refused func(cause error)
	// TimelineLength is how many entries of each customer's timeline
	// the store keeps (see timeline.go); negative keeps none. Default
	// featurestore.DefaultTimelineLength (200).
	TimelineLength int
}

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("embedded: store closed")

// customerPrefix starts the key of every customer record, so that other
// key spaces (learning statistics, ...) can live beside them under their
// own prefixes. The record encoding carries its own version byte.
const customerPrefix = "c/"

// pingKey is read by Ping; it is never written.
var pingKey = []byte("ping")

// Store is the embedded, persistent feature store.
type Store struct {
	db    *pebble.DB
	write *pebble.WriteOptions
	disk  *disk // admits writes: free-space floor, log health
	locks *featurestore.Locks
	// statsMu serialises AddStats, a read-modify-write of shared cells
	// (see stats.go).
	statsMu sync.Mutex
	window  time.Duration // of dedupe entries
	now     func() time.Time
	log     *slog.Logger
	swept   atomic.Uint64 // expired dedupe entries deleted
	// timelineLen is the length of the customers' timelines kept (0:
	// none); timelineSeq orders the entries of one time, started at
	// the clock's nanoseconds so it grows across restarts.
	timelineLen int
	timelineSeq atomic.Uint64
	// stopSweep stops the sweeper of expired dedupe entries, which
	// closes sweepDone on return.
	stopSweep func()
	sweepDone chan struct{}

	// mu guards closed: operations hold it for reading, so Close waits
	// for them and none runs on a closed pebble.DB (which panics).
	mu     sync.RWMutex
	closed bool
}

// Open opens the store in opts.Dir, creating it if needed, and replays
// its write-ahead log, so every write acknowledged before a crash is there.
func Open(opts Options) (*Store, error) {
	return open(opts, vfs.Default)
}

// open is Open on the file system fs (tests inject faults with it).
func open(opts Options, fs vfs.FS) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("embedded: Options.Dir is required")
	}
	if opts.CacheSize < 0 {
		return nil, fmt.Errorf("embedded: Options.CacheSize %d is negative", opts.CacheSize)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.DedupeWindow < 0 {
		return nil, fmt.Errorf("embedded: Options.DedupeWindow %v is negative", opts.DedupeWindow)
	}
	if opts.DedupeWindow == 0 {
		opts.DedupeWindow = featurestore.DefaultDedupeWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MinFreePercent < 0 || opts.MinFreePercent >= 100 {
		return nil, fmt.Errorf("embedded: Options.MinFreePercent %g is not in [0, 100)", opts.MinFreePercent)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	d := newDisk(fs, opts.Dir, opts)
	po := pebbleOptions(cache, opts.Logger)
	po.FS = guardFS{FS: fs, d: d}
	// A log write waiting for space is a slow write to pebble's disk
	// health checker, reported every 2 s: the wait's own log line says
	// why once.
	diskSlow := po.EventListener.DiskSlow
	po.EventListener.DiskSlow = func(info pebble.DiskSlowInfo) {
		if !d.stalling.Load() {
			diskSlow(info)
		}
	}
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", opts.Dir, err)
	}
	d.armed.Store(true)
	s := &Store{db: db, write: pebble.Sync, disk: d, locks: featurestore.NewLocks(), window: opts.DedupeWindow, now: opts.Now, log: opts.Logger}
	switch {
	case opts.TimelineLength == 0:
		s.timelineLen = featurestore.DefaultTimelineLength
	case opts.TimelineLength > 0:
		s.timelineLen = opts.TimelineLength
	}
	s.timelineSeq.Store(uint64(time.Now().UnixNano()))
	if opts.NoSync {
		s.write = pebble.NoSync
	}
	stop := make(chan struct{})
	s.stopSweep = sync.OnceFunc(func() { close(stop) })
	s.sweepDone = make(chan struct{})
	go s.sweeper(stop, s.sweepDone)
	return s, nil
}

// pebbleOptions tunes pebble for the store's load: many small writes,
// each the rewrite of one customer's record (tens to a few thousand bytes),
// and point reads of single records.
func pebbleOptions(cache *pebble.Cache, log *slog.Logger) *pebble.Options {
	o := &pebble.Options{
		Cache: cache,
		// Pinned rather than "newest", so upgrading pebble never changes
		// the on-disk format silently. This version writes WAL sync chunks,
		// which tell a torn tail after a crash from corruption.
		FormatMajorVersion: pebble.FormatTableFormatV6,
		// The default 4 MiB memtable fills in a fraction of a second under
		// a burst of events, producing many tiny L0 tables and compactions.
		// 64 MiB absorbs seconds of ingest, and a hot customer rewritten
		// many times in that span is flushed as one version. Memtables
		// start at 256 KiB and grow, so a small store stays small.
		MemTableSize: 64 << 20,
		// Queue up to 4 memtables (256 MiB) while one flushes before
		// stalling writes: a slow flush delays acknowledgements instead of
		// stopping them.
		MemTableStopWritesThreshold: 4,
		// Compact L0 from 4 sublevels (the default; bloom filters keep
		// point reads cheap until then) but stall writes only at 24,
		// twice the default, so bursts ride out a busy compactor.
		L0CompactionThreshold: 4,
		L0StopWritesThreshold: 24,
		// L0 holds a few 64 MiB flushes when it compacts; an Lbase of the
		// same order keeps L0→Lbase compactions from rewriting a small
		// Lbase over and over.
		LBaseMaxBytes: 256 << 20,
		// One compaction normally; more when pebble sees compaction debt,
		// but at most half the CPUs, which belong to decisions.
		CompactionConcurrencyRange: func() (int, int) {
			return 1, min(max(runtime.GOMAXPROCS(0)/2, 2), 4)
		},
		Logger: pebbleLogger{log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { log.Error("pebble background error", "err", err) },
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				log.Error("pebble data corruption", "path", info.Path, "err", info.Details)
			},
			DiskSlow: func(info pebble.DiskSlowInfo) { log.Warn("pebble disk slow", "info", info.String()) },
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.Warn("pebble write stall", "reason", info.Reason)
			},
			WriteStallEnd: func() { log.Info("pebble write stall ended") },
		},
	}
	// Every Load and every Mutate reads one key, and anonymous visitors
	// ask for keys that exist nowhere: a bloom filter per table lets
	// such a read skip every table that lacks the key.
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

// Load returns the customer's record, or featurestore.ErrNotFound, or for
// an alias a *featurestore.AliasError (which matches ErrNotFound).
func (s *Store) Load(ctx context.Context, customerID string) (*featurestore.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	r, err := s.read(recordKey(nil, customerID))
	if err != nil {
		return nil, fmt.Errorf("customer %q: %w", customerID, err)
	}
	if r == nil {
		// Only an id without a record may be an alias (alias.go).
		target, ok, err := s.aliasOf(customerID)
		if err != nil {
			return nil, fmt.Errorf("customer %q: %w", customerID, err)
		}
		if ok {
			return nil, featurestore.NewAliasError(customerID, target)
		}
		return nil, featurestore.ErrNotFound
	}
	return r, nil
}

// read decodes the record under key; nil if there is none.
func (s *Store) read(key []byte) (*featurestore.Record, error) {
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	// UnmarshalRecord copies what it keeps; b is valid only until Close.
	return featurestore.UnmarshalRecord(b)
}

// group is one customer's share of a write.
type group struct {
	id      string
	muts    []int // indexes of the customer's mutations, in order
	rec     *featurestore.Record
	changed bool
	claims  []claim // event ids to store with the record (dedupe.go)
	// timeline holds the entries the mutations add to the customer's
	// timeline (timeline.go).
	timeline []featurestore.TimelineEntry
}

// Mutate applies muts, atomically per customer and in order for one
// customer, commits every changed record in one batch and returns, once it
// is durable, each mutation's customer record as it stands after the whole
// call. Records left unchanged are not rewritten (a mutation that changes
// nothing for an unknown customer does not create them). If ctx ends
// before the commit starts, nothing is written. It holds the customers'
// locks (Locks) across Apply and waits for durability after releasing
// them.
func (s *Store) Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	// Before any lock: a refused write waits for nothing. (Apply admits
	// again, under the locks; a write is refused at most once.)
	if len(muts) > 0 {
		if err := s.admit(ctx); err != nil {
			return nil, err
		}
	}
	groups := featurestore.GroupByCustomer(muts)
	stripes := s.locks.Stripes(groups)
	s.locks.Lock(stripes)
	recs, durable, err := s.Apply(ctx, muts, groups, nil)
	s.locks.Unlock(stripes)
	if err != nil {
		return nil, err
	}
	if err := durable(); err != nil {
		return nil, err
	}
	return recs, nil
}

// admit returns why a write must not start, or nil.
func (s *Store) admit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.disk.admit()
}

// Locks returns the store's customer locks: Mutate and the sweeper of
// expired event ids take them, and a caller of Apply must hold them.
func (s *Store) Locks() *featurestore.Locks { return s.locks }

// noWait is the durable func of a call that wrote nothing.
func noWait() error { return nil }

// Apply is the body of Mutate, for a caller that holds the locks (Locks)
// of every customer of groups, which are muts grouped by customer
// (featurestore.GroupByCustomer): it takes no customer lock itself. It
// applies muts and commits the changed records to the write-ahead log and
// memtable, and returns a func that returns once the commit is durable
// (one WAL fsync, shared by every concurrent caller), or with an error
// wrapping ErrDiskFull as soon as the log waits for space, or ctx's error
// when ctx ends first. Call it after releasing the locks (early lock
// release): holding none across the fsync lets calls touching the same
// customers (large event batches overlap) proceed in parallel, which is
// what makes group commit pay. A write that cannot be made durable is
// refused before anything is done, with an error wrapping ErrDiskFull or
// ErrWriteFailed (see disk.go). The records are visible to readers before
// they are durable, so a crash may forget a change a reader saw, but never
// one whose durable func returned: callers acknowledge a write only after
// it.
//
// bases, when not nil, has one entry per group: the customer's current
// record if the caller has it (an empty record for a customer known to be
// absent and not an alias), so it need not be read and decoded from
// pebble, or nil. A customer read without a record may be an alias
// (featurestore.Merge): then Apply writes nothing and returns a
// *featurestore.AliasError naming every alias of the call. The
// cache tier passes its copies, which are current because the cache is
// the store's only writer and updates them under the same locks. The
// records supplied are the caller's own copies: Apply changes them and
// returns them. Changed records are packed (Record.Pack) to be written,
// so a caller that packs the records returned gets that encoding.
func (s *Store) Apply(ctx context.Context, muts []featurestore.Mutation, groups []featurestore.Group, bases []*featurestore.Record) ([]*featurestore.Record, func() error, error) {
	if len(muts) == 0 {
		return nil, noWait, nil
	}
	// The wait for the locks may have outlived the caller.
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	if err := s.disk.admit(); err != nil {
		return nil, nil, err
	}

	gs := make([]group, len(groups))
	var key []byte
	var aliased *featurestore.AliasError
	for i := range groups {
		g := &gs[i]
		g.id, g.muts = groups[i].CustomerID, groups[i].Muts
		if bases != nil && bases[i] != nil {
			g.rec = bases[i]
			continue
		}
		key = recordKey(key[:0], g.id)
		r, err := s.read(key)
		if err != nil {
			return nil, nil, fmt.Errorf("customer %q: %w", g.id, err)
		}
		if r == nil {
			// Only an id without a record may be an alias (alias.go).
			target, ok, err := s.aliasOf(g.id)
			if err != nil {
				return nil, nil, fmt.Errorf("customer %q: %w", g.id, err)
			}
			if ok {
				if aliased == nil {
					aliased = featurestore.NewAliasError(g.id, target)
				}
				aliased.Aliases[g.id] = target
			}
			r = &featurestore.Record{}
		}
		g.rec = r
	}
	if aliased != nil {
		return nil, nil, aliased // nothing written: the caller resolves them
	}
	now := s.now()
	exp := now.Add(s.window).UnixNano()
	var seen dedupeReader
	defer seen.close()
	for i := range gs {
		g := &gs[i]
		// A record of codec version 2 or earlier holds its event ids:
		// they move to the dedupe key space in this commit.
		if len(g.rec.Seen) > 0 {
			for _, c := range g.rec.TakeLegacySeen(s.window, now) {
				g.claims = append(g.claims, claim{c.ID, c.Expires.UnixNano()})
			}
			g.changed = true
		}
		for _, j := range g.muts {
			m := muts[j]
			if m.Dedupe != nil {
				if err := s.markSeen(&seen, g, m.Dedupe, now.UnixNano()); err != nil {
					return nil, nil, err
				}
			}
			g.changed = m.Apply(g.rec) || g.changed
			if m.Dedupe != nil {
				claimUnseen(g, m.Dedupe, exp)
			}
			if m.Timeline != nil && s.timelineLen > 0 {
				if entries := m.Timeline(); g.timeline == nil {
					g.timeline = entries
				} else {
					g.timeline = append(g.timeline, entries...)
				}
			}
		}
	}
	seen.close() // before the commit: it pins the memtables it reads

	wrote, err := s.commit(gs)
	if err != nil {
		return nil, nil, err
	}

	out := make([]*featurestore.Record, len(muts))
	for i := range gs {
		for _, j := range gs[i].muts {
			out[j] = gs[i].rec
		}
	}
	if !wrote || s.write == pebble.NoSync {
		return out, noWait, nil
	}
	return out, func() error { return s.syncWAL(ctx) }, nil
}

// syncWAL returns once everything written to the write-ahead log so far is
// on disk: a synced empty log record, which pebble's commit pipeline joins
// with the other callers' into one fsync. It gives up with ErrDiskFull as
// soon as the log waits for space, and when ctx ends: the sync then goes
// on without its caller, who must not acknowledge the write.
func (s *Store) syncWAL(ctx context.Context) error {
	if err := s.disk.admit(); err != nil {
		return err
	}
	stalled := s.disk.stalled()
	done := make(chan error, 1)
	go func() {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.closed {
			done <- ErrClosed
			return
		}
		done <- s.disk.guarded(func() error { return s.db.LogData(nil, pebble.Sync) })
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		return nil
	case <-stalled:
		err := s.disk.state()
		if err == nil { // the wait for space already ended
			err = fmt.Errorf("%w: the write-ahead log waited for space", ErrDiskFull)
		}
		s.disk.refuse(err)
		return fmt.Errorf("sync: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("sync: %w", ctx.Err())
	}
}

// commit writes the changed records of groups, and the event ids they
// claimed, in one batch, to the WAL and memtable without waiting for the
// fsync (see Apply); the caller holds the customers' locks until
// it returns, so the next mutation of these customers reads what was
// written. It reports whether it wrote.
func (s *Store) commit(groups []group) (bool, error) {
	if !slices.ContainsFunc(groups, func(g group) bool { return g.changed || len(g.claims) > 0 || len(g.timeline) > 0 }) {
		return false, nil
	}
	// Again, now that the batch is ready: a log write may have failed
	// since the admission, and pebble must get no commit after that
	// (see disk.go).
	if err := s.disk.admit(); err != nil {
		return false, err
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	var key, body []byte // reused by every key and timeline entry of the batch: Set copies them
	var err error
	for i := range groups {
		g := &groups[i]
		if key, err = putClaims(batch, g, key); err != nil {
			return false, err
		}
		if key, body, err = s.putTimeline(batch, g, key, body); err != nil {
			return false, err
		}
		if !g.changed {
			continue
		}
		key = recordKey(key[:0], g.id)
		if err := batch.Set(key, g.rec.Pack(), nil); err != nil { // Set copies key and value
			return false, fmt.Errorf("customer %q: %w", g.id, err)
		}
	}
	if err := s.disk.guarded(func() error { return batch.Commit(pebble.NoSync) }); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	s.disk.wrote(len(batch.Repr()))
	return true, nil
}

// recordKey appends the key of a customer's record to dst.
func recordKey(dst []byte, id string) []byte {
	dst = append(dst, customerPrefix...)
	return append(dst, id...)
}

// Writable returns nil if the store accepts writes now, or why it does
// not: an error wrapping ErrDiskFull (the store accepts writes again by
// itself once the volume has space above the floor) or ErrWriteFailed (a
// restart is needed). For readiness checks; it touches nothing on disk but
// may ask the volume for its free space (at most every 100 ms).
func (s *Store) Writable() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.disk.state()
}

// DiskSpace returns the bytes available on the store's volume (-1 if the
// volume does not say) and the free-space floor below which writes are
// refused (0: none), as of at most 100 ms ago.
func (s *Store) DiskSpace() (free, floor int64) {
	return s.disk.space()
}

// Ping reports whether the store is open and answers a read.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	_, closer, err := s.db.Get(pingKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	return closer.Close()
}

// Close waits for operations in progress, flushes nothing it has not
// already made durable, and closes the store. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.disk.close() // a log write waiting for space would hold up pebble's Close
	s.stopSweep()
	<-s.sweepDone
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("embedded: close: %w", err)
	}
	return nil
}

// pebbleLogger sends pebble's messages to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by pebble for a state it cannot continue from, and it
// must not return; panicking leaves the decision to exit to the program.
// On a committing goroutine the store turns the panic into ErrWriteFailed
// (disk.guarded); elsewhere it ends the process.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble")
	if !strings.HasPrefix(msg, "pebble") {
		msg = "pebble: " + msg
	}
	panic(fatalPanic(msg))
}
