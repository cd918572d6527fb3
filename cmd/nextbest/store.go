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

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/redisstore"
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
	ready   func(context.Context) error
	// watch, when not nil, follows cross-node invalidations until its
	// context ends.
	watch     func(context.Context) error
	close     func()
	desc      string
	storeTime time.Duration // default decision deadline for this store
}

func openStore(c *serveCmd, log *slog.Logger) (*storeSetup, error) {
	if c.Redis == "" {
		store, err := embedded.Open(embedded.Options{Dir: c.Data, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		records, err := cache.New(store, cache.Options{MaxCost: int64(c.CacheSize), TTL: c.CacheTTL})
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("cache: %w", err)
		}
		return &storeSetup{
			records: records,
			stats:   store,
			ready:   store.Ping,
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
	store, err := redisstore.New(redisstore.Options{Client: client, Prefix: c.RedisPrefix})
	if err != nil {
		client.Close()
		return nil, err
	}
	ttl := c.CacheTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	records, err := cache.New(store, cache.Options{MaxCost: int64(c.CacheSize), TTL: ttl})
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
		records: records,
		stats:   store,
		ready:   ready,
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
		storeTime: 5 * time.Millisecond,
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
