package decision_test

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// modelCatalog has two offers of equal value whose success rates depend
// on the customer's x in opposite directions, and a segment on x; the
// model learns over both. explore is thompson or greedy.
func modelCatalog(t *testing.T, explore string) *rules.Catalog {
	t.Helper()
	src := `channels: [web]
features:
  x: {type: number, default: 0}
segments:
  high: customer.x >= 1
learning:
  explore: ` + explore + `
  min_explore: 0
  model:
    features: {x: customer.x}
offers:
  - {id: up, channels: [web], value: 10, content: {web: {headline: up}}}
  - {id: down, channels: [web], value: 10, content: {web: {headline: down}}}
`
	c, err := rules.Load("model.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// truthRate is the success rate of offer at x in modelCatalog's world.
func truthRate(offer string, x float64) float64 {
	if offer == "up" {
		return 0.02 + 0.08*x/2
	}
	return 0.10 - 0.08*x/2
}

// TestModelLearns: outcomes credited through AppendOutcomeDeltas, with
// the terms Engine.ModelTerms gives, teach the model each offer's rate
// as a function of x; a greedy decision then shows up to customers of
// high x and down to those of low x, and the propensity it reports is
// the true rate within sampling error.
func TestModelLearns(t *testing.T) {
	c := modelCatalog(t, "greedy")
	e := &decision.Engine{}
	f := c.Schema.Defaults(nil)
	xf, _ := c.Schema.Lookup("x")
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cells := map[featurestore.StatKey]featurestore.Counts{}
	var deltas []featurestore.StatDelta
	var terms []float64
	for range 40000 {
		x := float64(rng.IntN(3)) // 0, 1 or 2
		f[xf.Index] = featurestore.Number(x)
		terms = e.ModelTerms(terms, c, f, "web", now)
		if want := []float64{1, b2f(x >= 1), x}; !equalFloats(terms, want) {
			t.Fatalf("terms at x=%v: %v, want %v", x, terms, want)
		}
		for _, offer := range []string{"up", "down"} {
			o := decision.Outcome{Kind: featurestore.Impression, OfferID: offer, Channel: "web", Time: now,
				Model: c.Learning.Model, Terms: terms, Success: c.Learning.Success}
			deltas = decision.AppendOutcomeDeltas(deltas[:0], &o)
			if rng.Float64() < truthRate(offer, x) {
				o.Kind = featurestore.Conversion
				deltas = decision.AppendOutcomeDeltas(deltas, &o)
			}
			for _, d := range deltas {
				n := cells[d.Key]
				n.Add(d.Counts)
				cells[d.Key] = n
			}
		}
	}
	table := featurestore.NewLearnTable(cells)
	if got := table.Get("up", "web", c.Learning.Model.TotalKey).Impressions; got != 40000 {
		t.Errorf("the model's total cell counts %d impressions, want 40000", got)
	}
	for _, tt := range []struct {
		x    float64
		best string
	}{{0, "down"}, {2, "up"}} {
		f[xf.Index] = featurestore.Number(tt.x)
		req := decision.Request{CustomerID: "c", Channel: "web", Limit: 2, Now: now, Learned: table}
		var res decision.Result
		if err := e.Decide(c, f, &req, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Offers) != 2 || res.Offers[0].Offer.ID != tt.best {
			t.Fatalf("x=%v: offers %v, want %s first", tt.x, offerIDs(res.Offers), tt.best)
		}
		for _, ch := range res.Offers {
			want := truthRate(ch.Offer.ID, tt.x)
			if math.Abs(ch.Propensity-want) > 0.01 {
				t.Errorf("x=%v %s: propensity %.4f, want %.4f ± 0.01", tt.x, ch.Offer.ID, ch.Propensity, want)
			}
		}
		if len(res.Terms) != c.Learning.Model.Dim() {
			t.Errorf("x=%v: result terms %v, want %d", tt.x, res.Terms, c.Learning.Model.Dim())
		}
	}
}

// TestModelThompsonExplores: with no outcomes yet, Thompson sampling on
// the model draws both offers first now and then (the prior's spread),
// and every draw is a probability.
func TestModelThompsonExplores(t *testing.T) {
	c := modelCatalog(t, "thompson")
	e := &decision.Engine{}
	f := c.Schema.Defaults(nil)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	first := map[string]int{}
	for i := range 400 {
		req := decision.Request{CustomerID: "c", Channel: "web", Limit: 2, Now: now, Seed: uint64(i + 1)}
		var res decision.Result
		if err := e.Decide(c, f, &req, &res); err != nil {
			t.Fatal(err)
		}
		for _, ch := range res.Offers {
			if ch.Propensity < 0 || ch.Propensity > 1 || math.IsNaN(ch.Propensity) {
				t.Fatalf("propensity %v outside [0, 1]", ch.Propensity)
			}
		}
		first[res.Offers[0].Offer.ID]++
	}
	if first["up"] < 100 || first["down"] < 100 {
		t.Errorf("first offers over 400 decisions on the prior: %v, want each about 200", first)
	}
}

// TestModelBadSums: sums that no data can produce (a negative count of
// impressions, as a store gone wrong could hold) leave the model at its
// prior rather than at NaN.
func TestModelBadSums(t *testing.T) {
	c := modelCatalog(t, "greedy")
	m := c.Learning.Model
	cells := map[featurestore.StatKey]featurestore.Counts{}
	for _, k := range m.AKeys {
		cells[featurestore.StatKey{Offer: "up", Channel: "web", Key: k}] = featurestore.Counts{Value: -1e9}
	}
	e := &decision.Engine{}
	req := decision.Request{CustomerID: "c", Channel: "web", Limit: 2, Now: time.Unix(0, 0), Learned: featurestore.NewLearnTable(cells)}
	var res decision.Result
	if err := e.Decide(c, nil, &req, &res); err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Offers {
		if math.IsNaN(ch.Propensity) || math.Abs(ch.Propensity-0.02) > 1e-6 {
			t.Errorf("%s: propensity %v, want the prior's 0.02", ch.Offer.ID, ch.Propensity)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func offerIDs(cs []decision.Choice) []string {
	ids := make([]string, len(cs))
	for i, ch := range cs {
		ids[i] = ch.Offer.ID
	}
	return ids
}

// TestModelHugeTerms: terms beyond float64's range when squared (a
// catalog's term of 1e200) neither panic nor make a propensity NaN: the
// deltas that overflow are dropped, and the propensities stay in [0, 1].
func TestModelHugeTerms(t *testing.T) {
	src := `channels: [web]
features:
  x: {type: number, default: 0}
learning:
  min_explore: 0
  model:
    segments: false
    features: {huge: customer.x * 1e200, inf: 1 / (customer.x - customer.x)}
offers:
  - {id: a, channels: [web], value: 10, content: {web: {headline: a}}}
  - {id: b, channels: [web], value: 5, content: {web: {headline: b}}}
`
	c, err := rules.Load("huge.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := &decision.Engine{}
	f := c.Schema.Defaults(nil)
	xf, _ := c.Schema.Lookup("x")
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cells := map[featurestore.StatKey]featurestore.Counts{}
	var deltas []featurestore.StatDelta
	for i := range 200 {
		f[xf.Index] = featurestore.Number(float64(i%7) * 1e100)
		terms := e.ModelTerms(nil, c, f, "web", now)
		for _, offer := range []string{"a", "b"} {
			o := decision.Outcome{Kind: featurestore.Impression, OfferID: offer, Channel: "web", Time: now,
				Model: c.Learning.Model, Terms: terms, Success: c.Learning.Success}
			deltas = decision.AppendOutcomeDeltas(deltas[:0], &o)
			if i%3 == 0 {
				o.Kind = featurestore.Conversion
				deltas = decision.AppendOutcomeDeltas(deltas, &o)
			}
			for _, d := range deltas {
				if err := d.Check(); err != nil {
					t.Fatalf("a delta the store would refuse: %v", err)
				}
				n := cells[d.Key]
				n.Add(d.Counts)
				cells[d.Key] = n
			}
		}
	}
	table := featurestore.NewLearnTable(cells)
	for i := range 50 {
		f[xf.Index] = featurestore.Number(float64(i%7) * 1e100)
		req := decision.Request{CustomerID: "c", Channel: "web", Limit: 2, Now: now, Learned: table, Seed: uint64(i + 1), Explain: i%2 == 0}
		var res decision.Result
		if err := e.Decide(c, f, &req, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Offers) != 2 {
			t.Fatalf("offers %v, want both", offerIDs(res.Offers))
		}
		for _, ch := range res.Offers {
			if math.IsNaN(ch.Propensity) || ch.Propensity < 0 || ch.Propensity > 1 || math.IsNaN(ch.Score) {
				t.Fatalf("%s: propensity %v, score %v", ch.Offer.ID, ch.Propensity, ch.Score)
			}
		}
	}
}

// TestModelTermsStatic: a decision ranked statically (a static variant,
// say) still carries the customer's terms, for the impressions it
// records to credit the model as the later conversions will.
func TestModelTermsStatic(t *testing.T) {
	c := modelCatalog(t, "thompson")
	c.Arbitration = rules.Arbitration{Static: true}
	f := c.Schema.Defaults(nil)
	xf, _ := c.Schema.Lookup("x")
	f[xf.Index] = featurestore.Number(2)
	var e decision.Engine
	var res decision.Result
	req := decision.Request{CustomerID: "c", Channel: "web", Limit: 2, Now: time.Unix(0, 0)}
	if err := e.Decide(c, f, &req, &res); err != nil {
		t.Fatal(err)
	}
	if want := []float64{1, 1, 2}; !equalFloats(res.Terms, want) {
		t.Errorf("terms %v, want %v", res.Terms, want)
	}
}

// TestOutcomeLearning: the learn key and terms OutcomeLearning gives, in
// one pass over the segments, are LearnKeyFor's and ModelTerms', for the
// example catalog learning by segment with a model, over many customers.
func TestOutcomeLearning(t *testing.T) {
	src, err := os.ReadFile("../examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const at = "  learn_by: segment\n"
	c, err := rules.Load("retail-model.yaml", []byte(strings.Replace(string(src), at, at+"  model:\n    features:\n      spend: min(customer.lifetime_value, 4000)\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var e decision.Engine
	for i, f := range (catalogtest.Population{}).Vectors(c.Schema, 500) {
		ch := c.Channels[i%len(c.Channels)].Name
		key, terms := e.OutcomeLearning(nil, c, f, ch, catalogtest.Epoch)
		if want := e.LearnKeyFor(c, f, ch, catalogtest.Epoch); key != want {
			t.Fatalf("customer %d: key %q, LearnKeyFor %q", i, key, want)
		}
		if want := e.ModelTerms(nil, c, f, ch, catalogtest.Epoch); !equalFloats(terms, want) {
			t.Fatalf("customer %d: terms %v, ModelTerms %v", i, terms, want)
		}
	}
}
