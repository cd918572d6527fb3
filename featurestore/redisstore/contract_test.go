package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/featurestore/storetest"
	"github.com/nextbest/nextbest/internal/redistest"
)

// opener returns stores sharing one client, each under its own key
// prefix, so every subtest of the suite starts empty. Each is a
// storetest.Shared whose peer is another Store (and cache) on the same
// prefix, as another node would have.
func opener(c redis.UniversalClient, withCache bool) func(t *testing.T, o storetest.Options) storetest.Store {
	var n atomic.Int64
	open := func(t *testing.T, prefix string, o storetest.Options) storetest.Store {
		s, err := redisstore.New(redisstore.Options{Client: c, Prefix: prefix, Now: o.Now, DedupeWindow: o.DedupeWindow})
		if err != nil {
			t.Fatal(err)
		}
		if !withCache {
			return s
		}
		cs, err := cache.New(s, cache.Options{MaxCost: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cs.Close)
		return cs
	}
	return func(t *testing.T, o storetest.Options) storetest.Store {
		prefix := fmt.Sprintf("t%d:", n.Add(1))
		return node{open(t, prefix, o), func(t *testing.T) storetest.Store { return open(t, prefix, o) }}
	}
}

// node is a store with the means to open another node's store on the
// same data: a storetest.Shared.
type node struct {
	storetest.Store
	peer func(t *testing.T) storetest.Store
}

func (n node) Peer(t *testing.T) storetest.Store { return n.peer(t) }

// statsOpener is opener for the statistics suite, under prefixes of its
// own.
func statsOpener(c redis.UniversalClient) func(t *testing.T) featurestore.StatsStore {
	var n atomic.Int64
	return func(t *testing.T) featurestore.StatsStore {
		s, err := redisstore.New(redisstore.Options{Client: c, Prefix: fmt.Sprintf("s%d:", n.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestContractStandalone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, opener(c, false))
	t.Run("Stats", func(t *testing.T) { storetest.RunStats(t, statsOpener(c)) })
}

func TestContractStandaloneCached(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, opener(c, true))
}

// TestContractCluster runs the same suite against a real three-master
// Redis Cluster on loopback.
func TestContractCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, opener(c, false))
	t.Run("Stats", func(t *testing.T) { storetest.RunStats(t, statsOpener(c)) })
}

// identityOpener is opener for the identity suite: stores (and caches)
// that merge, each under a prefix of its own.
func identityOpener(c redis.UniversalClient, withCache bool) func(t *testing.T, o storetest.Options) storetest.IdentityStore {
	var n atomic.Int64
	return func(t *testing.T, o storetest.Options) storetest.IdentityStore {
		prefix := fmt.Sprintf("i%d:", n.Add(1))
		if withCache {
			prefix = "c" + prefix
		}
		s, err := redisstore.New(redisstore.Options{Client: c, Prefix: prefix, Now: o.Now, DedupeWindow: o.DedupeWindow})
		if err != nil {
			t.Fatal(err)
		}
		if !withCache {
			return s
		}
		cs, err := cache.New(s, cache.Options{MaxCost: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cs.Close)
		return cs
	}
}

func TestIdentityStandalone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	t.Run("Store", func(t *testing.T) { storetest.RunIdentity(t, identityOpener(c, false)) })
	t.Run("Cached", func(t *testing.T) { storetest.RunIdentity(t, identityOpener(c, true)) })
}

// TestIdentityCluster runs the identity suite on a three-master Redis
// Cluster, where the two ids of a merge are mostly in different slots on
// different masters.
func TestIdentityCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	t.Cleanup(func() { c.Close() })
	slot := func(id string) int64 {
		n, err := c.ClusterKeySlot(context.Background(), "{"+id+"}").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if slot("known-1") == slot("anon-7f3a") {
		t.Fatal("the suite's ids share a slot: the test proves nothing across slots")
	}
	storetest.RunIdentity(t, identityOpener(c, false))
}

// journalOpener returns stores for the journal suite, each under its own
// key prefix.
func journalOpener(c redis.UniversalClient) func(t *testing.T, o storetest.Options) storetest.JournalStore {
	var n atomic.Int64
	return func(t *testing.T, o storetest.Options) storetest.JournalStore {
		s, err := redisstore.New(redisstore.Options{Client: c, Prefix: fmt.Sprintf("j%d:", n.Add(1)), Now: o.Now, DedupeWindow: o.DedupeWindow, TimelineLength: o.TimelineLength})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestJournalContractStandalone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	storetest.RunJournal(t, journalOpener(c))
}

// TestJournalContractCluster runs the journal suite against a real
// three-master Redis Cluster: a customer's keys share one slot.
func TestJournalContractCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	t.Cleanup(func() { c.Close() })
	storetest.RunJournal(t, journalOpener(c))
}
