package main

import (
	"github.com/VictoriaMetrics/metrics"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	actor "github.com/oklog/run"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/httpapi"
)

type serveCmd struct {
	Addr            string        `default:"127.0.0.1:8080" envvar:"NEXTBEST_ADDR" help:"Address to listen on; port 0 picks a free one (env NEXTBEST_ADDR)."`
	Catalog         string        `default:"examples/retail/catalog.yaml" envvar:"NEXTBEST_CATALOG" help:"Catalog file (env NEXTBEST_CATALOG)."`
	Data            string        `default:"./data" envvar:"NEXTBEST_DATA" help:"Directory of the embedded feature store, created if missing (env NEXTBEST_DATA)."`
	CacheSize       byteSize      `default:"256MiB" help:"Memory for cached customer records (e.g. 64MiB, 1GiB)."`
	LogFormat       string        `default:"text" enum:"text,json" help:"Log format: text or json."`
	LogLevel        string        `default:"info" enum:"debug,info,warn,error" help:"Least severe level logged: debug, info, warn or error."`
	StoreTimeout    time.Duration `envvar:"NEXTBEST_STORE_TIMEOUT" help:"Deadline of the store read behind a decision; past it the decision uses defaults and is marked degraded (0: 50ms embedded, 5ms Redis)."`
	MaxBody         byteSize      `default:"1MiB" help:"Largest request body accepted."`
	MaxConnsPerIP   int           `default:"4096" help:"Most concurrent connections from one client IP (0: no limit). Keep it high behind a load balancer."`
	ReadTimeout     time.Duration `default:"10s" help:"Time to read one request, headers and body."`
	WriteTimeout    time.Duration `default:"10s" help:"Time to write one response."`
	IdleTimeout     time.Duration `default:"60s" help:"Time a keep-alive connection may wait for its next request."`
	ShutdownTimeout time.Duration `default:"15s" help:"On SIGINT or SIGTERM, time in-flight requests get to finish."`
	StatsFlush      time.Duration `default:"100ms" envvar:"NEXTBEST_STATS_FLUSH" help:"How often outcome statistics aggregated in memory are flushed to the store (a crash loses at most this much statistics, never profile events)."`
	LearnRefresh    time.Duration `default:"1s" envvar:"NEXTBEST_LEARN_REFRESH" help:"How often the learned statistics of every node are reloaded from the store."`
	AccessLog       float64       `name:"access-log-sample" default:"0" envvar:"NEXTBEST_ACCESS_LOG_SAMPLE" help:"Share of requests written to the access log (0: none, 0.01: one in a hundred, 1: all). Lines hold method, route, status, duration and key name; never bodies, customer data or keys."`
	AdminAddr       string        `envvar:"NEXTBEST_ADMIN_ADDR" help:"Address of the admin listener serving pprof (/debug/pprof/); off when empty. Keep it private."`
	redisFlags
	authFlags
	catalogFlags
	tlsFlags
	admissionFlags
}

// maxHeaderBytes bounds a request's headers (fasthttp's ReadBufferSize):
// larger ones get 431.
const maxHeaderBytes = 8 << 10

func (c *serveCmd) Run(ctx context.Context, e *env) error {
	log, err := newLogger(e, c.LogFormat, c.LogLevel)
	if err != nil {
		return usageError{err}
	}
	if err := c.tlsFlags.validate(); err != nil {
		return err
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

	st, err := openStore(c, log)
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
		// Before the store closes: the last batch of statistics.
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := recorder.Close(fctx); err != nil {
			log.Error("flush statistics", "err", err)
		}
	}()

	set := metrics.NewSet()
	set.NewGauge("nextbest_cache_hit_ratio", func() float64 { return st.records.Metrics().HitRatio })
	set.NewGauge("nextbest_cache_entries", func() float64 { return float64(st.records.Metrics().Entries) })
	observeCatalogs(set, cats.registry)
	api, err := httpapi.New(httpapi.Options{
		Metrics:       set,
		Catalog:       cats.registry.Catalog(),
		Admin:         cats.registry,
		Store:         st.records,
		Stats:         recorder,
		Keys:          keys,
		AccessLogRate: c.AccessLog,
		TokenSecret:   []byte(c.TokenSecret),
		StatsStore:    st.stats,
		Logger:        log,
		Ready:         st.ready,
		MaxBodyBytes:  int(c.MaxBody),
		StoreTimeout:  storeTimeout,
		Admission:     c.admission(),
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
	}
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
	})
	if c.AdminAddr != "" {
		run, stop, err := adminServer(c.AdminAddr, log, api.WriteMetrics)
		if err != nil {
			return fmt.Errorf("--admin-addr: %w", err)
		}
		g.Add(run, stop)
	}
	if cats.watch != nil {
		wctx, stop := context.WithCancel(ctx)
		g.Add(func() error { return cats.watch(wctx) }, func(error) { stop() })
	}
	if st.watch != nil {
		wctx, stop := context.WithCancel(ctx)
		g.Add(func() error { return st.watch(wctx) }, func(error) { stop() })
	}
	g.Add(actor.SignalHandler(ctx, syscall.SIGINT, syscall.SIGTERM))
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

// fasthttpLogger sends fasthttp's own messages to slog. Errors serving one
// connection are the client's doing (oversized or malformed requests,
// which already got their answer), so they are debug lines: a hostile
// client must not be able to flood the log.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "error when serving connection") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, "component", "fasthttp")
}
