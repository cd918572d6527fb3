package embedded_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
)

// BenchmarkScanCustomers measures a full scan of the customers' ids (a
// batch of decisions over a segment scans the store), in pages of 1,000,
// over 100k and 1M customers whose records hold about 450 bytes (a
// 400-byte profile attribute). One iteration is a whole scan; ids/s is
// reported. The pages after the first are read from pebble's block
// cache when the store fits in it; the first scan after a start reads
// the disk (docs/benchmarks.md, issue 13).
func BenchmarkScanCustomers(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			s := open(b, embedded.Options{NoSync: true})
			pad := featurestore.String(strings.Repeat("x", 400))
			var muts []featurestore.Mutation
			for i := range n {
				muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%07d", i), map[string]featurestore.Value{"tier": pad}))
				if len(muts) == 10_000 || i == n-1 {
					if _, err := s.Mutate(context.Background(), muts); err != nil {
						b.Fatal(err)
					}
					muts = muts[:0]
				}
			}
			ctx := context.Background()
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
				if got != n {
					b.Fatalf("scanned %d, want %d", got, n)
				}
				scanned += got
			}
			b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "ids/s")
		})
	}
}
