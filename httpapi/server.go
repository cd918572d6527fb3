package httpapi

import (
	"github.com/VictoriaMetrics/metrics"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/internal/keys"
)

// Options configures a Server.
type Options struct {
	// Service makes the decisions, applies the events, reads and writes
	// profiles and reports the statistics: the catalog in force, the
	// store, the clock and the store deadlines are its (nextbest.Options).
	// Required. Observe it with Observe of the same Metrics and
	// StoreErrors, so its measurements appear under the server's metrics.
	Service *nextbest.Service
	// Logger receives store errors and recovered panics; hot paths log only
	// errors. Default: discard.
	Logger *slog.Logger
	// StoreErrors logs the store's errors, at most one line a second;
	// share it with the store's client so that its own messages count
	// against the same limit. Default: a new one writing to Logger.
	StoreErrors *StoreErrorLog
	// Ready reports whether the server may take traffic, for GET /readyz.
	// It is called with a one-second deadline. Default: always ready.
	Ready func(ctx context.Context) error
	// Warnings lists what an operator should know while the server is
	// ready, in GET /readyz's body (still 200), e.g. a catalog file that
	// was rejected while the last good version serves. Default: none.
	Warnings func() []string
	// MaxBodyBytes bounds a request body; larger ones get 413. Default: 1 MiB.
	MaxBodyBytes int
	// MaxImportBytes bounds the body of a bulk import (POST
	// /v1/customers:import), in place of MaxBodyBytes (see
	// HandleHeaders); larger ones get 413. Default: DefaultMaxImportBytes
	// (64 MiB).
	MaxImportBytes int
	// ImportReadTimeout bounds the time to receive an import's body (see
	// HandleHeaders). Default: DefaultImportReadTimeout (5m).
	ImportReadTimeout time.Duration
	// MaxEventsPerRequest bounds the events of one POST /v1/events; more
	// get 413. Default: 1000.
	MaxEventsPerRequest int
	// Keys are the API keys the server accepts. Nil turns access control
	// off: every route is open (nextbest serve --insecure-no-auth).
	Keys *keys.Keyring
	// TokenSecret verifies the customer_token of requests made with a
	// public key: hex(HMAC-SHA256(TokenSecret, customer_id)).
	TokenSecret []byte
	// ClientIPHeader names the request header in which a trusted proxy in
	// front of the server puts the client's address (X-Real-IP, or
	// X-Forwarded-For, of which the last address is read): the address
	// that identifies an anonymous client for the per-client limits of
	// public keys. Set it only behind a proxy that always sets it, as
	// clients can send any header. Default: "", the connection's peer.
	ClientIPHeader string
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
)

// maxIDLen bounds customer and event ids, in bytes.
const maxIDLen = 256

// Server serves the nextbest HTTP API.
type Server struct {
	svc           *nextbest.Service
	log           *slog.Logger
	ready         func(ctx context.Context) error
	warnings      func() []string
	maxBody       int
	maxEvents     int
	maxImport     int
	importTimeout time.Duration

	storeErrs *StoreErrorLog

	keys        *keys.Keyring
	tokenSecret []byte
	// clients are the per-client limits of each key, by keys.Key.Index; nil
	// for a key without them.
	clients        []*clientLimits
	clientIPHeader string

	admin CatalogAdmin

	obs   *observer
	admit *admitter // nil: admission control off

	metrics        *metrics.Set
	decisions      *metrics.Counter  // decisions answered
	degraded       *degradedCounters // decisions answered from defaults, by cause
	eventsAccepted *metrics.Counter  // events acknowledged (durably applied)
	eventsRefused  *metrics.Counter  // event requests refused because the store failed (503)
	unauthorized   *metrics.Counter  // 401: no key or an unknown one
	forbidden      *metrics.Counter  // 403: a key without the scope, or a public key from another origin
	rateLimited    *metrics.Counter  // 429

	// eventsDuplicate counts events acknowledged but not applied: retries
	// of an event id applied within the dedupe window.
	eventsDuplicate *metrics.Counter

	clientRateLimited    *metrics.Counter // 429 of one client of a public key
	clientBucketsEvicted *metrics.Counter
}

