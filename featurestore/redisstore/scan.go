package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ScanCustomers returns a page of the ids of the customers the store
// holds a record of, from cursor ("" for the first page), and the cursor
// of the next page ("" once the scan is done). It runs SCAN with MATCH on
// the record key pattern (`<prefix>{*}`) and COUNT count, on each master
// of a cluster in turn (ordered by address) or on the one server: a
// page holds about count keys examined, of which only the record keys
// are returned (a page may be empty while the scan is not done).
//
// The cursor is SCAN's own, with the master's address on a cluster
// (`<addr>#<cursor>`): ids come in SCAN's order, not by id, and SCAN's
// guarantees hold: every customer stored for the whole scan is returned,
// some may be returned twice (while Redis resizes its table, or a slot
// migrates between masters), and one created or deleted during the scan
// may or may not be. A cursor names its master: once that master has
// left the cluster, resuming from it is an error. A scan costs Redis one
// step of SCAN per count keys of the whole key space (dedupe entries and
// statistics included), spread over as many round trips.
//
// No other key of the store may end in '}' (the dedupe entries end in
// their id's length), or a scan would take it for a customer.
func (s *Store) ScanCustomers(ctx context.Context, cursor string, count int) (ids []string, next string, err error) {
	if count <= 0 {
		return nil, "", fmt.Errorf("redisstore: scan: count %d, must be positive", count)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	match := globEscape(s.prefix) + "{*}"
	cc, cluster := s.c.(*redis.ClusterClient)
	if !cluster {
		n, err := parseCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		keys, n, err := s.c.Scan(ctx, n, match, int64(count)).Result()
		if err != nil {
			return nil, "", fmt.Errorf("redisstore: scan: %w", err)
		}
		if n != 0 {
			next = strconv.FormatUint(n, 10)
		}
		return s.idsOf(keys), next, nil
	}
	masters, err := mastersOf(ctx, cc)
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: scan: %w", err)
	}
	addr, n := "", uint64(0)
	if cursor != "" {
		a, c, ok := strings.Cut(cursor, "#")
		if !ok {
			return nil, "", fmt.Errorf("redisstore: scan: cursor %q is not a cluster cursor (<addr>#<n>)", cursor)
		}
		if n, err = parseCursor(c); err != nil {
			return nil, "", err
		}
		addr = a
	} else if len(masters) > 0 {
		addr = masters[0].Options().Addr
	}
	i := slices.IndexFunc(masters, func(m *redis.Client) bool { return m.Options().Addr == addr })
	if i < 0 {
		return nil, "", fmt.Errorf("redisstore: scan: cursor %q: master %s is no longer in the cluster; start the scan again", cursor, addr)
	}
	keys, n, err := masters[i].Scan(ctx, n, match, int64(count)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: scan %s: %w", addr, err)
	}
	switch {
	case n != 0:
		next = addr + "#" + strconv.FormatUint(n, 10)
	case i+1 < len(masters):
		next = masters[i+1].Options().Addr + "#0"
	}
	return s.idsOf(keys), next, nil
}

// idsOf returns the customer ids of record keys.
func (s *Store) idsOf(keys []string) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		// <prefix>{<id>}: MATCH checked the shape.
		if len(k) >= len(s.prefix)+2 && strings.HasPrefix(k, s.prefix) {
			ids = append(ids, k[len(s.prefix)+1:len(k)-1])
		}
	}
	return ids
}

func parseCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: scan: cursor %q is not a SCAN cursor", c)
	}
	return n, nil
}

// mastersOf returns the cluster's masters, ordered by address, so that a
// scan visits them in the same order every time.
func mastersOf(ctx context.Context, cc *redis.ClusterClient) ([]*redis.Client, error) {
	var (
		mu      sync.Mutex
		masters []*redis.Client
	)
	err := cc.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
		mu.Lock()
		masters = append(masters, m)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(masters, func(a, b *redis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
	return masters, nil
}

// globEscape escapes the characters SCAN's MATCH pattern treats as
// special, so a prefix is matched literally.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		if strings.IndexByte(`*?[]\`, c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
