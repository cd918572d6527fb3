package httpapi

import (
	"github.com/VictoriaMetrics/metrics"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// RecordStore is what the API needs of a feature store: read one
// customer's record, and apply mutations atomically per customer and
// durably before returning. Load returns featurestore.ErrNotFound for a
// customer it has no record of. Records returned are shared and read-only.
type RecordStore interface {
	Load(ctx context.Context, id string) (*featurestore.Record, error)
	Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error)
}

// visibleMutator is implemented by a store that can apply mutations
// visibly at once and make them durable afterwards (the cache tier over
// the embedded store): what the server records on its own account, such
// as the impressions of a decision_is_impression channel, need not hold a
// decision up for an fsync.
type visibleMutator interface {
	MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error)
}

// cachedStore is implemented by a cache tier that can answer from memory
// without I/O. The decide handler then asks it first and creates a store
// deadline (a context, a timer) only on a miss. ok is false on a miss; a
// hit may be a cached nil record (a customer known to be absent).
type cachedStore interface {
	Cached(id string) (rec *featurestore.Record, ok bool)
}

// Options configures a Server.
type Options struct {
	// Catalog holds the compiled catalog in force. The server loads it once
	// per request, so a reload may Store a new one at any time. Required,
	// and it must hold a catalog when New is called.
	Catalog *atomic.Pointer[rules.Catalog]
	// Store reads and writes customer records. Required.
	Store RecordStore
	// Engine makes the decisions. Default: a new decision.Engine.
	Engine *decision.Engine
	// Logger receives store errors and recovered panics; hot paths log only
	// errors. Default: discard.
	Logger *slog.Logger
	// Now is the clock: decisions, event timestamps and windows are
	// computed at Now(). Default: time.Now.
	Now func() time.Time
	// Ready reports whether the server may take traffic, for GET /readyz.
	// It is called with a one-second deadline. Default: always ready.
	Ready func(ctx context.Context) error
	// MaxBodyBytes bounds a request body; larger ones get 413. Default: 1 MiB.
	MaxBodyBytes int
	// MaxEventsPerRequest bounds the events of one POST /v1/events; more
	// get 413. Default: 1000.
	MaxEventsPerRequest int
	// StoreTimeout is the deadline of the store read behind a decision;
	// past it the decision is answered from the schema's defaults and
	// marked degraded. Default: 50ms.
	StoreTimeout time.Duration
	// MutateTimeout is the deadline of a store write (events, profile
	// updates) and of a profile read; past it the request gets 503.
	// Default: 5s.
	MutateTimeout time.Duration
	// Stats aggregates outcome statistics and serves the learned ones to
	// decisions. Nil: no learning (every offer at its prior) and no
	// statistics.
	Stats StatsRecorder
	// StatsStore answers GET /v1/stats; nil disables that route.
	StatsStore featurestore.StatsStore
	// Keys are the API keys the server accepts. Nil turns access control
	// off: every route is open (nextbest serve --insecure-no-auth).
	Keys *Keyring
	// TokenSecret verifies the customer_token of requests made with a
	// public key: hex(HMAC-SHA256(TokenSecret, customer_id)).
	TokenSecret []byte
	// Admin serves the catalog administration routes under
	// /v1/admin/catalog; nil turns them off (404).
	Admin CatalogAdmin
	// AccessLogRate is the share of requests logged (method, route,
	// status, duration, key name; never bodies, customer data or keys),
	// 0 for none, 1 for all.
	AccessLogRate float64
	// Metrics receives the server's counters and is served, in the
	// Prometheus text format, at GET /metrics. Default: a new set.
	Metrics *metrics.Set
	// Admission bounds the requests in flight and their queueing time per
	// route class; a request past the bound is shed (a 503 with
	// Retry-After, or for decide a degraded decision). Default: on, with
	// the Default*InFlightPerCPU and Default*Queue limits.
	Admission Admission
}

// Option defaults.
const (
	DefaultMaxBodyBytes        = 1 << 20
	DefaultMaxEventsPerRequest = 1000
	DefaultStoreTimeout        = 50 * time.Millisecond
	DefaultMutateTimeout       = 5 * time.Second
)

