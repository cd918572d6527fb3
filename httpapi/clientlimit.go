package httpapi

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"github.com/nextbest/nextbest/internal/keys"
)

// clientLimits are the token buckets of the clients of one public key, so
// that one visitor's burst is refused without spending the rate of the
// whole site. A client is the customer a valid customer_token proves, or,
// for an anonymous visitor, the client's address (an IPv6 address by its
// /64, which one subscriber usually holds whole). The buckets live in an
// LRU of at most Key.ClientBuckets: a client forgotten comes back with a
// full bucket, which is what an idle one would have had anyway.
type clientLimits struct {
	buckets *lru.Cache[string, *rate.Limiter]
	limit   rate.Limit
	burst   int
}

func newClientLimits(k *keys.Key) (*clientLimits, error) {
	c, err := lru.New[string, *rate.Limiter](k.ClientBuckets)
	if err != nil {
		return nil, fmt.Errorf("key %q: client buckets: %w", k.Name, err)
	}
	return &clientLimits{buckets: c, limit: rate.Limit(k.ClientRate), burst: k.ClientBurst}, nil
}

// bucket returns the bucket of client, made on first sight; evicted
// reports whether another client's was forgotten to make room.
func (c *clientLimits) bucket(client []byte) (b *rate.Limiter, evicted bool) {
	// The lookup does not keep its key: no copy of client for a known one.
	if b, ok := c.buckets.Get(transient(client)); ok {
		return b, false
	}
	b = rate.NewLimiter(c.limit, c.burst)
	prev, found, evicted := c.buckets.PeekOrAdd(string(client), b)
	if found { // another request of the client made it meanwhile
		return prev, false
	}
	return b, evicted
}

// Kinds of client id, its first byte, so an address never collides with a
// customer id.
const (
	clientCustomer = 'c'
	clientAddress  = 'a'
)

// clientID appends to dst the id of the request's client: customer (a
// proven customer id) when not empty, else its address.
func (s *Server) clientID(dst []byte, ctx *fasthttp.RequestCtx, customer string) []byte {
	if customer != "" {
		return append(append(dst, clientCustomer), customer...)
	}
	a := s.clientAddr(ctx).Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	b := a.As16()
	return append(append(dst, clientAddress), b[:]...)
}

// clientAddr is the request's client address: the one the trusted proxy
// put in Options.ClientIPHeader (the last of a list, which that proxy
// appended; with or without a port), else the connection's peer.
func (s *Server) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if s.clientIPHeader != "" {
		if h := ctx.Request.Header.Peek(s.clientIPHeader); len(h) > 0 {
			if i := bytes.LastIndexByte(h, ','); i >= 0 {
				h = h[i+1:]
			}
			h = bytes.TrimSpace(h)
			if a, err := netip.ParseAddr(transient(h)); err == nil {
				return a.WithZone("")
			}
			if ap, err := netip.ParseAddrPort(transient(h)); err == nil { // some proxies add the port
				return ap.Addr().WithZone("")
			}
		}
	}
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a
}

// admitPublic applies a public key's rate limits to a request whose body
// is parsed: its client's bucket first, so that a client over its rate is
// refused without spending the key's, then the key's. customer is the
// customer id a customer_token proved, "" for an anonymous request. It
// answers 429 with Retry-After and returns false when the request is
// refused.
func (s *Server) admitPublic(ctx *fasthttp.RequestCtx, key *keys.Key, customer string) bool {
	now := time.Now()
	var spent *rate.Reservation
	if cl := s.clients[key.Index()]; cl != nil {
		var buf [1 + maxIDLen]byte
		b, evicted := cl.bucket(s.clientID(buf[:0], ctx, customer))
		if evicted {
			s.clientBucketsEvicted.Inc()
		}
		spent = b.ReserveN(now, 1)
		if d := spent.DelayFrom(now); d > 0 {
			spent.CancelAt(now)
			s.clientRateLimited.Inc()
			s.tooManyRequests(ctx, fmt.Sprintf("too many requests from this client with key %q (over %g per second)", key.Name, key.ClientRate), d)
			return false
		}
	}
	if ok, retry := key.Allow(now); !ok {
		if spent != nil {
			spent.CancelAt(now) // the client did not get its request either
		}
		s.tooManyRequests(ctx, fmt.Sprintf("key %q is over its rate of %g requests per second", key.Name, key.Rate), retry)
		return false
	}
	return true
}

// tooManyRequests answers 429 with msg and a Retry-After of retry (at
// least a second).
func (s *Server) tooManyRequests(ctx *fasthttp.RequestCtx, msg string, retry time.Duration) {
	s.rateLimited.Inc()
	writeError(ctx, &apiError{code: CodeRateLimited, msg: msg})
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
}
