package outcomes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// Options configures a Recorder. A zero or negative field takes its
// default.
type Options struct {
	// FlushEvery is how often pending deltas are added to the store.
	// This node's outcomes appear in Learned at once, not at the flush.
	// Default 100ms.
	FlushEvery time.Duration
	// MaxPending flushes early when this many cells are pending; it is
	// also the most cells one AddStats call carries (a larger backlog is
	// flushed in several calls). At most MaxCells. Default 1000.
	MaxPending int
	// RefreshEvery is how often the learning snapshot is reloaded from
	// the store, which is how soon other nodes' outcomes appear in
	// Learned. Default 1s.
	RefreshEvery time.Duration
	// Timeout bounds each call to the store. Default 2s.
	Timeout time.Duration
	// Logger receives flush and reload failures and drops, each at most
	// once a minute. Default slog.Default().
	Logger *slog.Logger
}

// MaxCells bounds the cells a Recorder holds that the store has not
// confirmed (pending and in flight); Add drops deltas of new cells beyond
// it.
const MaxCells = 100_000

// logEvery is the most often one kind of trouble is logged.
const logEvery = time.Minute

type cells = map[featurestore.StatKey]featurestore.Counts

// Recorder aggregates outcome statistics in memory and flushes them to a
// store in batches. Create it with New and run it as an actor: Run
// flushes and reloads until its context ends, then flushes what is left.
//
// Statistics, never profile events, may be lost: the unflushed batch (at
// most FlushEvery of outcomes) on a crash, and deltas of new cells while
// MaxCells are pending, which happens only during a long store outage.
// A failed flush is retried on the next tick; against a backend whose
// AddStats is not atomic (Redis) a retried batch may count some cells
// twice.
type Recorder struct {
	store featurestore.StatsStore
	opts  Options
	log   *slog.Logger

	learned       atomic.Pointer[featurestore.LearnTable]
	dropped       atomic.Int64
	flushFailures atomic.Int64

	kick    chan struct{} // buffered: a flush is due before the tick
	running atomic.Bool   // Run has been called

	// io serialises flushes and reloads, so a reload never reads the
	// store while a batch of this node is in flight: base then holds
	// either all or none of each batch, never an unknown part.
	io sync.Mutex

	mu       sync.Mutex
	pending  cells // added since the last flush started
	inflight cells // being added to the store; nil between flushes
	// base is the learning cells as last loaded from the store, plus the
	// batches this node flushed since. The Recorder owns the map.
	base cells

	// reachStore is store when it keeps reach sketches (reach.go); reach
	// holds the sketches added since the last flush, spare the flushed
	// ones to reuse, both under reachMu.
	reachStore featurestore.ReachStore
	reachMu    sync.Mutex
	reach      reachCells
	spare      []*featurestore.Sketch
}

// New returns a Recorder of store. It starts nothing: until Run (or
// Refresh) loads the learning cells, Learned holds only this node's
// deltas, and until Run (or Flush) they stay pending.
func New(store featurestore.StatsStore, opts Options) *Recorder {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 100 * time.Millisecond
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1000
	}
	opts.MaxPending = min(opts.MaxPending, MaxCells)
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Recorder{
		store:   store,
		opts:    opts,
		log:     opts.Logger,
		kick:    make(chan struct{}, 1),
		pending: cells{},
		base:    cells{},
		reach:   reachCells{},
	}
	r.reachStore, _ = store.(featurestore.ReachStore)
	r.learned.Store(featurestore.NewLearnTable(nil))
	return r
}

// maxEagerCells bounds the snapshots Add rebuilds for a new learning cell:
// a rebuild copies every cell, so beyond this many a new cell (rare once
// a catalog has run: cells are all-time) waits for the next flush, as
// every delta used to.
const maxEagerCells = 1024

// Add merges deltas into the pending cells and into the learning
// snapshot, so Learned counts them at once. It never blocks on I/O. It
// drops, and counts in Dropped, a delta that fails
// featurestore.StatDelta.Check (the store would refuse the whole batch)
// and a delta of a new cell (neither pending nor in flight) while MaxCells
// cells are unconfirmed.
func (r *Recorder) Add(deltas ...featurestore.StatDelta) {
	var dropped int64
	rebuild := false
	r.mu.Lock()
	for _, d := range deltas {
		if d.Counts.IsZero() {
			continue
		}
		if d.Check() != nil {
			dropped++
			continue
		}
		c, ok := r.pending[d.Key]
		if !ok && len(r.pending)+len(r.inflight) >= MaxCells {
			// A cell being flushed is not a new one: it still takes
			// deltas, as a pending cell does.
			if _, flying := r.inflight[d.Key]; !flying {
				dropped++
				continue
			}
		}
		c.Add(d.Counts)
		r.pending[d.Key] = c
		// This node's outcome reaches its next decision now, not at the
		// next flush: the snapshot counts it, and a rebuild (which reads
		// pending) takes a fresh table, so it is never counted twice.
		if !rebuild && !r.learned.Load().Add(d) {
			rebuild = true
		}
	}
	if rebuild && r.learned.Load().Len() <= maxEagerCells {
		r.rebuild() // a new cell: the table holds only the cells it was built with
	}
	full := len(r.pending) >= r.opts.MaxPending
	r.mu.Unlock()
	if dropped > 0 {
		r.dropped.Add(dropped)
	}
	if full {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// Learned returns the snapshot of the learning cells: the store's as last
// loaded, plus this node's deltas since, each counted once. This node's
// deltas appear at once (Add counts them in the snapshot; a delta of a
// cell the snapshot lacks rebuilds it while it holds at most
// maxEagerCells cells, else appears at the next flush), other nodes' at
// the next reload (within RefreshEvery). It does not lock.
func (r *Recorder) Learned() *featurestore.LearnTable { return r.learned.Load() }

// Pending is the number of cells the store has not confirmed: waiting for
// the next flush or in flight (a cell in both counts twice, as it does
// against MaxCells).
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) + len(r.inflight)
}

