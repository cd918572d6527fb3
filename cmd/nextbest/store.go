package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/httpapi"
)

// redisFlags configure the shared Redis feature store; without --redis the
// embedded store is used.
type redisFlags struct {
	Redis              string        `name:"redis" env:"NEXTBEST_REDIS_URL" help:"Redis URL; when set, customers live in Redis, shared by every node: redis://host:port/db, rediss://..., redis+sentinel://host:port,host:port/master, redis+cluster://host:port,host:port."`
	RedisUsername      string        `name:"redis-username" env:"NEXTBEST_REDIS_USERNAME" help:"Redis ACL user, overriding the URL's."`
	RedisPassword      string        `name:"redis-password" env:"NEXTBEST_REDIS_PASSWORD" help:"Redis password, overriding the URL's; prefer the environment variable to the flag."`
	RedisPoolSize      int           `name:"redis-pool-size" env:"NEXTBEST_REDIS_POOL_SIZE" help:"Connections per Redis node (0: 10 per CPU)."`
	RedisDialTimeout   time.Duration `name:"redis-dial-timeout" default:"2s" env:"NEXTBEST_REDIS_DIAL_TIMEOUT" help:"Timeout to connect to Redis."`
	RedisTimeout       time.Duration `name:"redis-timeout" default:"2s" env:"NEXTBEST_REDIS_TIMEOUT" help:"Read and write timeout of one Redis command (a decision's own deadline is --store-timeout)."`
	RedisPrefix        string        `name:"redis-prefix" default:"nb:" env:"NEXTBEST_REDIS_PREFIX" help:"Prefix of every key nextbest writes."`
	RedisTLSCA         string        `name:"redis-tls-ca" env:"NEXTBEST_REDIS_TLS_CA" help:"PEM file of the CA that signed Redis's certificate (implies TLS)."`
	RedisTLSCert       string        `name:"redis-tls-cert" env:"NEXTBEST_REDIS_TLS_CERT" help:"PEM client certificate for Redis (mutual TLS)."`
	RedisTLSKey        string        `name:"redis-tls-key" env:"NEXTBEST_REDIS_TLS_KEY" help:"PEM client key for Redis (mutual TLS)."`
	RedisTLSServerName string        `name:"redis-tls-server-name" env:"NEXTBEST_REDIS_TLS_SERVER_NAME" help:"Server name expected in Redis's certificate (default: the host)."`
	CacheTTL           time.Duration `name:"cache-ttl" env:"NEXTBEST_CACHE_TTL" help:"Longest time a cached customer is used without a reload (0: forever with the embedded store, 1m with Redis, as a backstop to invalidation messages)."`
}

// storeSetup is the store chosen by the flags, with what serve must run
// and close around it.
type storeSetup struct {
	records *cache.Cache
	stats   featurestore.StatsStore // outcome statistics, beside the customers
	// customers lists the store's customers, for batches of decisions
	// over a segment (the backend, not the cache tier).
	customers nextbest.CustomerScanner
	journal   nextbest.Journal // timelines and event ids, beside the customers
	ready     func(context.Context) error
	// watch, when not nil, follows cross-node invalidations until its
	// context ends.
	watch     func(context.Context) error
	close     func()
	desc      string
	storeTime time.Duration // default decision deadline for this store
	// redis is the Redis client of a Redis store, nil for the embedded
	// one: the decision log's stream uses it too.
	redis redis.UniversalClient
}

// redisStoreTimeout is the default deadline of a decision's Redis read.
// A healthy read's p99.9 measured 10–16 ms in BenchmarkLoadLatency and
// 25–100 ms inside the server at 3,000 cache-miss decisions/s on a busy
// 2-CPU machine (docs/benchmarks.md); the former default, 5 ms, degraded
// 19% of those decisions. 100 ms covers the worst p99.9 seen.
const redisStoreTimeout = 100 * time.Millisecond

