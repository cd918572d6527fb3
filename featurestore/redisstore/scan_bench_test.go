package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/internal/redistest"
)

// BenchmarkScanCustomers is embedded's BenchmarkScanCustomers on a
// loopback redis-server: a full scan of the customers' ids (SCAN MATCH
// on the record keys, COUNT 1,000 a page) over 100k and 1M customers of
// about 450 bytes each. One iteration is a whole scan; ids/s is reported.
// SCAN may return a key twice while Redis rehashes: the scan must list
// every customer at least once.
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
			ctx := context.Background()
			pad := featurestore.String(strings.Repeat("x", 400))
			var muts []featurestore.Mutation
			for i := range n {
				muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%07d", i), map[string]featurestore.Value{"tier": pad}))
				if len(muts) == 1000 || i == n-1 {
					if _, err := s.Mutate(ctx, muts); err != nil {
						b.Fatal(err)
					}
					muts = muts[:0]
				}
			}
			scanned := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cursor, got := "", 0
				for {
					ids, next, err := s.ScanCustomers(ctx, cursor, 1000)
					if err != nil {
						b.Fatal(err)
					}
					got += len(ids)
					if next == "" {
						break
					}
					cursor = next
				}
				if got < n {
					b.Fatalf("scanned %d, want at least %d", got, n)
				}
				scanned += got
			}
			b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "ids/s")
		})
	}
}