// New validates opts, fills in defaults and returns a Server.
func New(opts Options) (*Server, error) {
	var errs []error
	if opts.Service == nil {
		errs = append(errs, errors.New("service is required"))
	}
	if opts.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxBodyBytes is %d, must not be negative", opts.MaxBodyBytes))
	}
	if opts.MaxEventsPerRequest < 0 {
		errs = append(errs, fmt.Errorf("MaxEventsPerRequest is %d, must not be negative", opts.MaxEventsPerRequest))
	}
	var clients []*clientLimits
	if opts.Keys != nil {
		clients = make([]*clientLimits, len(opts.Keys.Keys()))
		for i, k := range opts.Keys.Keys() {
			if k.Public && k.ClientRate > 0 {
				var err error
				if clients[i], err = newClientLimits(k); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := opts.Admission.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{
		svc:           opts.Service,
		log:           opts.Logger,
		ready:         opts.Ready,
		warnings:      opts.Warnings,
		maxBody:       opts.MaxBodyBytes,
		maxEvents:     opts.MaxEventsPerRequest,
		maxImport:     opts.MaxImportBytes,
		importTimeout: opts.ImportReadTimeout,
		keys:          opts.Keys,
		tokenSecret:   opts.TokenSecret,
		admin:         opts.Admin,
	}
	s.clients, s.clientIPHeader = clients, opts.ClientIPHeader
	s.metrics = opts.Metrics
	if s.metrics == nil {
		s.metrics = metrics.NewSet()
	}
	s.decisions = s.metrics.GetOrCreateCounter("nextbest_decisions_total")
	s.degraded = newDegradedCounters(s.metrics)
	s.eventsAccepted = s.metrics.GetOrCreateCounter("nextbest_events_accepted_total")
	s.eventsRefused = s.metrics.GetOrCreateCounter("nextbest_event_requests_store_unavailable_total")
	s.eventsDuplicate = s.metrics.GetOrCreateCounter("nextbest_events_duplicate_total")
	s.unauthorized = s.metrics.GetOrCreateCounter("nextbest_requests_unauthorized_total")
	s.forbidden = s.metrics.GetOrCreateCounter("nextbest_requests_forbidden_total")
	s.rateLimited = s.metrics.GetOrCreateCounter("nextbest_requests_rate_limited_total")
	s.clientRateLimited = s.metrics.GetOrCreateCounter("nextbest_requests_client_rate_limited_total")
	s.clientBucketsEvicted = s.metrics.GetOrCreateCounter("nextbest_public_client_buckets_evicted_total")
	s.metrics.GetOrCreateGauge("nextbest_public_client_buckets", func() float64 {
		n := 0
		for _, c := range clients {
			if c != nil {
				n += c.buckets.Len()
			}
		}
		return float64(n)
	})
	s.admit = newAdmitter(opts.Admission, s.metrics)
	// # TYPE lines, so Prometheus knows histograms from counters. The
	// setting is the package's, for every set.
	metrics.ExposeMetadata(true)
	s.obs = newObserver(s.metrics, opts.AccessLogRate)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxEvents == 0 {
		s.maxEvents = DefaultMaxEventsPerRequest
	}
	if s.maxImport <= 0 {
		s.maxImport = DefaultMaxImportBytes
	}
	if s.importTimeout <= 0 {
		s.importTimeout = DefaultImportReadTimeout
	}
	s.storeErrs = opts.StoreErrors
	if s.storeErrs == nil {
		s.storeErrs = NewStoreErrorLog(s.log)
	}
	return s, nil
}

// Handler returns the fasthttp handler of every route.
func (s *Server) Handler() fasthttp.RequestHandler { return s.serve }

// HandleError answers a request fasthttp could not read (body over its
// MaxRequestBodySize, headers over its ReadBufferSize, malformed HTTP,
// timeout) with a JSON error; use it as fasthttp.Server.ErrorHandler.
//
// It logs nothing: fasthttp's error quotes the request's bytes, API keys
// and customer tokens included. Log RequestErrorClass(err) instead.
func (s *Server) HandleError(ctx *fasthttp.RequestCtx, err error) {
	switch RequestErrorClass(err) {
	case "body_too_large":
		if bytes.Equal(ctx.Path(), []byte(importPath)) {
			writeError(ctx, importTooLarge(s.maxImport))
			return
		}
		writeError(ctx, tooLarge(s.maxBody))
	case "headers_too_large":
		writeError(ctx, &apiError{code: CodeHeadersTooLarge, msg: "request headers are too large"})
	case "timeout":
		ctx.SetConnectionClose()
		writeError(ctx, &apiError{code: CodeRequestTimeout, msg: "request not received in time"})
	default:
		writeError(ctx, invalid("malformed HTTP request"))
	}
}

// RequestErrorClass names the kind of error fasthttp met reading a
// request or serving a connection, for logs: "body_too_large",
// "headers_too_large", "timeout", "connection" (the client went away or
// reset it) or "malformed". fasthttp's messages quote the request's
// bytes, and so the keys, tokens and customer data in them: log the
// class, never the error.
func RequestErrorClass(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "body_too_large"
	case errors.As(err, &small):
		return "headers_too_large"
	case errors.As(err, &te) && te.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection"
	}
	return "malformed"
}

func tooLarge(limit int) *apiError {
	return &apiError{code: CodePayloadTooLarge, msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

const customersPrefix = "/v1/customers/"

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			// The route, not the path (it may hold a customer id), and the
			// panic's type, not its value (it may quote a request): the
			// stack says where.
			s.log.Error("panic serving request", "method", string(ctx.Method()), "route", routeNames[lookup(ctx.Path()).label], "panic", panicSummary(p), "stack", string(debug.Stack()))
			writeError(ctx, errInternal)
		}
	}()
	start := time.Now()
	path := ctx.Path()
	ep := lookup(path)
	rt := ep.label
	var key *keys.Key
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
		s.preflight(ctx, ep)
		return
	}
	if !ep.open && s.keys != nil {
		if key = s.authenticate(ctx, ep.scope); key == nil {
			return
		}
	}
	// Admission after authentication: a caller without a key gets its
	// 401, not a fallback decision.
	if c := ep.class; c != classNone && s.admit != nil {
		g, admitted := s.admit.admit(c, ctx.Time(), start)
		switch {
		case g != nil && c == classEvents:
			// The handler gives the slot back while it waits for the
			// fsync (holdSlot).
			h := &heldSlot{g: g}
			ctx.SetUserValue(heldSlotKey{}, h)
			defer h.release()
		case g != nil:
			defer g.release()
		}
		if !admitted {
			switch {
			case c != classDecide:
				s.shed(ctx, c)
			case s.accept(ctx, ep) != nil:
				s.shedDecide(ctx, key)
			}
			return
		}
	}
	if !ep.known() {
		writeError(ctx, &apiError{code: CodeNotFound, msg: fmt.Sprintf("no route for %s", path)})
		return
	}
	if r := s.accept(ctx, ep); r != nil {
		r.handle(s, ctx, key, start)
	}
}

