package decision_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// TestPosteriorSample: samples of a Beta posterior have its mean and
// variance, for shapes below and above 1 (the two branches of the gamma
// sampler).
func TestPosteriorSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range []decision.Posterior{{Alpha: 1, Beta: 49}, {Alpha: 0.3, Beta: 0.7}, {Alpha: 120, Beta: 880}, {Alpha: 2.5, Beta: 2.5}} {
		const n = 200000
		var sum, sq float64
		for range n {
			x := p.Sample(r)
			if x < 0 || x > 1 || math.IsNaN(x) {
				t.Fatalf("%+v: sample %v outside [0, 1]", p, x)
			}
			sum += x
			sq += x * x
		}
		mean := sum / n
		variance := sq/n - mean*mean
		a, b := p.Alpha, p.Beta
		wantVar := a * b / ((a + b) * (a + b) * (a + b + 1))
		if math.Abs(mean-p.Mean()) > 4*math.Sqrt(wantVar/n) {
			t.Errorf("%+v: mean %.5f, want %.5f", p, mean, p.Mean())
		}
		if math.Abs(variance-wantVar)/wantVar > 0.03 {
			t.Errorf("%+v: variance %.6f, want %.6f", p, variance, wantVar)
		}
	}
}

func TestPosteriorOf(t *testing.T) {
	prior := rules.Prior{Rate: 0.02, Strength: 50}
	tests := []struct {
		name    string
		n       featurestore.Counts
		success featurestore.Outcome
		want    decision.Posterior
	}{
		{"prior only", featurestore.Counts{}, featurestore.Conversion, decision.Posterior{Alpha: 1, Beta: 49}},
		{"conversions", featurestore.Counts{Impressions: 100, Clicks: 30, Conversions: 5}, featurestore.Conversion, decision.Posterior{Alpha: 6, Beta: 144}},
		{"clicks", featurestore.Counts{Impressions: 100, Clicks: 30, Conversions: 5}, featurestore.Click, decision.Posterior{Alpha: 31, Beta: 119}},
		{"more successes than impressions", featurestore.Counts{Impressions: 2, Conversions: 5}, featurestore.Conversion, decision.Posterior{Alpha: 6, Beta: 49}},
	}
	for _, tt := range tests {
		if got := decision.PosteriorOf(prior, tt.n, tt.success); math.Abs(got.Alpha-tt.want.Alpha) > 1e-9 || math.Abs(got.Beta-tt.want.Beta) > 1e-9 {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

const twoOffers = `
channels: [web]
learning: {prior: {rate: 0.05, strength: 20}}
offers:
  - {id: a, channels: [web], value: 10, content: {web: {h: a}}}
  - {id: b, channels: [web], value: 10, content: {web: {h: b}}}
`

// TestLearningConverges runs Thompson sampling on two offers of equal
// value whose true conversion rates (4% and 8%) the engine does not know:
// outcomes are drawn from the truth and fed back as statistics, as the
// outcome path does. The better offer must end up with most of the
// traffic, and the learned propensities must approach the true rates.
func TestLearningConverges(t *testing.T) {
	c, err := rules.Load("two.yaml", []byte(twoOffers))
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]float64{"a": 0.04, "b": 0.08}
	var e decision.Engine
	thompson := rand.New(rand.NewPCG(7, 8))
	world := rand.New(rand.NewPCG(3, 4))
	cells := map[featurestore.StatKey]featurestore.Counts{}
	var table *featurestore.LearnTable
	const n = 40000
	shown := map[string]int{}
	for i := range n {
		if i%100 == 0 {
			table = featurestore.NewLearnTable(cells)
		}
		var res decision.Result
		req := decision.Request{CustomerID: "c", Channel: "web", Now: time.Unix(0, 0), Learned: table, Rand: thompson}
		if err := e.Decide(c, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		id := res.Offers[0].Offer.ID
		k := featurestore.StatKey{Offer: id, Channel: "web"}
		cnt := cells[k]
		cnt.Impressions++
		if world.Float64() < truth[id] {
			cnt.Conversions++
		}
		cells[k] = cnt
		if i >= n/2 {
			shown[id]++
		}
	}
	if share := float64(shown["b"]) / (n / 2); share < 0.85 {
		t.Errorf("the better offer got %.0f%% of the last half's traffic, want at least 85%%", 100*share)
	}
	table = featurestore.NewLearnTable(cells)
	for id, rate := range truth {
		p := decision.PosteriorOf(c.Learning.Prior, table.Get(id, "web", ""), featurestore.Conversion)
		sd := math.Sqrt(p.Alpha * p.Beta / ((p.Alpha + p.Beta) * (p.Alpha + p.Beta) * (p.Alpha + p.Beta + 1)))
		if math.Abs(p.Mean()-rate) > 3*sd || (id == "b" && math.Abs(p.Mean()-rate) > 0.01) {
			t.Errorf("offer %s: learned %.4f ± %.4f from %d impressions, true rate %.2f", id, p.Mean(), sd, table.Get(id, "web", "").Impressions, rate)
		}
	}
}

// TestGreedyUsesMean: greedy ranking is deterministic and follows the
// posterior means times value.
func TestGreedyUsesMean(t *testing.T) {
	c, err := rules.Load("two.yaml", []byte(twoOffers+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.Learning.Explore = rules.Greedy
	table := featurestore.NewLearnTable(map[featurestore.StatKey]featurestore.Counts{
		{Offer: "b", Channel: "web"}: {Impressions: 80, Conversions: 10}, // (1+10)/(20+80) = 0.11
		{Offer: "a", Channel: "web"}: {Impressions: 80, Conversions: 1},  // (1+1)/100 = 0.02
	})
	var e decision.Engine
	for range 50 {
		var res decision.Result
		req := decision.Request{Channel: "web", Limit: 2, Now: time.Unix(0, 0), Learned: table, Explain: true}
		if err := e.Decide(c, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		if got := []string{res.Offers[0].Offer.ID, res.Offers[1].Offer.ID}; !slices.Equal(got, []string{"b", "a"}) {
			t.Fatalf("greedy order %v, want [b a]", got)
		}
		if p := res.Offers[0].Propensity; math.Abs(p-0.11) > 1e-9 || math.Abs(res.Offers[0].Score-1.1) > 1e-9 {
			t.Fatalf("b: propensity %v score %v, want 0.11 and 1.1", p, res.Offers[0].Score)
		}
	}
}

// TestLearnKey: statistics split by the first segment or by a feature.
func TestLearnKey(t *testing.T) {
	src := func(by string) string {
		return `
channels: [web]
features: {tier: {type: string, default: none}, app: {type: bool}}
segments: {gold: customer.tier == "gold", any: "true"}
learning: {learn_by: ` + by + `}
offers: [{id: a, channels: [web], content: {web: {h: a}}}]
`
	}
	gold := featurestore.Vector{featurestore.String("gold"), featurestore.Bool(true)}
	tests := []struct {
		by   string
		f    featurestore.Vector
		want string
	}{
		{"segment", gold, "gold"},
		{"segment", nil, "any"},
		{"tier", gold, "gold"},
		{"tier", nil, "none"},
		{"app", gold, "true"},
		{"app", nil, "false"},
	}
	var e decision.Engine
	for _, tt := range tests {
		c, err := rules.Load("k.yaml", []byte(src(tt.by)))
		if err != nil {
			t.Fatal(err)
		}
		var res decision.Result
		req := decision.Request{Channel: "web", Now: time.Unix(0, 0)}
		if err := e.Decide(c, tt.f, &req, &res); err != nil {
			t.Fatal(err)
		}
		if res.LearnKey != tt.want {
			t.Errorf("learn_by %s, features %v: key %q, want %q", tt.by, tt.f, res.LearnKey, tt.want)
		}
	}
}

// TestArbitrationExpression: a catalog's score expression sees the
// offer's propensity, value and weight and the request.
func TestArbitrationExpression(t *testing.T) {
	c, err := rules.Load("arb.yaml", []byte(`
channels: [web]
learning: {explore: greedy}
arbitration: "propensity * value * weight * (context.urgent == true ? 10 : 1) + (offer_bonus ?? 0)"
offers:
  - {id: a, channels: [web], value: 10, content: {web: {h: a}}}
`))
	if err == nil {
		t.Fatalf("an unknown identifier in arbitration loaded: %v", c)
	}
	c, err = rules.Load("arb.yaml", []byte(`
channels: [web]
learning: {explore: greedy, prior: {rate: 0.5, strength: 2}}
arbitration: "propensity * value * weight * (context.urgent == true ? 10 : 1)"
offers:
  - {id: a, channels: [web], value: 10, weight: 2, content: {web: {h: a}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var e decision.Engine
	for _, tt := range []struct {
		ctx  map[string]any
		want float64
	}{{nil, 10}, {map[string]any{"urgent": true}, 100}, {map[string]any{"urgent": "yes"}, 10}} {
		var res decision.Result
		req := decision.Request{Channel: "web", Context: tt.ctx, Now: time.Unix(0, 0)}
		if err := e.Decide(c, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Offers) != 1 || res.Offers[0].Score != tt.want {
			t.Errorf("context %v: offers %+v, want score %v", tt.ctx, res.Offers, tt.want)
		}
	}
}

// TestExplorationFloor: under learning.min_explore, an offer whose cell
// has fewer impressions ranks first whatever its prior × value says (the
// quiet winner: a high rate on a low value); once its cell has reached
// the floor, the score ranks it again. An offer of no value is never
// pushed, and greedy and static arbitration (no exploration) have no
// floor.
func TestExplorationFloor(t *testing.T) {
	const src = `
channels: [web]
learning: {prior: {rate: 0.02, strength: 50}, explore: thompson, min_explore: 10}
offers:
  - {id: big, channels: [web], value: 10, content: {web: {h: big}}}
  - {id: quiet, channels: [web], value: 4, content: {web: {h: quiet}}}
  - {id: nothing, channels: [web], value: 0, content: {web: {h: nothing}}}
`
	c, err := rules.Load("floor.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Learning.MinExplore != 10 {
		t.Fatalf("min_explore %d, want 10", c.Learning.MinExplore)
	}
	seen := func(quiet, nothing int64) *featurestore.LearnTable {
		return featurestore.NewLearnTable(map[featurestore.StatKey]featurestore.Counts{
			{Offer: "big", Channel: "web"}:     {Impressions: 500, Conversions: 50},
			{Offer: "quiet", Channel: "web"}:   {Impressions: quiet},
			{Offer: "nothing", Channel: "web"}: {Impressions: nothing},
		})
	}
	tests := []struct {
		name  string
		table *featurestore.LearnTable
		want  []string
		arb   string
	}{
		{"quiet below the floor goes first", seen(9, 0), []string{"quiet", "big", "nothing"}, ""},
		{"quiet at the floor ranks by score", seen(10, 0), []string{"big", "quiet", "nothing"}, ""},
		{"greedy: no floor", seen(0, 0), []string{"big", "quiet", "nothing"}, "greedy"},
		{"static: no floor", seen(0, 0), []string{"big", "quiet", "nothing"}, "static"},
	}
	var e decision.Engine
	for _, tt := range tests {
		cat := c
		switch tt.arb {
		case "static":
			if cat, err = rules.Load("floor.yaml", []byte(src+"arbitration: static\n")); err != nil {
				t.Fatal(err)
			}
		case "greedy":
			if cat, err = rules.Load("floor.yaml", []byte(strings.Replace(src, "explore: thompson", "explore: greedy", 1))); err != nil {
				t.Fatal(err)
			}
		}
		var res decision.Result
		req := decision.Request{Channel: "web", Limit: 3, Now: time.Unix(0, 0), Learned: tt.table}
		if err := e.Decide(cat, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range res.Offers {
			got = append(got, ch.Offer.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: order %v, want %v", tt.name, got, tt.want)
		}
	}
	d, err := rules.Load("default.yaml", []byte(twoOffers))
	if err != nil {
		t.Fatal(err)
	}
	if d.Learning.MinExplore != rules.DefaultMinExplore || rules.DefaultMinExplore != 50 {
		t.Errorf("default min_explore %d (DefaultMinExplore %d), want 50", d.Learning.MinExplore, rules.DefaultMinExplore)
	}
}
