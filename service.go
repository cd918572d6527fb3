package nextbest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// RecordStore is what the service needs of a feature store: read one
// customer's record, and apply mutations atomically per customer and
// durably before returning. Load returns featurestore.ErrNotFound for a
// customer it has no record of. Records returned are shared and read-only.
type RecordStore interface {
	Load(ctx context.Context, id string) (*featurestore.Record, error)
	Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error)
}

// Cache is the in-memory tier of a RecordStore (featurestore/cache).
// Cached answers from memory without I/O or allocation, with the
// customer's record packed (read through a featurestore.View): ok is
// false on a miss, and a hit may be a nil record (a customer known to be
// absent); it must not keep id. A decision asks it first and creates a store deadline (a
// context, a timer) only on a miss. MutateVisible is Mutate that returns
// once the records are visible to the next read, with the wait for their
// durability apart: what the service records on its own account, such as
// the impressions of a decision_is_impression channel, need not hold a
// decision up for an fsync.
type Cache interface {
	Cached(id string) (rec featurestore.Packed, ok bool)
	MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error)
}

// StatsRecorder aggregates outcome statistics in memory and shares them
// through the store (featurestore/outcomes.Recorder is the one nextbest
// serve uses). Add must not block on I/O: it is called on the decide path.
type StatsRecorder interface {
	Add(deltas ...featurestore.StatDelta)
	Learned() *featurestore.LearnTable
}

// ReachRecorder counts the distinct customers decided for, per channel
// and hour and per experiment variant on a channel, as sketches
// (featurestore/outcomes.Recorder does, when its store keeps them). When
// Options.Stats implements it, each decision for a known customer adds
// the customer's featurestore.HashCustomer to its cells. AddReach must
// not block on I/O nor allocate once a cell exists: it is called on the
// decide path.
type ReachRecorder interface {
	AddReach(k featurestore.ReachKey, customer uint64)
}

// ReachReader reads the reach sketches of a period
// (featurestore.ReachStore): when Options.StatsReader implements it, a
// Report has each channel's reach.
type ReachReader interface {
	Reach(ctx context.Context, from, to int64) (map[featurestore.ReachKey]*featurestore.Sketch, error)
}

// Observer receives what the service measures, for the caller's metrics
// and logs (the service keeps none itself). A nil func is skipped.
type Observer struct {
	// StoreRead receives the duration of each store read behind a
	// decision (cache misses only).
	StoreRead func(d time.Duration)
	// StoreWrite receives the duration of each store write.
	StoreWrite func(d time.Duration)
	// StoreError receives the error of each store call that failed.
	StoreError func(err error)
	// LogError receives the store errors the service answers despite
	// (returning no error), op naming the call ("load", "record
	// impressions"); the caller logs those it gets returned.
	LogError func(op string, err error)
	// IgnoredEvent receives the type of each event accepted that nothing
	// in the catalog in force reads (a misspelt type shows at once).
	IgnoredEvent func(eventType string)
}

// Options configures a Service.
type Options struct {
	// Catalog holds the compiled catalog in force, loaded once per
	// decision, so a reload may Store a new one at any time. Required,
	// and it must hold a catalog when New is called.
	Catalog *atomic.Pointer[rules.Catalog]
	// Store reads and writes customer records. When it has an in-memory
	// tier (a Cached method) decisions ask it first. Nil only for a
	// ReadOnly service: every customer then has the schema's defaults.
	Store RecordStore
	// Cache is Store's in-memory tier, when Store reads and writes
	// through one (the same *cache.Cache), passed explicitly rather than
	// discovered: decisions ask it first, and the impressions the
	// service records do not wait for an fsync. Default nil: every read
	// goes to Store, every write waits.
	Cache Cache
	// Engine makes the decisions. Default: a new decision.Engine.
	Engine *decision.Engine
	// Stats serves the learned statistics to decisions and counts
	// decisions and outcomes. Nil: no learning (every offer at its prior)
	// and no statistics. When it is also a ReachRecorder, it counts each
	// decision's customer for reach.
	Stats StatsRecorder
	// StatsReader reads the hourly statistics behind Report. Nil: Report
	// returns ErrNoStats. When it is also a ReachReader, reports have
	// reach.
	StatsReader StatsReader
	// Now is the clock of a request that names no time. Default: time.Now.
	Now func() time.Time
	// StoreTimeout is the deadline of the store read behind a decision;
	// past it the decision is answered from the schema's defaults and
	// marked degraded. Default: DefaultStoreTimeout (50ms).
	StoreTimeout time.Duration
	// MutateTimeout is the deadline of a store write. Default:
	// DefaultMutateTimeout (5s).
	MutateTimeout time.Duration
	// ReadOnly makes decisions change nothing: no impressions recorded on
	// decision_is_impression channels, no decision counted in Stats. For
	// previews of what a node would answer (nextbest decide). Default:
	// false.
	ReadOnly bool
	// Logger receives engine errors. Default: discard.
	Logger *slog.Logger
	// Observer receives store timings and errors. Default: none.
	Observer Observer
	// Customers lists the store's customers, for batches of decisions
	// over a segment (DecideBatch): the backend under Store, not its
	// cache. Default nil: a batch over a segment is refused (ErrNoScan).
	Customers CustomerScanner
	// Journal reads the customers' timelines and event ids, which the
	// store keeps beside their records (the store behind Store, e.g.
	// *embedded.Store). With it, the events and profile changes written
	// go onto the customers' timelines. Default nil: no timelines
	// (Timeline returns ErrNoTimeline), and an export without them.
	Journal Journal
	// TimelineLength is the length of the timelines the store keeps (its
	// own option): the largest limit a Timeline may ask for; negative
	// turns timelines off. Default featurestore.DefaultTimelineLength
	// (200).
	TimelineLength int
	// Eraser deletes customers (Forget): Store's, with its cache when it
	// has one (the same *cache.Cache). Default nil: Forget fails.
	Eraser Eraser

	// DecisionLog receives a sample of the decisions (declog.go):
	// *decisionlog.Log. Default nil: none logged, and LoggedDecision
	// fails.
	DecisionLog DecisionLog
	// DecisionLogSample is the share of decisions logged, 0 to 1, chosen
	// by decision id (decisionlog.Sampled). Default 0: none, and a
	// decision costs what it did without a log.
	DecisionLogSample float64
	// PropensitySamples is the number of re-draws that estimate the
	// propensities of a logged Thompson-sampling decision. Default:
	// DefaultPropensitySamples (32).
	PropensitySamples int

	// CatalogVersions compiles the catalog versions the node keeps, for
	// Replay (replay.go): *catalogs.Registry. Default nil: only the
	// decisions of the catalog in force replay.
	CatalogVersions CatalogVersions
}

