package decision_test

import (
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkDecideScoped is a web decision over the generated catalog of
// 100 offers and 20 segments, limit 3, customers cycling, with one
// experiment: on every decision (unscoped), scoped to the web and a
// segment (scoped), and with a 5% global holdout besides (holdout). The
// scope check is a channel comparison and a segment bit per experiment;
// see docs/benchmarks.md, issue 14, scoped experiments.
func BenchmarkDecideScoped(b *testing.B) {
	experiment := `
experiments:
  - id: ranking
%s    variants: [{name: learned, weight: 8}, {name: static, weight: 1, arbitration: static}, {name: holdout, weight: 1, holdout: true}]
`
	for _, bc := range []struct{ name, scope, holdout string }{
		{"unscoped", "", ""},
		{"scoped", "    channels: [web, app]\n    segment: segment_01\n", ""},
		{"holdout", "    channels: [web, app]\n    segment: segment_01\n", "holdout: {share: 0.05}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := string(catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20})) + fmt.Sprintf(experiment, bc.scope) + bc.holdout
			c, err := rules.Load("generated.yaml", []byte(src))
			if err != nil {
				b.Fatal(err)
			}
			benchDecide(b, c, decision.Request{CustomerID: "customer-42", Channel: "web", Limit: 3})
		})
	}
}
