package main

import (
	"github.com/VictoriaMetrics/metrics"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	actor "github.com/oklog/run"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/httpapi"
)

type serveCmd struct {
	Addr            string        `default:"127.0.0.1:8080" env:"NEXTBEST_ADDR" help:"Address to listen on; port 0 picks a free one."`
	Catalog         string        `default:"examples/retail/catalog.yaml" env:"NEXTBEST_CATALOG" help:"Catalog file."`
	Data            string        `default:"./data" env:"NEXTBEST_DATA" help:"Directory of the embedded feature store, created if missing."`
	Memory          byteSize      `default:"0" env:"NEXTBEST_MEMORY" help:"Memory budget for customer data, shared by the record cache and the embedded store's block cache (e.g. 8GiB; 0: a third of the memory limit, from the cgroup or /proc/meminfo). See docs/operations.md."`
	CacheSize       byteSize      `default:"0" env:"NEXTBEST_CACHE_SIZE" help:"Memory for cached customer records (e.g. 64MiB, 1GiB; 0: --memory less the block cache)."`
	BlockCacheSize  byteSize      `default:"0" env:"NEXTBEST_BLOCK_CACHE_SIZE" help:"Block cache of the embedded store (0: an eighth of --memory, 16MiB to 2GiB, or what --cache-size leaves of it)."`
	MinFreeDisk     diskFloor     `default:"256MiB,5%" env:"NEXTBEST_MIN_FREE_DISK" help:"Free space the data volume keeps (embedded store): below it writes are refused with 503 and /readyz fails, before the store runs out of space; a size (256MiB), a share of the volume (5%), or both, the smaller applying; 0: no floor."`
	LogFormat       string        `default:"text" enum:"text,json" env:"NEXTBEST_LOG_FORMAT" help:"Log format: text or json."`
	LogLevel        string        `default:"info" enum:"debug,info,warn,error" env:"NEXTBEST_LOG_LEVEL" help:"Least severe level logged: debug, info, warn or error."`
	StoreTimeout    time.Duration `env:"NEXTBEST_STORE_TIMEOUT" help:"Deadline of the store read behind a decision; past it the decision uses defaults and is marked degraded (0: 50ms embedded, 100ms Redis; see docs/operations.md)."`
	MaxBody         byteSize      `default:"1MiB" env:"NEXTBEST_MAX_BODY" help:"Largest request body accepted."`
	MaxImportBody   byteSize      `default:"64MiB" env:"NEXTBEST_MAX_IMPORT_BODY" help:"Largest body of one bulk import request (POST /v1/customers:import), read into memory; larger files are sent in parts (nextbest import --url does)."`
	ImportTimeout   time.Duration `default:"5m" env:"NEXTBEST_IMPORT_TIMEOUT" help:"Time to receive the body of one bulk import request (instead of --read-timeout)."`
	MaxConnsPerIP   int           `default:"4096" env:"NEXTBEST_MAX_CONNS_PER_IP" help:"Most concurrent connections from one client IP (0: no limit). Keep it high behind a load balancer."`
	ReadTimeout     time.Duration `default:"10s" env:"NEXTBEST_READ_TIMEOUT" help:"Time to read one request, headers and body."`
	WriteTimeout    time.Duration `default:"10s" env:"NEXTBEST_WRITE_TIMEOUT" help:"Time to write one response."`
	IdleTimeout     time.Duration `default:"60s" env:"NEXTBEST_IDLE_TIMEOUT" help:"Time a keep-alive connection may wait for its next request."`
	ShutdownTimeout time.Duration `default:"15s" env:"NEXTBEST_SHUTDOWN_TIMEOUT" help:"On SIGINT or SIGTERM, time in-flight requests get to finish."`
	StatsFlush      time.Duration `default:"100ms" env:"NEXTBEST_STATS_FLUSH" help:"How often outcome statistics aggregated in memory are flushed to the store (a crash loses at most this much statistics, never profile events)."`
	LearnRefresh    time.Duration `default:"1s" env:"NEXTBEST_LEARN_REFRESH" help:"How often the learned statistics of every node are reloaded from the store."`
	AccessLog       float64       `name:"access-log-sample" default:"0" env:"NEXTBEST_ACCESS_LOG_SAMPLE" help:"Share of requests written to the access log (0: none, 0.01: one in a hundred, 1: all). Lines hold method, route, status, duration and key name; never bodies, customer data or keys."`
	AdminAddr       string        `env:"NEXTBEST_ADMIN_ADDR" help:"Address of the admin listener serving pprof (/debug/pprof/); off when empty. Keep it private."`
	DedupeWindow    time.Duration `default:"24h" env:"NEXTBEST_DEDUPE_WINDOW" help:"How long an applied event_id keeps a retry of the event from being applied again, 1s to 720h; a retry after it is applied."`
	TimelineLength  int           `default:"200" env:"NEXTBEST_TIMELINE_LENGTH" help:"Entries of each customer's timeline kept (GET /v1/customers/{id}/timeline: events, offers shown, profile changes), the newest, 0 to 10000; 0 keeps no timeline."`
	redisFlags
	authFlags
	catalogFlags
	budgetFlags
	tlsFlags
	admissionFlags
	decisionLogFlags
}