// Dropped is the number of deltas Add has dropped so far, and of
// customers AddReach has (beyond MaxReachCells).
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// FlushFailures is the number of flushes that failed so far (their cells
// went back to pending, to be retried).
func (r *Recorder) FlushFailures() int64 { return r.flushFailures.Load() }

// rebuild publishes a new snapshot; the caller holds mu.
func (r *Recorder) rebuild() {
	r.learned.Store(featurestore.NewLearnTable(r.base, r.inflight, r.pending))
}

// Flush adds the pending cells to the store now, in calls of at most
// MaxPending cells, each bounded by Timeout, and merges the pending
// reach sketches into the store's (reach.go). Cells the store refused go
// back to pending, to be retried.
func (r *Recorder) Flush(ctx context.Context) error {
	r.io.Lock()
	defer r.io.Unlock()
	return errors.Join(r.flushStats(ctx), r.flushReach(ctx))
}

// flushStats is Flush's part for the counts; the caller holds io.
func (r *Recorder) flushStats(ctx context.Context) error {

	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := r.pending
	r.pending, r.inflight = cells{}, batch
	r.rebuild()
	r.mu.Unlock()

	deltas := make([]featurestore.StatDelta, 0, len(batch))
	for k, c := range batch {
		deltas = append(deltas, featurestore.StatDelta{Key: k, Counts: c})
	}
	stored := 0
	var err error
	for stored < len(deltas) && err == nil {
		n := min(len(deltas)-stored, r.opts.MaxPending)
		cctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		err = r.store.AddStats(cctx, deltas[stored:stored+n])
		cancel()
		if err == nil {
			stored += n
		}
	}

	r.mu.Lock()
	r.inflight = nil
	for _, d := range deltas[:stored] {
		if d.Key.Hour == 0 {
			c := r.base[d.Key]
			c.Add(d.Counts)
			r.base[d.Key] = c
		}
	}
	for _, d := range deltas[stored:] {
		c := r.pending[d.Key]
		c.Add(d.Counts)
		r.pending[d.Key] = c
	}
	r.rebuild()
	r.mu.Unlock()
	if err != nil {
		r.flushFailures.Add(1)
		return fmt.Errorf("outcomes: flush of %d cells (%d stored): %w", len(deltas), stored, err)
	}
	return nil
}

// Refresh reloads the learning cells from the store now, bounded by
// Timeout, and publishes a new snapshot.
func (r *Recorder) Refresh(ctx context.Context) error {
	r.io.Lock()
	defer r.io.Unlock()
	cctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	loaded, err := r.store.LearnStats(cctx)
	if err != nil {
		return fmt.Errorf("outcomes: reload: %w", err)
	}
	if loaded == nil {
		loaded = cells{}
	}
	r.mu.Lock()
	r.base = loaded
	r.rebuild()
	r.mu.Unlock()
	return nil
}

// Run loads the learning cells, then flushes every FlushEvery (sooner
// when MaxPending cells are pending) and reloads every RefreshEvery until
// ctx ends; then it flushes what is pending, bounded by Timeout, and
// returns that flush's error. It is the Recorder's one goroutine: a
// second Run returns an error at once. Deltas added after Run returned
// stay pending until a Flush: a server stops its traffic first, or
// flushes once more after.
func (r *Recorder) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("outcomes: Run called twice")
	}
	flushes := time.NewTicker(r.opts.FlushEvery)
	defer flushes.Stop()
	reloads := time.NewTicker(r.opts.RefreshEvery)
	defer reloads.Stop()
	var flushLog, reloadLog trouble
	var dropLog time.Time
	var dropLogged int64
	reloadLog.note(ctx, r.log, "outcomes: reload failed", r.Refresh(ctx))
	for {
		select {
		case <-ctx.Done():
			// The last batch, on a context of its own: ctx has ended.
			return r.Flush(context.WithoutCancel(ctx))
		case <-flushes.C:
			flushLog.note(ctx, r.log, "outcomes: flush failed", r.Flush(ctx))
		case <-r.kick:
			flushLog.note(ctx, r.log, "outcomes: flush failed", r.Flush(ctx))
		case <-reloads.C:
			reloadLog.note(ctx, r.log, "outcomes: reload failed", r.Refresh(ctx))
		}
		if n := r.dropped.Load(); n > dropLogged && time.Since(dropLog) >= logEvery {
			r.log.Warn("outcomes: statistics dropped", "since_last_log", n-dropLogged, "total", n, "max_cells", MaxCells)
			dropLog, dropLogged = time.Now(), n
		}
	}
}

// trouble logs a recurring failure at most once per logEvery, and its end.
type trouble struct {
	last   time.Time // of the last message
	failed int       // failures since the last message
}

// note records the outcome of one store call; one cut short because ctx
// ended (Run is stopping) is no trouble and is not noted.
func (t *trouble) note(ctx context.Context, log *slog.Logger, msg string, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	if err == nil {
		if !t.last.IsZero() {
			log.Info(msg+": recovered", "failures_since_last_log", t.failed)
		}
		*t = trouble{}
		return
	}
	t.failed++
	if time.Since(t.last) >= logEvery {
		log.Error(msg, "err", err, "failures", t.failed)
		t.last, t.failed = time.Now(), 0
	}
}
