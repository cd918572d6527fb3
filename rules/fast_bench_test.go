package rules

import (
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

// BenchmarkRules100 evaluates what one web decision over the generated
// 100-offer / 20-segment catalog evaluates (every segment, every web
// offer's eligibility), on the specialised evaluator and on expr's VM, so
// the commit introducing fast.go carries its measurement.
func BenchmarkRules100(b *testing.B) {
	data := catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20})
	for _, tc := range []struct {
		name   string
		noFast bool
	}{{"fast", false}, {"vm", true}} {
		b.Run(tc.name, func(b *testing.B) {
			l := &loader{file: "generated.yaml", noFast: tc.noFast}
			c := l.load(data)
			if len(l.errs) > 0 {
				b.Fatal(l.errs)
			}
			web, _ := c.Channel("web")
			vecs := catalogtest.Population{}.Vectors(c.Schema, 1024)
			var env Env
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				env.Reset(c)
				env.Customer = vecs[i%len(vecs)]
				env.Channel, env.Now = "web", catalogtest.Epoch
				for _, s := range c.Segments {
					if ok, _ := s.Rule.Eval(&env); ok {
						env.AddSegment(s)
					}
				}
				for _, o := range c.OffersFor(web) {
					_, _ = o.Eligible.Eval(&env)
				}
				i++
			}
		})
	}
}
