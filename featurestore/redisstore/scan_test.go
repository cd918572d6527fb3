package redisstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/featurestore/storetest"
	"github.com/nextbest/nextbest/internal/redistest"
)

// scanOpener returns stores sharing one client, each under its own key
// prefix (prefixes holding glob characters among them), so every subtest
// scans only its own customers.
func scanOpener(c redis.UniversalClient) func(t *testing.T) storetest.Scanner {
	var n atomic.Int64
	return func(t *testing.T) storetest.Scanner {
		prefix := fmt.Sprintf("scan%d:", n.Add(1))
		if n.Load()%2 == 0 {
			prefix = fmt.Sprintf("scan[%d]*:", n.Load())
		}
		s, err := redisstore.New(redisstore.Options{Client: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestScanStandalone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	storetest.RunScan(t, scanOpener(c))
}

// TestScanCluster scans every master of a real three-master cluster.
func TestScanCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	t.Cleanup(func() { c.Close() })
	storetest.RunScan(t, scanOpener(c))
}