// maxDedupeWindow bounds --dedupe-window: every event id lives in the
// store for the window, so a typo must not keep them for a year.
const maxDedupeWindow = 30 * 24 * time.Hour

// maxTimelineLength bounds --timeline-length: a timeline is read whole
// by an export, and its entries take up to a few KiB each.
const maxTimelineLength = 10000

// timelineLength is the store and service option of --timeline-length:
// negative for none.
func (c *serveCmd) timelineLength() int {
	if c.TimelineLength == 0 {
		return -1
	}
	return c.TimelineLength
}

// maxHeaderBytes bounds a request's headers (fasthttp's ReadBufferSize):
// larger ones get 431.
const maxHeaderBytes = 8 << 10

func (c *serveCmd) Run(ctx context.Context, e *env) error {
	log, err := newLogger(e, c.LogFormat, c.LogLevel)
	if err != nil {
		return usageError{err}
	}
	defer routeStdLog(log)()
	if err := c.tlsFlags.validate(); err != nil {
		return err
	}
	if c.DedupeWindow < time.Second || c.DedupeWindow > maxDedupeWindow {
		return usagef("--dedupe-window %v: must be from 1s to %v", c.DedupeWindow, maxDedupeWindow)
	}
	if c.TimelineLength < 0 || c.TimelineLength > maxTimelineLength {
		return usagef("--timeline-length %d: must be from 0 to %d", c.TimelineLength, maxTimelineLength)
	}
	cats, err := openCatalogs(c, log)
	if err != nil {
		return err
	}
	defer cats.close()
	cat := cats.registry.Catalog().Load()

	keys, err := c.keyring(e)
	if err != nil {
		return err
	}
	if keys == nil {
		log.Warn("access control is OFF (--insecure-no-auth): every route, admin included, is open to anyone who can reach this address", "addr", c.Addr)
	} else {
		log.Info("access control on", "keys", keys.Len())
	}

	storeErrs := httpapi.NewStoreErrorLog(log)
	set := metrics.NewSet()
	st, err := openStore(c, log, storeErrs, set)
	if err != nil {
		return err
	}
	defer st.close()
	storeTimeout := c.StoreTimeout
	if storeTimeout == 0 {
		storeTimeout = st.storeTime
	}

	recorder := outcomes.New(st.stats, outcomes.Options{FlushEvery: c.StatsFlush, RefreshEvery: c.LearnRefresh, Logger: log})
	defer func() {
		// After the server and the recorder's actor stopped, before the
		// store closes: what requests added after the actor's own last
		// flush.
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := recorder.Flush(fctx); err != nil {
			log.Error("flush statistics", "err", err)
		}
	}()

	set.NewGauge("nextbest_cache_hit_ratio", func() float64 { return st.records.Metrics().HitRatio })
	set.NewGauge("nextbest_cache_entries", func() float64 { return float64(st.records.Metrics().Entries) })
	observeCatalogs(set, cats.registry)
	observeStats(set, recorder)
	svcOpts := nextbest.Options{
		Catalog:      cats.registry.Catalog(),
		Store:        st.records,
		Cache:        st.records,
		Stats:        recorder,
		StatsReader:  st.stats,
		StoreTimeout: storeTimeout,
		Logger:       log,
		Observer:     httpapi.Observe(set, storeErrs),
		Customers:    st.customers,
		// A customer's journey and their right to be forgotten.
		Journal:        st.journal,
		TimelineLength: c.timelineLength(),
		Eraser:         st.records,
	}
	// Replay (issue 14) decides logged decisions again on the versions
	// the registry keeps.
	svcOpts.CatalogVersions = cats.registry
	runDecisionLog, err := c.decisionLogFlags.open(c.Data, log, set, &svcOpts, decisionStreamTo{client: st.redis, prefix: c.RedisPrefix, addr: c.Addr})
	if err != nil {
		return err
	}
	svc, err := nextbest.New(svcOpts)
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Options{
		Service:       svc,
		Metrics:       set,
		Admin:         cats.registry,
		Keys:          keys,
		AccessLogRate: c.AccessLog,
		TokenSecret:   []byte(c.TokenSecret),
		Logger:        log,
		StoreErrors:   storeErrs,
		Ready:         st.ready,
		Warnings:      catalogWarnings(cats.registry, c.Catalog),
		MaxBodyBytes:  int(c.MaxBody),
		Admission:     c.admission(),

		ClientIPHeader: c.ClientIPHeader,

		MaxImportBytes:    int(c.MaxImportBody),
		ImportReadTimeout: c.ImportTimeout,
	})
	if err != nil {
		return err
	}
	srv := &fasthttp.Server{
		Handler:               api.Handler(),
		ErrorHandler:          api.HandleError,
		ExpectHandler:         api.HandleExpect,
		Name:                  "nextbest",
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    int(c.MaxBody),
		ReadBufferSize:        maxHeaderBytes,
		ReadTimeout:           c.ReadTimeout,
		WriteTimeout:          c.WriteTimeout,
		IdleTimeout:           c.IdleTimeout,
		MaxConnsPerIP:         c.MaxConnsPerIP,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{log},

		// An import's body limit and read timeout are its own.
		HeaderReceived: api.HandleHeaders,
	}
	// SIGINT and SIGTERM are caught from before the server listens: one
	// that comes as soon as the address is logged (a supervisor or a test
	// stopping it at once) shuts down gracefully instead of killing the
	// process before the signal actor is running.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	if ln, err = c.tlsFlags.listener(ln); err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "tls", c.TLSCert != "", "catalog", c.Catalog, "store", st.desc,
		"channels", len(cat.Channels), "offers", len(cat.Offers))

	var g actor.Group
	g.Add(func() error {
		return srv.Serve(ln)
	}, func(error) {
		sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
		defer cancel()
		if err := srv.ShutdownWithContext(sctx); err != nil {
			log.Error("shutdown", "err", err)
		}
		// A stop that comes before Serve registered the listener finds
		// none to close (fasthttp's Shutdown returns at once) and Serve
		// would then run forever: closing it here makes Serve return
		// as soon as it starts.
		_ = ln.Close()
	})
	if runDecisionLog != nil {
		runDecisionLog(&g)
	}
	if c.AdminAddr != "" {
		run, stop, err := adminServer(c.AdminAddr, log, api.WriteMetrics)
		if err != nil {
			return fmt.Errorf("--admin-addr: %w", err)
		}
		g.Add(run, stop)
	}
	rctx, stopRecorder := context.WithCancel(ctx)
	g.Add(func() error {
		if err := recorder.Run(rctx); err != nil {
			log.Error("flush statistics", "err", err)
		}
		return rctx.Err()
	}, func(error) { stopRecorder() })
	if cats.watch != nil {
		wctx, stop := context.WithCancel(ctx)
		g.Add(func() error { return cats.watch(wctx) }, func(error) { stop() })
	}
	if st.watch != nil {
		wctx, stop := context.WithCancel(ctx)
		g.Add(func() error { return st.watch(wctx) }, func(error) { stop() })
	}
	if gc := tuneGC(log, set, memoryLimit); gc != nil {
		gctx, stop := context.WithCancel(ctx)
		g.Add(func() error { return gc.Run(gctx) }, func(error) { stop() })
	}
	sctx, stopSignals := context.WithCancel(ctx)
	g.Add(func() error {
		select {
		case sig := <-sigs:
			return &actor.SignalError{Signal: sig}
		case <-sctx.Done():
			return sctx.Err()
		}
	}, func(error) { stopSignals() })
	err = g.Run()
	switch {
	case errors.Is(err, actor.ErrSignal):
		log.Info("stopped", "reason", err.Error())
		return nil
	case errors.Is(err, context.Canceled):
		log.Info("stopped", "reason", "cancelled")
		return nil
	}
	return err
}

