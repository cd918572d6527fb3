package keys

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"
)

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
	// public key: ClientRate requests per second with a burst of
	// ClientBurst, in at most ClientBuckets buckets (the server keeps
	// them). ClientRate 0: no per-client limit.
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

// Parse reads a keyring in YAML:
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
func Parse(file string, data []byte) (*Keyring, error) {
	var kf File
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&kf); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	kr := &Keyring{origins: map[string]bool{}}
	names := map[string]bool{}
	var errs []string
	bad := func(i int, e Entry, format string, args ...any) {
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
func (k *Key) setClientLimits(e Entry) error {
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

// Keys are the keys in the order of the file; a key's Index is its
// position. The slice is the keyring's: do not modify it.
func (kr *Keyring) Keys() []*Key { return kr.keys }

// Lookup returns the key whose secret is token, nil if none, comparing
// the digests in constant time, every key each time.
func (kr *Keyring) Lookup(token []byte) *Key {
	h := sha256.Sum256(token)
	var found *Key
	for _, k := range kr.keys {
		if subtle.ConstantTimeCompare(h[:], k.Hash[:]) == 1 {
			found = k
		}
	}
	return found
}

// PublicOrigin reports whether some public key may be used from origin.
func (kr *Keyring) PublicOrigin(origin []byte) bool { return kr.origins[string(origin)] }

// Index is k's position in its keyring, for state a server keeps per key.
func (k *Key) Index() int { return k.index }

// AllowsOrigin reports whether k may be used from origin.
func (k *Key) AllowsOrigin(origin []byte) bool {
	for _, o := range k.Origins {
		if o == string(origin) {
			return true
		}
	}
	return false
}

// Allow reports whether k's rate allows a request at now, spending a
// token if so; if not, how long until it would.
func (k *Key) Allow(now time.Time) (ok bool, retry time.Duration) {
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
