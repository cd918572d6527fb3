package nextbest

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// modelRetail is the example catalog learning a model too.
func modelRetail(t testing.TB) *rules.Catalog {
	t.Helper()
	src, err := os.ReadFile("examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const at = "  learn_by: segment\n"
	if !strings.Contains(string(src), at) {
		t.Fatalf("examples/retail/catalog.yaml has no %q to add the model after", at)
	}
	withModel := strings.Replace(string(src), at, at+`  model:
    features:
      spend: min(customer.lifetime_value, 4000)
      app: 'customer.app_installed ? 1 : 0'
`, 1)
	cat, err := rules.Load("retail-model.yaml", []byte(withModel))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// learnedModel is learned statistics of cat with model sums: outcomes of
// every offer on every channel credited for customers of random spend,
// app and cart, as the outcome path credits them.
func learnedModel(t *testing.T, cat *rules.Catalog) *featurestore.LearnTable {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	e := &decision.Engine{}
	f := cat.Schema.Defaults(nil)
	ltv, _ := cat.Schema.Lookup("lifetime_value")
	app, _ := cat.Schema.Lookup("app_installed")
	cells := map[featurestore.StatKey]featurestore.Counts{}
	var deltas []featurestore.StatDelta
	var terms []float64
	for range 300 {
		f[ltv.Index] = featurestore.Number(float64(r.IntN(5000)))
		f[app.Index] = featurestore.Bool(r.IntN(2) == 0)
		for _, ch := range cat.ChannelNames() {
			terms = e.ModelTerms(terms, cat, f, ch, testNow)
			key := e.LearnKeyFor(cat, f, ch, testNow)
			for _, o := range cat.Offers {
				out := decision.Outcome{Kind: featurestore.Impression, OfferID: o.ID, Channel: ch, LearnKey: key, Time: testNow,
					Model: cat.Learning.Model, Terms: terms, Success: cat.Learning.Success}
				deltas = decision.AppendOutcomeDeltas(deltas[:0], &out)
				if r.Float64() < 0.1 {
					out.Kind = featurestore.Conversion
					deltas = decision.AppendOutcomeDeltas(deltas, &out)
				}
				for _, d := range deltas {
					if d.Key.Hour == 0 {
						n := cells[d.Key]
						n.Add(d.Counts)
						cells[d.Key] = n
					}
				}
			}
		}
	}
	return featurestore.NewLearnTable(cells)
}

// TestReenactModel: decisions of a catalog with a learning model log the
// model's predictions they drew from, and replay from the log alone (no
// model sums) decides them again identically.
func TestReenactModel(t *testing.T) {
	cat := modelRetail(t)
	log := &memLog{}
	svc, _ := newTestService(t, false, func(o *Options) {
		o.Catalog.Store(cat)
		o.DecisionLog, o.DecisionLogSample, o.PropensitySamples = log, 1, 16
		o.Stats = &fakeStats{learned: learnedModel(t, cat)}
	})
	customers := []string{"carter", "", "new-1"}
	channels := []string{"web", "app", "email", "call_center"}
	var d Decision
	for i := range 120 {
		d.Reset()
		req := Request{CustomerID: customers[i%len(customers)], Channel: channels[i%len(channels)], Limit: 1 + i%3}
		if err := svc.Decide(context.Background(), &req, &d); err != nil {
			t.Fatal(err)
		}
	}
	var modelReads, explored int
	for _, e := range log.entries {
		for _, l := range e.Learned {
			if l.Model {
				modelReads++
			}
		}
		if e.Explore == "thompson" && len(e.Offers) > 1 {
			explored++
		}
		re, err := Reenact(cat, e, ReenactOptions{})
		if err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		if diffs := Compare(e, re); diffs != nil {
			t.Errorf("%s: %v", e.ID, diffs)
		}
	}
	if modelReads == 0 || explored == 0 {
		t.Errorf("model reads logged %d, exploring decisions of several offers %d: want each > 0", modelReads, explored)
	}
}