// maxIDLen bounds customer and event ids, in bytes.
const maxIDLen = 256

// Server serves the nextbest HTTP API.
type Server struct {
	catalog       *atomic.Pointer[rules.Catalog]
	store         RecordStore
	cached        cachedStore // store's in-memory tier, if it has one
	engine        *decision.Engine
	log           *slog.Logger
	now           func() time.Time
	ready         func(ctx context.Context) error
	maxBody       int
	maxEvents     int
	storeTimeout  time.Duration
	mutateTimeout time.Duration

	storeErrs storeErrorLog

	stats      StatsRecorder
	statsStore featurestore.StatsStore

	keys        *Keyring
	tokenSecret []byte

	admin CatalogAdmin

	obs   *observer
	admit *admitter // nil: admission control off

	metrics        *metrics.Set
	decisions      *metrics.Counter // decisions answered
	degraded       *metrics.Counter // decisions answered from defaults: the store failed or timed out
	eventsAccepted *metrics.Counter // events acknowledged (durably applied)
	eventsRefused  *metrics.Counter // event requests refused because the store failed (503)
	unauthorized   *metrics.Counter // 401: no key or an unknown one
	forbidden      *metrics.Counter // 403: a key without the scope, or a public key from another origin
	rateLimited    *metrics.Counter // 429

	degradedOverload *metrics.Counter // decisions answered with the fallback because the server was overloaded
}

// New validates opts, fills in defaults and returns a Server.
func New(opts Options) (*Server, error) {
	var errs []error
	if opts.Catalog == nil || opts.Catalog.Load() == nil {
		errs = append(errs, errors.New("catalog is required and must hold a catalog"))
	}
	if opts.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if opts.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxBodyBytes is %d, must not be negative", opts.MaxBodyBytes))
	}
	if opts.MaxEventsPerRequest < 0 {
		errs = append(errs, fmt.Errorf("MaxEventsPerRequest is %d, must not be negative", opts.MaxEventsPerRequest))
	}
	if opts.StoreTimeout < 0 {
		errs = append(errs, fmt.Errorf("StoreTimeout is %v, must not be negative", opts.StoreTimeout))
	}
	if opts.MutateTimeout < 0 {
		errs = append(errs, fmt.Errorf("MutateTimeout is %v, must not be negative", opts.MutateTimeout))
	}
	if err := opts.Admission.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{
		catalog:       opts.Catalog,
		store:         opts.Store,
		engine:        opts.Engine,
		log:           opts.Logger,
		now:           opts.Now,
		ready:         opts.Ready,
		maxBody:       opts.MaxBodyBytes,
		maxEvents:     opts.MaxEventsPerRequest,
		storeTimeout:  opts.StoreTimeout,
		mutateTimeout: opts.MutateTimeout,
		stats:         opts.Stats,
		statsStore:    opts.StatsStore,
		keys:          opts.Keys,
		tokenSecret:   opts.TokenSecret,
		admin:         opts.Admin,
	}
	s.cached, _ = opts.Store.(cachedStore)
	s.metrics = opts.Metrics
	if s.metrics == nil {
		s.metrics = metrics.NewSet()
	}
	s.decisions = s.metrics.GetOrCreateCounter("nextbest_decisions_total")
	s.degraded = s.metrics.GetOrCreateCounter("nextbest_decisions_degraded_total")
	s.eventsAccepted = s.metrics.GetOrCreateCounter("nextbest_events_accepted_total")
	s.eventsRefused = s.metrics.GetOrCreateCounter("nextbest_event_requests_store_unavailable_total")
	s.unauthorized = s.metrics.GetOrCreateCounter("nextbest_requests_unauthorized_total")
	s.forbidden = s.metrics.GetOrCreateCounter("nextbest_requests_forbidden_total")
	s.rateLimited = s.metrics.GetOrCreateCounter("nextbest_requests_rate_limited_total")
	s.degradedOverload = s.metrics.GetOrCreateCounter(`nextbest_decisions_degraded_total{cause="overload"}`)
	s.admit = newAdmitter(opts.Admission, s.metrics)
	// # TYPE lines, so Prometheus knows histograms from counters. The
	// setting is the package's, for every set.
	metrics.ExposeMetadata(true)
	s.obs = newObserver(s.metrics, opts.AccessLogRate)
	if s.engine == nil {
		s.engine = new(decision.Engine)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxEvents == 0 {
		s.maxEvents = DefaultMaxEventsPerRequest
	}
	if s.storeTimeout == 0 {
		s.storeTimeout = DefaultStoreTimeout
	}
	if s.mutateTimeout == 0 {
		s.mutateTimeout = DefaultMutateTimeout
	}
	s.storeErrs.log = s.log
	return s, nil
}

