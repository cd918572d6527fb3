package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"
)

// Scope is a set of permissions of an API key.
type Scope uint8

// Scopes.
const (
	ScopeDecide   Scope = 1 << iota // POST /v1/decide
	ScopeEvents                     // POST /v1/events
	ScopeProfiles                   // GET and PUT /v1/customers/{id}
	ScopeAdmin                      // catalog administration, stats, metrics
)

var scopeNames = []struct {
	s    Scope
	name string
}{{ScopeDecide, "decide"}, {ScopeEvents, "events"}, {ScopeProfiles, "profiles"}, {ScopeAdmin, "admin"}}

// ParseScopes parses "decide,events".
func ParseScopes(s string) (Scope, error) {
	var sc Scope
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		i := slices.IndexFunc(scopeNames, func(x struct {
			s    Scope
			name string
		}) bool {
			return x.name == part
		})
		if i < 0 {
			return 0, fmt.Errorf("scope %q is not one of decide, events, profiles, admin", part)
		}
		sc |= scopeNames[i].s
	}
	return sc, nil
}

func (s Scope) String() string {
	var names []string
	for _, x := range scopeNames {
		if s&x.s != 0 {
			names = append(names, x.name)
		}
	}
	return strings.Join(names, ",")
}

// publicScopes are all a public key may hold.
const publicScopes = ScopeDecide | ScopeEvents

// Key is one API key, known by the SHA-256 of its secret.
type Key struct {
	Name    string
	Hash    [sha256.Size]byte
	Scopes  Scope
	Public  bool     // for browsers and apps: decide and events only, customers proven by a customer_token
	Origins []string // browser origins a public key may be used from (CORS)
	Rate    float64  // requests per second; 0: unlimited
	Burst   int
	// ClientRate, ClientBurst and ClientBuckets limit each client of a
	// public key (see clientLimits): ClientRate requests per second with a
	// burst of ClientBurst, in at most ClientBuckets buckets. ClientRate 0:
	// no per-client limit.
	ClientRate    float64
	ClientBurst   int
	ClientBuckets int

	index   int // in the keyring, for the server's per-key state
	limiter *rate.Limiter
}

// Keyring is the set of API keys a server accepts. It is immutable once
// built and safe for concurrent use.
type Keyring struct {
	keys    []*Key
	origins map[string]bool // every public key's origins, for preflights
}

// KeyPrefix starts every key nextbest generates, so a leaked one is easy
// to recognise (secret scanners, logs).
const KeyPrefix = "nbk_"

// GenerateKey returns a new random key: KeyPrefix and 32 random bytes in
// unpadded base64url.
func GenerateKey() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashKey is the stored form of a key: "sha256:" and the hex digest.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

// KeysFile is the YAML form of a keyring (see ParseKeys).
type KeysFile struct {
	Keys []KeyEntry `yaml:"keys"`
}

// KeyEntry is one key of a KeysFile.
type KeyEntry struct {
	Name    string   `yaml:"name"`
	Hash    string   `yaml:"hash"`
	Scopes  []string `yaml:"scopes"`
	Public  bool     `yaml:"public,omitempty"`
	Origins []string `yaml:"origins,omitempty"`
	Rate    float64  `yaml:"rate,omitempty"`
	Burst   int      `yaml:"burst,omitempty"`
	// ClientRate is nil when the file does not set it: a public key then
	// gets DefaultClientRate; 0 turns the per-client limit off.
	ClientRate    *float64 `yaml:"client_rate,omitempty"`
	ClientBurst   int      `yaml:"client_burst,omitempty"`
	ClientBuckets int      `yaml:"client_buckets,omitempty"`
	Created       string   `yaml:"created,omitempty"`
}

// Per-client limits of a public key when its entry sets none.
const (
	// DefaultClientRate is the requests per second one client of a public
	// key may make: well above what a page or an app makes for one person
	// (a few decisions and events per view), well below a site's rate.
	DefaultClientRate = 20
	// DefaultClientBuckets bounds the clients whose buckets a public key
	// remembers, least recently seen first out: about 15 MiB (240 bytes a
	// bucket with short ids, measured; up to twice that with 256-byte
	// ids). A bucket forgotten is one refilled, so the bound needs to hold
	// the clients seen within a burst's refill time
	// (client_burst/client_rate, a second by default), not all clients.
	DefaultClientBuckets = 1 << 16
)

