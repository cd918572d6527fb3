package decision_test

import (
	"os"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkDecideModel is BenchmarkDecideRetail under learned
// arbitration, by counts alone (counts) and with a learning model over
// the 8 segments and 3 numeric terms (model, 12 terms): what the model
// adds to a decision, its terms evaluated and each candidate's
// prediction (O(terms²)) drawn.
func BenchmarkDecideModel(b *testing.B) {
	src, err := os.ReadFile("../examples/retail/catalog.yaml")
	if err != nil {
		b.Fatal(err)
	}
	const at = "  learn_by: segment\n"
	for _, tt := range []struct{ name, add string }{
		{"counts", ""},
		{"model", at + `  model:
    features:
      spend: min(customer.lifetime_value, 4000)
      points: customer.loyalty_points
      app: 'customer.app_installed ? 1 : 0'
`},
	} {
		b.Run(tt.name, func(b *testing.B) {
			y := string(src)
			if tt.add != "" {
				y = strings.Replace(y, at, tt.add, 1)
			}
			c, err := rules.Load("retail.yaml", []byte(y))
			if err != nil {
				b.Fatal(err)
			}
			c.Arbitration = rules.Arbitration{}
			benchDecide(b, c, decision.Request{Channel: "web", Limit: 3, Context: map[string]any{"page": "product"}})
		})
	}
}