// Handler returns the fasthttp handler of every route.
func (s *Server) Handler() fasthttp.RequestHandler { return s.serve }

// HandleError answers a request fasthttp could not read (body over its
// MaxRequestBodySize, headers over its ReadBufferSize, malformed HTTP,
// timeout) with a JSON error; use it as fasthttp.Server.ErrorHandler.
func (s *Server) HandleError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, tooLarge(s.maxBody))
	case errors.As(err, &small):
		writeError(ctx, &apiError{code: CodeHeadersTooLarge, msg: "request headers are too large"})
	default:
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			ctx.SetConnectionClose()
			writeError(ctx, &apiError{code: CodeRequestTimeout, msg: "request not received in time"})
			return
		}
		writeError(ctx, invalid("malformed HTTP request"))
	}
}

func tooLarge(limit int) *apiError {
	return &apiError{code: CodePayloadTooLarge, msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

const customersPrefix = "/v1/customers/"

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", "method", string(ctx.Method()), "path", string(ctx.Path()), "panic", p, "stack", string(debug.Stack()))
			writeError(ctx, errInternal)
		}
	}()
	start := time.Now()
	path := ctx.Path()
	rt := routeOf(path)
	var key *Key
	defer func() {
		status := ctx.Response.StatusCode()
		s.obs.request(rt, status, start)
		if s.obs.sampled() {
			name := ""
			if key != nil {
				name = key.Name
			}
			s.log.Info("request", "method", string(ctx.Method()), "route", routeNames[rt], "status", status,
				"duration", time.Since(start), "key", name, "remote", ctx.RemoteIP().String())
		}
	}()
	if ctx.IsOptions() && s.keys != nil {
		s.preflight(ctx)
		return
	}
	if need := scopeOf(path); need != 0 && s.keys != nil {
		if key = s.authenticate(ctx, need); key == nil {
			return
		}
	}
	// Admission after authentication: a caller without a key gets its
	// 401, not a fallback decision.
	if c, ok := classOf(rt); ok && s.admit != nil {
		g, admitted := s.admit.admit(c, ctx.Time(), start)
		if g != nil {
			defer g.release()
		}
		if !admitted {
			switch {
			case c != classDecide:
				s.shed(ctx, c)
			case s.allow(ctx, "POST") && s.acceptBody(ctx):
				s.shedDecide(ctx, key)
			}
			return
		}
	}
	switch string(path) {
	case "/v1/decide":
		if s.allow(ctx, "POST") && s.acceptBody(ctx) {
			s.decide(ctx, key, start)
		}
	case "/v1/events":
		if s.allow(ctx, "POST") && s.acceptBody(ctx) {
			s.events(ctx, key)
		}
	case "/v1/stats":
		if s.allow(ctx, "GET, HEAD") {
			s.statsHandler(ctx)
		}
	case "/healthz":
		if s.allow(ctx, "GET, HEAD") {
			ctx.SetContentType(contentTypeJSON)
			ctx.SetBodyString(`{"status":"ok"}` + "\n")
		}
	case "/readyz":
		if s.allow(ctx, "GET, HEAD") {
			s.readyz(ctx)
		}
	case "/metrics":
		if s.allow(ctx, "GET, HEAD") {
			ctx.SetContentType("text/plain; version=0.0.4")
			s.WriteMetrics(ctx)
		}
	default:
		if bytes.HasPrefix(path, []byte(customersPrefix)) {
			s.customer(ctx)
			return
		}
		if bytes.HasPrefix(path, []byte(adminCatalogPath)) {
			s.adminCatalog(ctx, actorOf(key))
			return
		}
		writeError(ctx, &apiError{code: CodeNotFound, msg: fmt.Sprintf("no route for %s", path)})
	}
}

