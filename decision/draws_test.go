package decision

import (
	"math"
	"math/rand/v2"
	"testing"
)

// referenceGamma is the gamma sampler as it was before betaDraws kept
// each shape's constants (Marsaglia and Tsang, with the boost for a < 1),
// kept verbatim as the reference the draws must match bit for bit: a
// decision id replays the same draws.
func referenceGamma(r *rand.Rand, a float64) float64 {
	if !(a > 0) {
		return 0
	}
	boost := 1.0
	if a < 1 {
		boost = math.Pow(r.Float64(), 1/a)
		a++
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for v <= 0 {
			x = r.NormFloat64()
			v = 1 + c*x
		}
		v = v * v * v
		u := r.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return d * v * boost
		}
	}
}

func referenceSample(p Posterior, r *rand.Rand) float64 {
	x := referenceGamma(r, p.Alpha)
	y := referenceGamma(r, p.Beta)
	if x+y == 0 {
		return p.Mean()
	}
	return x / (x + y)
}

// TestBetaDrawsMatchReference: betaDraws, which keeps the constants of
// the last shapes, draws exactly what the reference sampler draws from
// the same stream, whether the shapes repeat (its constants reused) or
// change every draw, for shapes below, at and above 1, zero and
// non-finite ones.
func TestBetaDrawsMatchReference(t *testing.T) {
	posteriors := []Posterior{
		{1, 49}, {0.3, 0.7}, {120, 880}, {2.5, 2.5}, {1, 1}, {0.02, 50}, {11, 1039}, {1e6, 3e6},
		{0, 5}, {5, 0}, {0, 0}, {math.Inf(1), 1}, {math.NaN(), 2},
	}
	for _, repeat := range []int{1, 7} {
		ref := rand.New(rand.NewPCG(3, 4))
		got := rand.New(rand.NewPCG(3, 4))
		var d betaDraws
		for i := range 20000 {
			p := posteriors[(i/repeat)%len(posteriors)]
			want, x := referenceSample(p, ref), d.sample(p, got)
			if math.Float64bits(want) != math.Float64bits(x) && !(math.IsNaN(want) && math.IsNaN(x)) {
				t.Fatalf("repeat %d, draw %d, %+v: %v, want %v", repeat, i, p, x, want)
			}
			if want, x := ref.Uint64(), got.Uint64(); want != x {
				t.Fatalf("repeat %d, draw %d, %+v: the streams diverge", repeat, i, p)
			}
		}
	}
}
