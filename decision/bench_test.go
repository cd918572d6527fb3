package decision_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// customers is the spread of customers every decision benchmark cycles
// through, so that rules do not short-circuit the same way every time.
const customers = 1024

// benchDecide measures one decision per iteration for customers of a
// Population on the given request, reusing the Result as a server does.
func benchDecide(b *testing.B, c *rules.Catalog, req decision.Request) {
	vecs := catalogtest.Population{}.Vectors(c.Schema, customers)
	// A request naming a customer cycles through customer ids too, so
	// experiment variants vary as features do.
	var ids []string
	if req.CustomerID != "" {
		for i := range customers {
			ids = append(ids, fmt.Sprintf("customer-%d", i))
		}
	}
	var eng decision.Engine
	var res decision.Result
	req.Now = catalogtest.Epoch
	offers := 0
	b.ReportAllocs()
	i := 0
	// The garbage of compiling the catalog is collected now, not during
	// the decisions measured.
	runtime.GC()
	cpu0 := cpuTime(b)
	for b.Loop() {
		if ids != nil {
			req.CustomerID = ids[i%customers]
		}
		if err := eng.Decide(c, vecs[i%customers], &req, &res); err != nil {
			b.Fatal(err)
		}
		offers += len(res.Offers)
		i++
	}
	// On a shared machine the wall clock measures the neighbours too: the
	// process's CPU time per decision is what the decision costs.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(i), "cpu-ns/op")
	b.ReportMetric(float64(offers)/float64(i), "offers/op")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecideRetail is a web decision over the example retail
// catalog (32 offers, 8 segments), on a product page, limit 3.
func BenchmarkDecideRetail(b *testing.B) {
	c := retailCatalog(b)
	benchDecide(b, c, decision.Request{Channel: "web", Limit: 3, Context: map[string]any{"page": "product"}})
}

// BenchmarkDecide100 is a web decision over a generated catalog of 100
// offers and 20 segments, limit 3: issue 3's engine target.
func BenchmarkDecide100(b *testing.B) {
	c, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20}))
	if err != nil {
		b.Fatal(err)
	}
	benchDecide(b, c, decision.Request{Channel: "web", Limit: 3})
}

// BenchmarkDecide100Explain is BenchmarkDecide100 with explanations,
// which evaluate every offer of the catalog and each failing conjunct.
func BenchmarkDecide100Explain(b *testing.B) {
	c, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20}))
	if err != nil {
		b.Fatal(err)
	}
	benchDecide(b, c, decision.Request{Channel: "web", Limit: 3, Explain: true})
}

// BenchmarkFeatures measures turning a stored record into the feature
// vector a decision reads, which the server does before every decision.
func BenchmarkFeatures(b *testing.B) {
	c := retailCatalog(b)
	p := catalogtest.Population{}
	records := make([]*featurestore.Record, customers)
	for i := range records {
		cust := p.Customer(i)
		records[i] = cust.Record(c.Schema, catalogtest.Epoch)
	}
	var vec featurestore.Vector
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		vec = records[i%customers].Features(c.Schema, catalogtest.Epoch, vec)
		i++
	}
}

// BenchmarkDecide100Full is BenchmarkDecide100 with every decisioning
// feature of issue 5 in play: propensities learned per segment (a
// statistics cell for every offer and segment), Thompson sampling, an
// experiment of three variants, stickiness, a contact policy and a
// 50-contact history to check caps against.
func BenchmarkDecide100Full(b *testing.B) {
	src := string(catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20})) + `
learning: {learn_by: segment}
sticky: 24h
contact_policy: {max_offers: 100, within: 1d}
experiments:
  - id: ranking
    variants: [{name: learned, weight: 8}, {name: static, weight: 1, arbitration: static}, {name: holdout, weight: 1, holdout: true}]
`
	c, err := rules.Load("generated.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	cells := map[featurestore.StatKey]featurestore.Counts{}
	for _, o := range c.Offers {
		for _, s := range append([]*rules.Segment{{Name: ""}}, c.Segments...) {
			cells[featurestore.StatKey{Offer: o.ID, Channel: "web", Key: s.Name}] = featurestore.Counts{Impressions: 1000, Conversions: int64(10 + o.Index%20)}
		}
	}
	var history []featurestore.Contact
	for i := range 50 {
		o := c.Offers[i*2]
		history = append(history, featurestore.Contact{OfferID: o.ID, Channel: "app", Kind: featurestore.Impression, At: catalogtest.Epoch.Add(-time.Duration(50-i) * time.Hour).UnixNano()})
	}
	benchDecide(b, c, decision.Request{CustomerID: "customer-42", Channel: "web", Limit: 3, Learned: featurestore.NewLearnTable(cells), History: history})
}

// BenchmarkDecideOffers is the scaling curve in the number of offers: a
// web decision, limit 3, over generated catalogs of 20 segments and 10 to
// 5,000 offers (issue 12). Each sub-benchmark reports the offers eligible
// per decision.
func BenchmarkDecideOffers(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c, err := rules.Compile("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: n, Segments: 20}), rules.Options{MaxOffers: n})
			if err != nil {
				b.Fatal(err)
			}
			benchDecide(b, c, decision.Request{Channel: "web", Limit: 3})
		})
	}
}

// BenchmarkDecideSegments is the scaling curve in the number of segments:
// a web decision, limit 3, over generated catalogs of 100 offers and 10 to
// 200 segments.
func BenchmarkDecideSegments(b *testing.B) {
	for _, n := range []int{10, 20, 50, 100, 200} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: n}))
			if err != nil {
				b.Fatal(err)
			}
			benchDecide(b, c, decision.Request{Channel: "web", Limit: 3})
		})
	}
}

// BenchmarkDecideOffersStatic is BenchmarkDecideOffers at 1,000 and 5,000
// offers under arbitration: static, which ranks by value × weight and
// draws no propensity: what judging the eligible offers costs without a
// Beta draw for each.
func BenchmarkDecideOffersStatic(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src := string(catalogtest.Generate(catalogtest.Options{Offers: n, Segments: 20})) + "arbitration: static\n"
			c, err := rules.Compile("generated.yaml", []byte(src), rules.Options{MaxOffers: n})
			if err != nil {
				b.Fatal(err)
			}
			benchDecide(b, c, decision.Request{Channel: "web", Limit: 3})
		})
	}
}

// BenchmarkDecide100Propensities is BenchmarkDecide100 with the
// propensities a logged decision estimates: 32 re-draws
// (decision/propensity.go).
func BenchmarkDecide100Propensities(b *testing.B) {
	c, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20}))
	if err != nil {
		b.Fatal(err)
	}
	benchDecide(b, c, decision.Request{Channel: "web", Limit: 3, PropensitySamples: 32})
}
