package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

func TestBestOffers(t *testing.T) {
	offers := []*rules.Offer{{ID: "a", Index: 0, Value: 1}, {ID: "b", Index: 1, Value: 1}, {ID: "c", Index: 2, Value: 2}, {ID: "d", Index: 3, Value: 1}}
	p := []float64{0.1, 0.3, 0.1, 0.2} // value × rate: 0.1 0.3 0.2 0.2
	tests := []struct {
		n    int
		want []string
	}{
		{1, []string{"b"}},
		{2, []string{"b", "c"}},
		{3, []string{"b", "c", "d"}}, // c and d tie: catalog order
		{4, []string{"b", "c", "d", "a"}},
		{9, []string{"b", "c", "d", "a"}},
	}
	for _, tt := range tests {
		var got []string
		for _, o := range bestOffers([]*rules.Offer{{ID: "kept"}}, offers, p, tt.n)[1:] {
			got = append(got, o.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("best %d: got %v, want %v", tt.n, got, tt.want)
		}
	}
}

// TestOBDSlots: an OBD decision shows 3 items, each an impression the
// learner counts; the oracle shows the 3 best every time.
func TestOBDSlots(t *testing.T) {
	const n = 3000
	r := simulateArgs(t, "--population", "obd", "--decisions", fmt.Sprint(n))
	w, err := obdWorld()
	if err != nil {
		t.Fatal(err)
	}
	p := slices.Clone(w.kinds[0].p)
	slices.Sort(p)
	top3 := p[len(p)-1] + p[len(p)-2] + p[len(p)-3]
	if got := r.policies[oracle].whole.expected / n; math.Abs(got-top3) > 1e-12 {
		t.Errorf("oracle: %.6f a decision, want the 3 best items' %.6f", got, top3)
	}
	var impressions int64
	for k, c := range r.stats {
		if k.Hour == 0 && k.Offer != "" {
			impressions += c.Impressions
		}
	}
	if impressions != 3*n {
		t.Errorf("learned: %d impressions counted, want %d", impressions, 3*n)
	}
	mean := 0.0
	for _, x := range p {
		mean += x / float64(len(p))
	}
	if got := r.policies[random].whole.expected / n / 3; math.Abs(got-mean)/mean > 0.05 {
		t.Errorf("random: %.5f a slot, want about the mean item's %.5f", got, mean)
	}
}

// TestOBDHorizon is the reference for the OBD population's horizon
// (docs/benchmarks.md): Thompson sampling outside the engine, with the
// catalog's prior (0.35% worth 50 impressions), each item tried 50 times
// first, updated after every impression, over the OBD items. It prints
// the last half's CTR over the oracle's and over uniform random. Slow:
// NEXTBEST_SIM_HORIZON=1 runs it.
func TestOBDHorizon(t *testing.T) {
	if os.Getenv("NEXTBEST_SIM_HORIZON") == "" {
		t.Skip("NEXTBEST_SIM_HORIZON=1 runs the horizon reference (minutes)")
	}
	w, err := obdWorld()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ decisions, slots int }{{400_000, 1}, {2_000_000, 1}, {1_000_000, 3}, {4_000_000, 3}} {
		for seed := uint64(1); seed <= 2; seed++ {
			oracle, random := referenceTS(w.kinds[0].p, tt.decisions, tt.slots, seed)
			t.Logf("%d decisions of %d: last half %.4f of the oracle, %.3f× uniform random", tt.decisions, tt.slots, oracle, random)
		}
	}
}

// referenceTS runs Bernoulli Thompson sampling showing the slots items of
// highest draw per decision, and returns the last half's CTR over the
// oracle's (the slots best items) and over uniform random's.
func referenceTS(p []float64, decisions, slots int, seed uint64) (overOracle, overRandom float64) {
	const rate, strength, floor = 0.0035, 50.0, 50
	r := rand.New(rand.NewPCG(seed, 6))
	clicks := rand.New(rand.NewPCG(seed, 12))
	n, k := make([]float64, len(p)), make([]float64, len(p))
	sorted := slices.Clone(p)
	slices.Sort(sorted)
	best, mean := 0.0, 0.0
	for j := range slots {
		best += sorted[len(sorted)-1-j]
	}
	for _, x := range p {
		mean += x * float64(slots) / float64(len(p))
	}
	top := make([]int, slots)
	draws := make([]float64, slots)
	last := 0.0
	for t := range decisions {
		for j := range top {
			top[j], draws[j] = -1, -1
		}
		for i := range p {
			var v float64
			if n[i] < floor {
				v = 2 + r.Float64() // below the floor: first
			} else {
				v = decision.Posterior{Alpha: rate*strength + k[i], Beta: (1-rate)*strength + n[i] - k[i]}.Sample(r)
			}
			for j := range slots {
				if v > draws[j] {
					copy(draws[j+1:], draws[j:slots-1])
					copy(top[j+1:], top[j:slots-1])
					draws[j], top[j] = v, i
					break
				}
			}
		}
		for _, i := range top {
			n[i]++
			if clicks.Float64() < p[i] {
				k[i]++
			}
			if t >= decisions/2 {
				last += p[i]
			}
		}
	}
	last /= float64(decisions - decisions/2)
	return last / best, last / mean
}
