package decisionlog_test

import (
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkSetFeatures encodes the features of customers of the
// generated population under the generated catalog's schema (18
// features), as a logged decision does on the decision path.
func BenchmarkSetFeatures(b *testing.B) {
	cat, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20}))
	if err != nil {
		b.Fatal(err)
	}
	vecs := catalogtest.Population{}.Vectors(cat.Schema, 100)
	var e decisionlog.Entry
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		e.SetFeatures(cat.Schema, vecs[i%100])
		i++
	}
}
