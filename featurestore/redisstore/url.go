package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientOptions complete what a URL says. Zero values keep go-redis's
// defaults, except where noted.
type ClientOptions struct {
	Username, Password string        // override the URL's user info when set
	PoolSize           int           // connections per node; default 10 per CPU
	DialTimeout        time.Duration // default 5s
	ReadTimeout        time.Duration // default 3s
	WriteTimeout       time.Duration // default ReadTimeout
	MaxRetries         int           // default 0 here: a decision has no time for retries; -1 also means none
	TLS                *tls.Config   // overrides the TLS implied by a rediss scheme
}

// NewClient builds a client from a URL of one of these forms:
//
//	redis://[user:password@]host:port[/db][?option=value...]                standalone
//	rediss://...                                                          standalone over TLS
//	redis+sentinel://[user:password@]host:port[,host:port...]/master[/db]   Sentinel (failover)
//	redis+cluster://[user:password@]host:port[,host:port...]                 Redis Cluster
//
// (rediss+sentinel and rediss+cluster for TLS). Query options are
// go-redis's, in snake case (pool_size=20, dial_timeout=2s). For
// Sentinel, the user and password authenticate to both the sentinels and
// the master. Errors never contain the password.
func NewClient(rawURL string, o ClientOptions) (redis.UniversalClient, error) {
	safe := Redact(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: cannot parse", safe)
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fmt.Errorf("redis URL %s: scheme must be redis, rediss, redis+sentinel or redis+cluster", safe)
	}
	hosts := strings.Split(u.Host, ",")
	for _, h := range hosts {
		if h == "" {
			return nil, fmt.Errorf("redis URL %s: empty host", safe)
		}
	}
	// Rebuild a URL in go-redis's own syntax (first host, the others as
	// addr parameters) so its parsers handle every option.
	q := u.Query()
	base := &url.URL{Scheme: scheme, User: u.User, Host: hosts[0], Path: u.Path}
	wrap := func(err error) error {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return fmt.Errorf("redis URL %s: %s", safe, msg)
	}
	var c redis.UniversalClient
	switch mode {
	case "":
		if len(hosts) > 1 {
			return nil, fmt.Errorf("redis URL %s: several hosts need redis+cluster:// or redis+sentinel://", safe)
		}
		base.RawQuery = q.Encode()
		opt, err := redis.ParseURL(base.String())
		if err != nil {
			return nil, wrap(err)
		}
		o.apply(common{&opt.Username, &opt.Password, &opt.ContextTimeoutEnabled, &opt.MaxRetries, &opt.PoolSize,
			&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.TLSConfig})
		c = redis.NewClient(opt)
	case "cluster":
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		base.RawQuery = q.Encode()
		opt, err := redis.ParseClusterURL(base.String())
		if err != nil {
			return nil, wrap(err)
		}
		o.apply(common{&opt.Username, &opt.Password, &opt.ContextTimeoutEnabled, &opt.MaxRetries, &opt.PoolSize,
			&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.TLSConfig})
		c = redis.NewClusterClient(opt)
	case "sentinel":
		parts := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
		if len(parts) == 0 || len(parts) > 2 {
			return nil, fmt.Errorf("redis URL %s: want the master name in the path: redis+sentinel://host:port/mymaster[/db]", safe)
		}
		q.Set("master_name", parts[0])
		base.Path = ""
		if len(parts) == 2 {
			base.Path = "/" + parts[1]
		}
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		base.RawQuery = q.Encode()
		opt, err := redis.ParseFailoverURL(base.String())
		if err != nil {
			return nil, wrap(err)
		}
		opt.Username, opt.Password = opt.SentinelUsername, opt.SentinelPassword
		o.apply(common{&opt.Username, &opt.Password, &opt.ContextTimeoutEnabled, &opt.MaxRetries, &opt.PoolSize,
			&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.TLSConfig})
		opt.SentinelUsername, opt.SentinelPassword = opt.Username, opt.Password
		c = redis.NewFailoverClient(opt)
	default:
		return nil, fmt.Errorf("redis URL %s: unknown mode %q (want sentinel or cluster)", safe, mode)
	}
	return c, nil
}

// common points at the fields every go-redis options struct has, so the
// flags apply the same way to a standalone, cluster or failover client.
type common struct {
	user, password       *string
	contextTimeout       *bool
	maxRetries, poolSize *int
	dial, read, write    *time.Duration
	tls                  **tls.Config
}

func (o ClientOptions) apply(c common) {
	if o.Username != "" || o.Password != "" {
		*c.user, *c.password = o.Username, o.Password
	}
	*c.contextTimeout = true
	*c.maxRetries = retries(o.MaxRetries)
	setIf(c.poolSize, o.PoolSize)
	setDur(c.dial, o.DialTimeout)
	setDur(c.read, o.ReadTimeout)
	setDur(c.write, o.WriteTimeout)
	if o.TLS != nil {
		*c.tls = o.TLS
	}
}

// retries maps our "0 means none" to go-redis's "-1 means none".
func retries(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

func setIf(dst *int, v int) {
	if v > 0 {
		*dst = v
	}
}

func setDur(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}

// Redact returns the URL with its password replaced, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Cannot parse: say nothing of what may be a password.
		if i := strings.LastIndex(rawURL, "@"); i >= 0 {
			if j := strings.Index(rawURL, "://"); j >= 0 && j < i {
				return rawURL[:j+3] + "xxxxx" + rawURL[i:]
			}
			return "xxxxx" + rawURL[i:]
		}
		return rawURL
	}
	return u.Redacted()
}

// ErrNoURL is returned by callers that need a URL and got none.
var ErrNoURL = errors.New("redisstore: no Redis URL")
