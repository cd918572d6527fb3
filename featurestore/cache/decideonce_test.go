package cache_test

import (
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
)

// decideOnce reads the customer's features as a decision does.
func decideOnce(tb testing.TB, c *cache.Cache, s *featurestore.Schema, id string, now time.Time) {
	p, ok := c.Cached(id)
	if !ok {
		tb.Fatalf("%s not cached", id)
	}
	var v featurestore.View
	v.Read(p, s, now)
}