// accept returns the row of ep for the request's method, having checked
// the media type and size of the body it takes; or answers 405 (with the
// path's Allow), 413 or 415 and returns nil.
func (s *Server) accept(ctx *fasthttp.RequestCtx, ep *endpoint) *routeSpec {
	r := ep.row(ctx.Method())
	if r == nil {
		s.notAllowed(ctx, ep.allow)
		return nil
	}
	if r.body != bodyNone {
		if err := s.checkBodyOf(r.body, ctx.Request.Header.ContentType(), len(ctx.PostBody())); err != nil {
			writeError(ctx, err)
			return nil
		}
	}
	return r
}

// panicSummary describes a recovered panic for the log without its
// value, which may quote request data: the runtime's own errors (nil
// dereference, index out of range), which quote none, else the type.
func panicSummary(p any) string {
	if e, ok := p.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("%T", p)
}

// notAllowed answers 405 with allowed, a list as the Allow header has it
// ("GET, HEAD").
func (s *Server) notAllowed(ctx *fasthttp.RequestCtx, allowed string) {
	writeError(ctx, &apiError{code: CodeMethodNotAllowed, msg: fmt.Sprintf("method %s is not allowed here; allowed: %s", ctx.Method(), allowed)})
	ctx.Response.Header.Set(fasthttp.HeaderAllow, allowed)
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
	// The body of the route's row for the method; JSON's rules for a
	// request no row takes, which will get its 404 or 405.
	kind := bodyJSON
	if r := lookup(ctx.Path()).row(ctx.Request.Header.Method()); r != nil && r.body != bodyNone {
		kind = r.body
	}
	if err := s.checkBodyOf(kind, ctx.Request.Header.ContentType(), ctx.Request.Header.ContentLength()); err != nil {
		writeError(ctx, err)
		return err.status()
	}
	return fasthttp.StatusContinue
}

