package decision_test

import (
	"hash/fnv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

// fiveOffers explores by Thompson sampling (the default) with a weak
// prior, so a draw moves the ranking.
const fiveOffers = `
channels: [web]
learning: {prior: {rate: 0.1, strength: 2}}
offers:
  - {id: a, channels: [web], value: 10, content: {web: {h: a}}}
  - {id: b, channels: [web], value: 10, content: {web: {h: b}}}
  - {id: c, channels: [web], value: 10, content: {web: {h: c}}}
  - {id: d, channels: [web], value: 10, content: {web: {h: d}}}
  - {id: e, channels: [web], value: 10, content: {web: {h: e}}}
`

// drawn is what a decision's random draws decide: the order of the offers
// and their sampled propensities, and the same in the explanation.
type drawn struct {
	Offers      []string
	Propensity  []float64
	Explained   []float64
	Explanation []decision.Reason
}

func decideSeeded(t *testing.T, e *decision.Engine, c *rules.Catalog, seed uint64) drawn {
	t.Helper()
	var res decision.Result
	req := decision.Request{CustomerID: "c1", Channel: "web", Limit: 3, Explain: true, Now: time.Unix(0, 0), Seed: seed}
	if err := e.Decide(c, nil, &req, &res); err != nil {
		t.Fatal(err)
	}
	var d drawn
	for _, o := range res.Offers {
		d.Offers = append(d.Offers, o.Offer.ID)
		d.Propensity = append(d.Propensity, o.Propensity)
	}
	for _, x := range res.Explain {
		d.Explained = append(d.Explained, x.Propensity)
		d.Explanation = append(d.Explanation, x.Reason)
	}
	return d
}

// TestSeedDeterministic: with Thompson sampling on, two decisions with the
// same inputs and seed draw the same propensities and choose the same
// offers, whichever engine or pooled scratch runs them and whatever ran
// before; another seed draws otherwise.
func TestSeedDeterministic(t *testing.T) {
	c, err := rules.Load("five.yaml", []byte(fiveOffers))
	if err != nil {
		t.Fatal(err)
	}
	if c.Learning.Explore != rules.Thompson {
		t.Fatalf("explore %v, want Thompson sampling, the default", c.Learning.Explore)
	}
	var e1, e2 decision.Engine
	tests := []struct {
		name string
		a, b uint64
		same bool
	}{
		{"seed 0", 0, 0, true},
		{"seed 1", 1, 1, true},
		{"a decision id's seed", decision.SeedOf([]byte("d4l6b5ri0c8dpk6r3p10")), decision.SeedOf([]byte("d4l6b5ri0c8dpk6r3p10")), true},
		{"seeds 1 and 2", 1, 2, false},
		{"ids a counter apart", decision.SeedOf([]byte("d4l6b5ri0c8dpk6r3p10")), decision.SeedOf([]byte("d4l6b5ri0c8dpk6r3p11")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := decideSeeded(t, &e1, c, tt.a)
			decideSeeded(t, &e1, c, tt.a+7) // the scratch's source moves on
			b := decideSeeded(t, &e2, c, tt.b)
			if again := decideSeeded(t, &e1, c, tt.b); !cmp.Equal(b, again) {
				t.Errorf("seed %d on two engines: (-first +second)\n%s", tt.b, cmp.Diff(b, again))
			}
			if diff := cmp.Diff(a, b); (diff == "") != tt.same {
				t.Errorf("seeds %d and %d: same draws %v, want %v (-a +b)\n%s", tt.a, tt.b, diff == "", tt.same, diff)
			}
		})
	}
}

// TestSeedOf: a decision id's seed is the 64-bit FNV-1a of its bytes.
func TestSeedOf(t *testing.T) {
	for _, id := range []string{"", "a", "d4l6b5ri0c8dpk6r3p10", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"} {
		h := fnv.New64a()
		h.Write([]byte(id))
		if got, want := decision.SeedOf([]byte(id)), h.Sum64(); got != want {
			t.Errorf("SeedOf(%q) = %#x, want %#x", id, got, want)
		}
	}
}