// Option defaults.
const (
	DefaultStoreTimeout  = 50 * time.Millisecond
	DefaultMutateTimeout = 5 * time.Second
)

// Service is the one door to a decision. Make it with New.
type Service struct {
	catalog       *atomic.Pointer[rules.Catalog]
	store         RecordStore
	cache         Cache // store's in-memory tier, if it has one
	engine        *decision.Engine
	stats         StatsRecorder
	statsReader   StatsReader
	reach         ReachRecorder // stats, when it counts reach
	reachReader   ReachReader   // statsReader, when it reads reach
	now           func() time.Time
	storeTimeout  time.Duration
	mutateTimeout time.Duration
	readOnly      bool
	log           *slog.Logger
	obs           Observer
	customers     CustomerScanner // lists the store's customers; nil if it cannot
	journal       Journal
	timelineLen   int // 0: no timelines
	eraser        Eraser
	declog        DecisionLog
	logRate       float64 // the share of decisions logged
	propSamples   int
	versions      CatalogVersions // replay.go
}

// New validates opts, fills in defaults and returns a Service.
func New(opts Options) (*Service, error) {
	var errs []error
	if opts.Catalog == nil || opts.Catalog.Load() == nil {
		errs = append(errs, errors.New("catalog is required and must hold a catalog"))
	}
	if opts.Store == nil && !opts.ReadOnly {
		errs = append(errs, errors.New("store is required (unless read-only)"))
	}
	if opts.StoreTimeout < 0 {
		errs = append(errs, fmt.Errorf("StoreTimeout is %v, must not be negative", opts.StoreTimeout))
	}
	if opts.MutateTimeout < 0 {
		errs = append(errs, fmt.Errorf("MutateTimeout is %v, must not be negative", opts.MutateTimeout))
	}
	if opts.DecisionLogSample < 0 || opts.DecisionLogSample > 1 {
		errs = append(errs, fmt.Errorf("DecisionLogSample is %v, must be from 0 to 1", opts.DecisionLogSample))
	}
	if opts.PropensitySamples < 0 {
		errs = append(errs, fmt.Errorf("PropensitySamples is %d, must not be negative", opts.PropensitySamples))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("nextbest: %w", err)
	}
	s := &Service{
		catalog:       opts.Catalog,
		store:         opts.Store,
		engine:        opts.Engine,
		stats:         opts.Stats,
		statsReader:   opts.StatsReader,
		now:           opts.Now,
		storeTimeout:  opts.StoreTimeout,
		mutateTimeout: opts.MutateTimeout,
		readOnly:      opts.ReadOnly,
		log:           opts.Logger,
		obs:           opts.Observer,
	}
	s.cache = opts.Cache
	s.reach, _ = opts.Stats.(ReachRecorder)
	s.reachReader, _ = opts.StatsReader.(ReachReader)
	s.customers = opts.Customers
	s.journal, s.eraser = opts.Journal, opts.Eraser
	s.declog, s.logRate, s.propSamples = opts.DecisionLog, opts.DecisionLogSample, opts.PropensitySamples
	s.versions = opts.CatalogVersions
	if s.propSamples == 0 {
		s.propSamples = DefaultPropensitySamples
	}
	switch {
	case opts.TimelineLength == 0:
		s.timelineLen = featurestore.DefaultTimelineLength
	case opts.TimelineLength > 0:
		s.timelineLen = opts.TimelineLength
	}
	if s.engine == nil {
		s.engine = new(decision.Engine)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.storeTimeout == 0 {
		s.storeTimeout = DefaultStoreTimeout
	}
	if s.mutateTimeout == 0 {
		s.mutateTimeout = DefaultMutateTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Catalog returns the catalog in force: what a request decoded now is
// checked against (its channels, placements and schema).
func (s *Service) Catalog() *rules.Catalog { return s.catalog.Load() }

// Now returns the service's clock: the time of a request that names none.
func (s *Service) Now() time.Time { return s.now() }

func (s *Service) storeError(err error) {
	if s.obs.StoreError != nil {
		s.obs.StoreError(err)
	}
}

func (s *Service) logError(op string, err error) {
	if s.obs.LogError != nil {
		s.obs.LogError(op, err)
	}
}
