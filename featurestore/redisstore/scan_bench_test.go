package redisstore_test

import (
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/featurestore/storetest"
	"github.com/nextbest/nextbest/internal/redistest"
)

// BenchmarkScanCustomers is embedded's BenchmarkScanCustomers on a
// loopback redis-server (storetest.BenchScan): a full scan of the
// customers' ids (SCAN MATCH on the record keys, COUNT 1,000 a page) over
// 100k and 1M customers of about 450 bytes each.
func BenchmarkScanCustomers(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			srv := redistest.Start(b, redistest.Options{})
			c, err := redisstore.NewClient("redis://"+srv.Addr+"/0", redisstore.ClientOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			s, err := redisstore.New(redisstore.Options{Client: c})
			if err != nil {
				b.Fatal(err)
			}
			storetest.BenchScan(b, s, n)
		})
	}
}