// ParseKeys reads a keyring in YAML:
//
//	keys:
//	  - name: website
//	    hash: sha256:9f86d0...   # nextbest keys create prints the key once and stores this
//	    scopes: [decide, events]
//	    public: true
//	    origins: [https://shop.example.com]
//	    rate: 50                 # requests per second, token bucket
//	    burst: 100
//	    client_rate: 20          # per client (customer or address) of a public key
//	    client_burst: 20
//	    client_buckets: 65536    # clients remembered, least recently seen out
//
// Errors name the file, the key and the field.
func ParseKeys(file string, data []byte) (*Keyring, error) {
	var kf KeysFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&kf); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	kr := &Keyring{origins: map[string]bool{}}
	names := map[string]bool{}
	var errs []string
	bad := func(i int, e KeyEntry, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: keys[%d] %q: %s", file, i, e.Name, fmt.Sprintf(format, args...)))
	}
	for i, e := range kf.Keys {
		k := &Key{Name: e.Name, Public: e.Public, Rate: e.Rate, Burst: e.Burst, index: len(kr.keys)}
		switch {
		case e.Name == "":
			bad(i, e, "name: required")
			continue
		case names[e.Name]:
			bad(i, e, "name: declared twice")
			continue
		}
		names[e.Name] = true
		hexHash, ok := strings.CutPrefix(e.Hash, "sha256:")
		if b, err := hex.DecodeString(hexHash); !ok || err != nil || len(b) != sha256.Size {
			bad(i, e, "hash: want sha256: and 64 hex digits (nextbest keys create writes it)")
		} else {
			copy(k.Hash[:], b)
		}
		if len(e.Scopes) == 0 {
			bad(i, e, "scopes: at least one of decide, events, profiles, admin")
		}
		for _, s := range e.Scopes {
			sc, err := ParseScopes(s)
			if err != nil {
				bad(i, e, "scopes: %v", err)
			}
			k.Scopes |= sc
		}
		if k.Public && k.Scopes&^publicScopes != 0 {
			bad(i, e, "scopes: a public key may only have decide and events")
		}
		if len(e.Origins) > 0 && !k.Public {
			bad(i, e, "origins: only public keys are used from browsers")
		}
		for _, o := range e.Origins {
			if err := checkOrigin(o); err != nil {
				bad(i, e, "origins: %v", err)
				continue
			}
			k.Origins = append(k.Origins, o)
			kr.origins[o] = true
		}
		if e.Rate < 0 || math.IsInf(e.Rate, 0) || math.IsNaN(e.Rate) || e.Burst < 0 {
			bad(i, e, "rate, burst: must not be negative")
		}
		if k.Rate > 0 {
			if k.Burst == 0 {
				k.Burst = max(1, int(math.Ceil(k.Rate)))
			}
			k.limiter = rate.NewLimiter(rate.Limit(k.Rate), k.Burst)
		}
		if err := k.setClientLimits(e); err != nil {
			bad(i, e, "%v", err)
		}
		kr.keys = append(kr.keys, k)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	if len(kr.keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", file)
	}
	return kr, nil
}

// setClientLimits sets k's per-client limits from e: a public key's
// defaults, or e's. A key that is not public is one client, a server.
func (k *Key) setClientLimits(e KeyEntry) error {
	if !k.Public {
		if e.ClientRate != nil || e.ClientBurst != 0 || e.ClientBuckets != 0 {
			return errors.New("client_rate, client_burst, client_buckets: only public keys are limited per client")
		}
		return nil
	}
	k.ClientRate, k.ClientBuckets = DefaultClientRate, DefaultClientBuckets
	if e.ClientRate != nil {
		k.ClientRate = *e.ClientRate
	}
	if e.ClientBuckets != 0 {
		k.ClientBuckets = e.ClientBuckets
	}
	if k.ClientRate < 0 || math.IsInf(k.ClientRate, 0) || math.IsNaN(k.ClientRate) || e.ClientBurst < 0 || k.ClientBuckets < 0 {
		return errors.New("client_rate, client_burst, client_buckets: must not be negative")
	}
	k.ClientBurst = e.ClientBurst
	if k.ClientRate > 0 && k.ClientBurst == 0 {
		k.ClientBurst = max(1, int(math.Ceil(k.ClientRate)))
	}
	return nil
}

// checkOrigin accepts a browser origin: scheme://host[:port], no path, no
// wildcard.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || strings.Contains(o, "*") {
		return fmt.Errorf("%q is not an origin like https://shop.example.com (no path, no wildcard)", o)
	}
	if strings.HasSuffix(o, "/") {
		return fmt.Errorf("%q: an origin has no trailing slash", o)
	}
	return nil
}

// HasPublic reports whether any key is public (and so needs the customer
// token secret).
func (kr *Keyring) HasPublic() bool {
	return slices.ContainsFunc(kr.keys, func(k *Key) bool { return k.Public })
}