// openStore opens the store the flags choose. storeErrs takes the
// messages the Redis client logs by itself, under the limit of the
// server's own store errors; set receives the store's metrics.
func openStore(c *serveCmd, log *slog.Logger, storeErrs *httpapi.StoreErrorLog, set *metrics.Set) (*storeSetup, error) {
	mem := splitMemory(int64(c.Memory), int64(c.CacheSize), int64(c.BlockCacheSize), c.Redis == "", memoryLimit)
	log.Info("memory for customers", "budget", mem.budget, "from", mem.source,
		"record_cache", mem.cache, "cache_sketch", mem.sketch, "block_cache", mem.blockCache)
	if c.Redis == "" {
		minFree, minFreePct := c.MinFreeDisk.options()
		refusedFull := set.NewCounter(`nextbest_store_writes_refused_total{cause="disk_full"}`)
		refusedFailed := set.NewCounter(`nextbest_store_writes_refused_total{cause="write_error"}`)
		store, err := embedded.Open(embedded.Options{Dir: c.Data, Logger: log, DedupeWindow: c.DedupeWindow, CacheSize: mem.blockCache,
			MinFreeBytes: minFree, MinFreePercent: minFreePct, TimelineLength: c.timelineLength(),
			Refused: func(cause error) {
				if cause == embedded.ErrWriteFailed {
					refusedFailed.Inc()
					return
				}
				refusedFull.Inc()
			}})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		set.NewGauge("nextbest_store_disk_free_bytes", func() float64 {
			free, _ := store.DiskSpace()
			return float64(free)
		})
		set.NewGauge("nextbest_store_disk_min_free_bytes", func() float64 {
			_, floor := store.DiskSpace()
			return float64(floor)
		})
		records, err := cache.New(store, cache.Options{MaxCost: mem.cache, TTL: c.CacheTTL})
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("cache: %w", err)
		}
		return &storeSetup{
			records:   records,
			stats:     store,
			customers: store,
			journal:   store,
			// Ready while the store answers reads and accepts writes: a
			// node whose disk is full (or whose log failed) answers every
			// event with 503, so it leaves the load balancer's rotation
			// until it takes writes again, by itself once space returns.
			// The reason is the 503's JSON error message.
			ready: func(ctx context.Context) error {
				if err := store.Ping(ctx); err != nil {
					return err
				}
				if err := store.Writable(); err != nil {
					return fmt.Errorf("feature store refuses writes: %w", err)
				}
				return nil
			},
			close: func() {
				records.Close() // before the store
				if err := store.Close(); err != nil {
					log.Error("close store", "err", err)
				}
			},
			desc:      "embedded " + c.Data,
			storeTime: 50 * time.Millisecond,
		}, nil
	}

	// go-redis logs failed dials and dropped connections by itself, to
	// stderr and unthrottled (hundreds of lines per outage). Its logger is
	// process-global, hence set here, in cmd.
	redis.SetLogger(storeErrs)
	tlsConf, err := c.redisTLS()
	if err != nil {
		return nil, usageError{err}
	}
	client, err := redisstore.NewClient(c.Redis, redisstore.ClientOptions{
		Username:     c.RedisUsername,
		Password:     c.RedisPassword,
		PoolSize:     c.RedisPoolSize,
		DialTimeout:  c.RedisDialTimeout,
		ReadTimeout:  c.RedisTimeout,
		WriteTimeout: c.RedisTimeout,
		TLS:          tlsConf,
	})
	if err != nil {
		return nil, usageError{err}
	}
	store, err := redisstore.New(redisstore.Options{Client: client, Prefix: c.RedisPrefix, DedupeWindow: c.DedupeWindow, TimelineLength: c.timelineLength()})
	if err != nil {
		client.Close()
		return nil, err
	}
	ttl := c.CacheTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	records, err := cache.New(store, cache.Options{MaxCost: mem.cache, TTL: ttl})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	// Ready once Redis has answered: before that the node has no customer
	// data to serve. After, an outage makes decisions degraded (from the
	// cache or defaults) and events 503, but the node stays in rotation.
	var up atomic.Bool
	ready := func(ctx context.Context) error {
		if up.Load() {
			return nil
		}
		if err := store.Ping(ctx); err != nil {
			return fmt.Errorf("redis unreachable: %w", err)
		}
		up.Store(true)
		return nil
	}
	return &storeSetup{
		records:   records,
		stats:     store,
		customers: store,
		journal:   store,
		ready:     ready,
		redis:     client,
		watch: func(ctx context.Context) error {
			return store.Watch(ctx, records.Invalidate, func() {
				// (Re)subscribed: messages sent while we were not
				// listening are lost, so nothing cached can be trusted.
				records.InvalidateAll()
				log.Info("invalidation channel subscribed; cache cleared", "channel", store.Channel())
			})
		},
		close: func() {
			records.Close()
			client.Close()
		},
		desc:      "redis " + redisstore.Redact(c.Redis),
		storeTime: redisStoreTimeout,
	}, nil
}

func (c *redisFlags) redisTLS() (*tls.Config, error) {
	if c.RedisTLSCA == "" && c.RedisTLSCert == "" && c.RedisTLSServerName == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.RedisTLSServerName}
	if c.RedisTLSCA != "" {
		pem, err := os.ReadFile(c.RedisTLSCA)
		if err != nil {
			return nil, fmt.Errorf("--redis-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--redis-tls-ca: %s holds no PEM certificate", c.RedisTLSCA)
		}
		conf.RootCAs = pool
	}
	if (c.RedisTLSCert == "") != (c.RedisTLSKey == "") {
		return nil, errors.New("--redis-tls-cert and --redis-tls-key go together")
	}
	if c.RedisTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.RedisTLSCert, c.RedisTLSKey)
		if err != nil {
			return nil, fmt.Errorf("--redis-tls-cert/--redis-tls-key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