// isJSON reports whether a Content-Type names JSON: application/json or
// any application/*+json, with any parameters.
func isJSON(ct []byte) bool {
	if string(ct) == contentTypeJSON {
		return true // what nearly every client sends, without the scan below
	}
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
	if s.warnings != nil {
		if w := s.warnings(); len(w) > 0 {
			body, _ := json.Marshal(struct {
				Status   string   `json:"status"`
				Warnings []string `json:"warnings"`
			}{"ready", w})
			ctx.SetBody(append(body, '\n'))
			return
		}
	}
	ctx.SetBodyString(`{"status":"ready"}` + "\n")
}

// StoreErrorLog logs the feature store's errors at most once a second,
// with the number of errors not logged in between, so an outage does not
// flood the log from the hot path. One StoreErrorLog takes both the
// server's own store errors and those the store's client reports by
// itself (Printf), so that an outage costs one line a second in all.
// It is safe for concurrent use.
type StoreErrorLog struct {
	log        *slog.Logger
	last       atomic.Int64 // Unix nanoseconds of the last line
	suppressed atomic.Int64
}

// NewStoreErrorLog returns a StoreErrorLog writing to log (nil: discard).
func NewStoreErrorLog(log *slog.Logger) *StoreErrorLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoreErrorLog{log: log}
}

// allow reports whether a line may be written now, and if so how many
// errors were not logged since the last one.
func (l *StoreErrorLog) allow() (suppressed int64, ok bool) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return 0, false
	}
	return l.suppressed.Swap(0), true
}

func (l *StoreErrorLog) error(op string, err error) {
	if n, ok := l.allow(); ok {
		l.log.Error("feature store", "op", op, "err", err, "suppressed", n)
	}
}

// Printf logs a message the store's client writes by itself (a failed
// dial, a dropped connection), under the same limit as the server's store
// errors; the message is formatted only when it is written. It has the
// signature of go-redis's logger, for redis.SetLogger.
func (l *StoreErrorLog) Printf(_ context.Context, format string, args ...any) {
	if n, ok := l.allow(); ok {
		l.log.Error("feature store", "op", "client", "err", strings.TrimSpace(fmt.Sprintf(format, args...)), "suppressed", n)
	}
}

// WriteMetrics writes the server's metrics, with the Go runtime's and the
// process's, in the Prometheus text format (GET /metrics, and the admin
// listener's /metrics).
// Every nextbest_* family carries its HELP text (metricHelp).
func (s *Server) WriteMetrics(w io.Writer) {
	b := metricsBufs.Get().(*bytes.Buffer)
	defer metricsBufs.Put(b)
	b.Reset()
	s.metrics.WritePrometheus(b)
	metrics.WriteProcessMetrics(b)
	writeWithHelp(w, b.Bytes())
}
