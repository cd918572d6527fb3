package rules_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkLoadRetail measures a (re)load of the example catalog: parse,
// validate and compile every expression, as nextbest does at start and on
// every reload.
func BenchmarkLoadRetail(b *testing.B) {
	data, err := os.ReadFile("../examples/retail/catalog.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := rules.Load("catalog.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad100 measures a load of the generated 100-offer, 20-segment
// catalog of BenchmarkDecide100.
func BenchmarkLoad100(b *testing.B) {
	data := catalogtest.Generate(catalogtest.Options{})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := rules.Load("generated.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad1000 measures a start-up or reload of a generated catalog
// of 1,000 offers and 20 segments (issue 12), and reports the heap the
// compiled catalog retains per offer (retained-B/offer).
func BenchmarkLoad1000(b *testing.B) {
	data := catalogtest.Generate(catalogtest.Options{Offers: 1000, Segments: 20})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := rules.Load("generated.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := rules.Load("generated.yaml", data)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(c.Offers)), "retained-B/offer")
	runtime.KeepAlive(c)
}
