package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/nextbest/nextbest/featurestore"
)

// Merger is a Backend that merges customers (featurestore.Merge): the
// embedded store and redisstore.
type Merger interface {
	// ApplyMerge merges m.From into m.Into; the cache calls it holding
	// both customers' Locks.
	ApplyMerge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error)
	// RemoveAliases deletes the aliases that resolve to a customer and
	// returns them; it takes the locks it needs itself.
	RemoveAliases(ctx context.Context, customer string) ([]string, error)
}

var errNoMerge = errors.New("cache: the backend cannot merge customers")

// Merge merges m.From into m.Into through the backend (a Merger), holding
// both customers' locks, and leaves the cache holding Into's new record
// and From as an alias, which Load answers with a
// *featurestore.AliasError and a write refuses the same way, so that
// the caller resolves it to Into. If the backend fails, both customers'
// cached entries are dropped.
func (c *Cache) Merge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error) {
	b, ok := c.b.(Merger)
	if !ok {
		return featurestore.MergeResult{}, errNoMerge
	}
	groups := []featurestore.Group{{CustomerID: m.Into}, {CustomerID: m.From}}
	stripes := c.locks.Stripes(groups)
	c.locks.Lock(stripes)
	defer c.locks.Unlock(stripes)
	epoch := c.epoch.Load()
	res, err := b.ApplyMerge(ctx, m)
	for _, s := range stripes {
		c.gens[s].Add(1)
	}
	if err != nil {
		c.rc.Del(m.Into)
		c.rc.Del(m.From)
		return featurestore.MergeResult{}, err
	}
	var p featurestore.Packed
	if res.Record != nil {
		p = res.Record.Pack()
	}
	c.rc.SetWithTTL(m.Into, entry{rec: p, epoch: epoch}, cost(p), c.ttl)
	c.rc.SetWithTTL(m.From, entry{epoch: epoch, alias: featurestore.NewAliasError(m.From, m.Into)}, cost(nil), c.ttl)
	c.rc.Wait()
	return res, nil
}

// RemoveAliases deletes, through the backend (a Merger), every alias
// that resolves to customer and drops them from the cache, and returns
// them.
func (c *Cache) RemoveAliases(ctx context.Context, customer string) ([]string, error) {
	b, ok := c.b.(Merger)
	if !ok {
		return nil, errNoMerge
	}
	removed, err := b.RemoveAliases(ctx, customer)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, id := range removed {
		c.Invalidate(id)
	}
	return removed, nil
}