func newLogger(e *env, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
}

// fasthttpLogger sends fasthttp's own messages to slog. fasthttp's
// errors quote the request's bytes (its headers, so API keys and customer
// tokens, and bodies): they are never logged as they are. A connection's
// error is logged as its class (httpapi.RequestErrorClass), at debug
// level: it is the client's doing (an oversized or malformed request,
// already answered), and a hostile client must not be able to flood the
// log. Other messages are logged with their arguments only when those
// are known to be the server's own (counts, addresses, accept errors);
// any other message is logged as its format alone.
type fasthttpLogger struct{ log *slog.Logger }

// fasthttpSafeFormats start the messages of fasthttp whose arguments hold
// no request bytes.
var fasthttpSafeFormats = []string{
	"The incoming connection cannot be served",
	"Timeout error when accepting new connections",
	"Permanent error when accepting new connections",
	"The number of connections from",
}

func (l fasthttpLogger) Printf(format string, args ...any) {
	if strings.HasPrefix(format, "error when serving connection") {
		// "error when serving connection %q<->%q: %v": local, remote, err.
		var remote string
		var err error
		if len(args) == 3 {
			remote = fmt.Sprint(args[1])
			err, _ = args[2].(error)
		}
		l.log.Debug("error serving connection", "component", "fasthttp", "remote", remote, "class", httpapi.RequestErrorClass(err))
		return
	}
	msg := format
	if slices.ContainsFunc(fasthttpSafeFormats, func(p string) bool { return strings.HasPrefix(format, p) }) {
		msg = fmt.Sprintf(format, args...)
	}
	l.log.Warn(msg, "component", "fasthttp")
}