// Len is the number of keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// lookup returns the key whose secret is token, comparing the digests in
// constant time, every key each time.
func (kr *Keyring) lookup(token []byte) *Key {
	h := sha256.Sum256(token)
	var found *Key
	for _, k := range kr.keys {
		if subtle.ConstantTimeCompare(h[:], k.Hash[:]) == 1 {
			found = k
		}
	}
	return found
}

// allows reports whether k may be used from origin.
func (k *Key) allows(origin []byte) bool {
	for _, o := range k.Origins {
		if o == string(origin) {
			return true
		}
	}
	return false
}

// wait reports whether k may make a request now; if not, how long until
// it may.
func (k *Key) wait(now time.Time) (ok bool, retry time.Duration) {
	if k.limiter == nil {
		return true, 0
	}
	r := k.limiter.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// CustomerToken is what a brand's backend gives its web page or app to
// prove a customer id: hex(HMAC-SHA256(secret, customer_id)).
func CustomerToken(secret []byte, customerID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(customerID))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyCustomerToken reports whether token proves customerID, in
// constant time.
func VerifyCustomerToken(secret []byte, customerID, token []byte) bool {
	if len(secret) == 0 || len(token) != 2*sha256.Size {
		return false
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], token); err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(customerID)
	var want [sha256.Size]byte
	return hmac.Equal(got[:], m.Sum(want[:0]))
}

// scopeOf is the scope a route needs; 0 for the open ones (health).
func scopeOf(path []byte) Scope {
	switch string(path) {
	case "/v1/decide":
		return ScopeDecide
	case "/v1/events":
		return ScopeEvents
	case "/healthz", "/readyz":
		return 0
	}
	if bytes.HasPrefix(path, []byte(customersPrefix)) {
		return ScopeProfiles
	}
	return ScopeAdmin // /v1/stats, /v1/admin/..., /metrics, and unknown routes
}

var bearer = []byte("Bearer ")

// authenticate checks the request's key for scope need: its presence (401),
// its scope and, for a public key used from a browser, its origin (403),
// and the rate of a key that is not public (429; a public key's rates are
// checked by admitPublic). It writes the error and returns nil, or returns
// the key, having set the CORS headers a browser needs.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, need Scope) *Key {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	token, ok := bytes.CutPrefix(h, bearer)
	if !ok || len(token) == 0 {
		s.unauthorized.Inc()
		writeError(ctx, &apiError{code: CodeUnauthorized, msg: "missing API key: send Authorization: Bearer <key>"})
		return nil
	}
	key := s.keys.lookup(token)
	if key == nil {
		s.unauthorized.Inc()
		writeError(ctx, &apiError{code: CodeUnauthorized, msg: "unknown API key"})
		return nil
	}
	if origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin); len(origin) > 0 && key.Public {
		if !key.allows(origin) {
			s.forbidden.Inc()
			writeError(ctx, &apiError{code: CodeForbidden, msg: fmt.Sprintf("origin %q is not allowed for key %q", origin, key.Name)})
			return nil
		}
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
		ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
	}
	if key.Scopes&need == 0 {
		s.forbidden.Inc()
		writeError(ctx, &apiError{code: CodeForbidden, msg: fmt.Sprintf("key %q does not have the %s scope", key.Name, need)})
		return nil
	}
	if key.Public {
		// Limited per client as well, once the body says who the client
		// is: the handler calls admitPublic.
		return key
	}
	if ok, retry := key.wait(time.Now()); !ok {
		s.tooManyRequests(ctx, fmt.Sprintf("key %q is over its rate of %g requests per second", key.Name, key.Rate), retry)
		return nil
	}
	return key
}

// preflight answers a browser's CORS preflight (OPTIONS): allowed for an
// origin some public key lists, for the routes public keys may call. It
// never allows credentials and never answers with a wildcard.
func (s *Server) preflight(ctx *fasthttp.RequestCtx) {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	path := ctx.Path()
	route := string(path) == "/v1/decide" || string(path) == "/v1/events"
	if len(origin) == 0 || !route || !s.keys.origins[string(origin)] {
		s.forbidden.Inc()
		writeError(ctx, &apiError{code: CodeForbidden, msg: "CORS preflight refused: the origin is not allowed for this route"})
		return
	}
	h := &ctx.Response.Header
	h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	h.Set(fasthttp.HeaderAccessControlAllowMethods, "POST, OPTIONS")
	h.Set(fasthttp.HeaderAccessControlAllowHeaders, "Authorization, Content-Type")
	h.Set(fasthttp.HeaderAccessControlMaxAge, "600")
	h.Set(fasthttp.HeaderVary, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
