package embedded_test

import (
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

// BenchmarkScanCustomers measures a full scan of the customers' ids (a
// batch of decisions over a segment scans the store), in pages of 1,000,
// over 100k and 1M customers whose records hold about 450 bytes
// (storetest.BenchScan). The pages after the first are read from pebble's
// block cache when the store fits in it; the first scan after a start
// reads the disk (docs/benchmarks.md, issue 13).
func BenchmarkScanCustomers(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			storetest.BenchScan(b, open(b, embedded.Options{NoSync: true}), n)
		})
	}
}