// allow reports whether the request's method is in allowed (a list as
// the Allow header has it: "GET, HEAD"); otherwise it answers 405.
func (s *Server) allow(ctx *fasthttp.RequestCtx, allowed string) bool {
	m := ctx.Method()
	for list := allowed; list != ""; {
		var name string
		name, list, _ = strings.Cut(list, ", ")
		if string(m) == name {
			return true
		}
	}
	writeError(ctx, &apiError{code: CodeMethodNotAllowed, msg: fmt.Sprintf("method %s is not allowed here; allowed: %s", m, allowed)})
	ctx.Response.Header.Set(fasthttp.HeaderAllow, allowed)
	return false
}

// acceptBody checks the body's size and media type before it is parsed.
func (s *Server) acceptBody(ctx *fasthttp.RequestCtx) bool {
	if err := s.checkBody(ctx.Request.Header.ContentType(), len(ctx.PostBody())); err != nil {
		writeError(ctx, err)
		return false
	}
	return true
}

func (s *Server) checkBody(contentType []byte, size int) *apiError {
	if len(contentType) > 0 && !isJSON(contentType) {
		return &apiError{code: CodeUnsupportedMediaType, msg: fmt.Sprintf("content type %q is not JSON; send application/json", contentType)}
	}
	if size > s.maxBody {
		return tooLarge(s.maxBody)
	}
	return nil
}

// HandleExpect judges a request sent with "Expect: 100-continue" on its
// headers, before the client uploads the body: one declared larger than
// MaxBodyBytes, or not JSON, is refused at once with its JSON error. (A
// refusal after the body started to flow ends in a connection reset the
// client may see instead of the answer.) Use it as
// fasthttp.Server.ExpectHandler.
func (s *Server) HandleExpect(ctx *fasthttp.RequestCtx) int {
	// fasthttp asks that the response be left alone here, yet it only sets
	// the status we return and writes the response as is; the integration
	// tests check the JSON body arrives.
	check := s.checkBody
	if bytes.HasPrefix(ctx.Path(), []byte(adminCatalogPath)) {
		check = s.checkCatalogBody // YAML
	}
	if err := check(ctx.Request.Header.ContentType(), ctx.Request.Header.ContentLength()); err != nil {
		writeError(ctx, err)
		return err.status()
	}
	return fasthttp.StatusContinue
}

// isJSON reports whether a Content-Type names JSON: application/json or
// any application/*+json, with any parameters.
func isJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	const app = "application/"
	if len(ct) < len(app) || !bytes.EqualFold(ct[:len(app)], []byte(app)) {
		return false
	}
	sub := ct[len(app):]
	return bytes.EqualFold(sub, []byte("json")) ||
		(len(sub) > len("+json") && bytes.EqualFold(sub[len(sub)-len("+json"):], []byte("+json")))
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if s.ready != nil {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.ready(c)
		cancel()
		if err != nil {
			writeError(ctx, &apiError{code: CodeNotReady, msg: err.Error()})
			return
		}
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBodyString(`{"status":"ready"}` + "\n")
}

// storeErrorLog logs store errors at most once a second, with the number
// of errors not logged in between, so an outage does not flood the log
// from the hot path.
type storeErrorLog struct {
	log        *slog.Logger
	last       atomic.Int64 // Unix nanoseconds of the last line
	suppressed atomic.Int64
}

func (l *storeErrorLog) error(op string, err error) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	l.log.Error("feature store", "op", op, "err", err, "suppressed", l.suppressed.Swap(0))
}

// WriteMetrics writes the server's metrics, with the Go runtime's and the
// process's, in the Prometheus text format (GET /metrics, and the admin
// listener's /metrics).
func (s *Server) WriteMetrics(w io.Writer) {
	s.metrics.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}
