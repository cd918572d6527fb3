package nextbest

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTQuantile: the expansion against tabled 97.5th percentiles of
// Student's t.
func TestTQuantile(t *testing.T) {
	for _, tt := range []struct{ df, want, tol float64 }{
		{1, 12.706, 0.25}, // the expansion's worst case: a wider interval would be exact
		{2, 4.303, 0.04},
		{3, 3.182, 0.01},
		{5, 2.571, 0.002},
		{10, 2.228, 0.001},
		{30, 2.042, 0.001},
		{1e6, 1.960, 0.001},
	} {
		if got := tQuantile975(tt.df); math.Abs(got-tt.want) > tt.tol*tt.want {
			t.Errorf("tQuantile975(%v) = %.4f, want %.3f within %.1f%%", tt.df, got, tt.want, 100*tt.tol)
		}
	}
}

// TestNewcombe: the worked example of Newcombe (1998), Table II (a):
// 56/70 − 48/80 = 0.2000, hybrid score interval 0.0524 to 0.3339; and
// intervals that stay sound where Wald's collapse (0/n, n/n).
func TestNewcombe(t *testing.T) {
	got := newcombe(56, 70, 48, 80)
	if math.Abs(got.Difference-0.2) > 1e-12 || math.Abs(got.CI95[0]-0.0524) > 5e-5 || math.Abs(got.CI95[1]-0.3339) > 5e-5 {
		t.Errorf("newcombe(56/70, 48/80) = %+v, want 0.2 in [0.0524, 0.3339]", got)
	}
	for _, tt := range []struct{ k1, n1, k0, n0 float64 }{{0, 10, 0, 10}, {10, 10, 0, 10}, {0, 1, 1, 1}} {
		i := newcombe(tt.k1, tt.n1, tt.k0, tt.n0)
		if !(i.CI95[0] < i.Difference || i.Difference < i.CI95[1]) || i.CI95[0] < -1 || i.CI95[1] > 1 {
			t.Errorf("newcombe(%v/%v, %v/%v) = %+v: want a non-empty interval inside [-1, 1] around the difference", tt.k1, tt.n1, tt.k0, tt.n0, i)
		}
	}
	if newcombe(1, 0, 1, 2) != nil {
		t.Error("newcombe with no one on a side: want nil")
	}
}

// population draws n customers' conversions and value: a converter with
// probability p, then 1 + Poisson(lambda) conversions, each worth an
// exponential value of mean mu — skewed, heavy with zeros, like shop
// data. The mean conversions per customer is p(1+lambda), the mean value
// p(1+lambda)mu.
type population struct{ p, lambda, mu float64 }

func (pop population) draw(r *rand.Rand, n int) (conv []int64, value []float64) {
	conv, value = make([]int64, n), make([]float64, n)
	for i := range n {
		if r.Float64() >= pop.p {
			continue
		}
		k := int64(1) // 1 + Poisson(lambda), by Knuth's product of uniforms
		for prod, l := r.Float64(), math.Exp(-pop.lambda); prod > l; prod *= r.Float64() {
			k++
		}
		conv[i] = k
		for range k {
			value[i] += r.ExpFloat64() * pop.mu
		}
	}
	return conv, value
}

// sums is what cohort cells keep of customers.
func sums(conv []int64, value []float64) (c, v sample, converters float64) {
	n := float64(len(conv))
	c.n, v.n = n, n
	for i := range conv {
		x := float64(conv[i])
		c.sum += x
		c.sumSq += x * x
		v.sum += value[i]
		v.sumSq += value[i] * value[i]
		if conv[i] > 0 {
			converters++
		}
	}
	return c, v, converters
}

// TestUpliftCoverage: over 2,000 seeds of two simulated variants, each
// 95% interval covers the true difference about 95% of the time: the
// conversion rate's (Newcombe), conversions per customer's and value per
// customer's (Welch). Deterministic (seeded), pure, fast.
func TestUpliftCoverage(t *testing.T) {
	control := population{p: 0.10, lambda: 1, mu: 20}
	variant := population{p: 0.13, lambda: 1.5, mu: 18}
	trueRate := variant.p - control.p
	trueConv := variant.p*(1+variant.lambda) - control.p*(1+control.lambda)
	trueValue := variant.p*(1+variant.lambda)*variant.mu - control.p*(1+control.lambda)*control.mu
	const seeds, n = 2000, 400
	var covered [3]int
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 14))
		c1, v1, k1 := sums(variant.draw(r, n))
		c0, v0, k0 := sums(control.draw(r, n))
		for i, tt := range []struct {
			iv    *Interval
			truth float64
		}{
			{newcombe(k1, n, k0, n), trueRate},
			{welch(c1, c0), trueConv},
			{welch(v1, v0), trueValue},
		} {
			if tt.iv.CI95[0] <= tt.truth && tt.truth <= tt.iv.CI95[1] {
				covered[i]++
			}
		}
	}
	// The standard error of a coverage of 0.95 over 2,000 seeds is 0.005.
	for i, name := range []string{"conversion rate (Newcombe)", "conversions per customer (Welch)", "value per customer (Welch)"} {
		if got := float64(covered[i]) / seeds; got < 0.935 || got > 0.965 {
			t.Errorf("%s: coverage %.3f over %d seeds, want 0.95 ± 0.015", name, got, seeds)
		} else {
			t.Logf("%s: coverage %.3f over %d seeds", name, got, seeds)
		}
	}
}

// TestWelchDirect: welch from the sums equals a direct two-pass
// computation of Welch's interval from the customers' figures.
func TestWelchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	conv1, _ := population{p: 0.3, lambda: 2, mu: 1}.draw(r, 57)
	conv0, _ := population{p: 0.2, lambda: 1, mu: 1}.draw(r, 80)
	moments := func(x []int64) (mean, variance float64) {
		for _, v := range x {
			mean += float64(v)
		}
		mean /= float64(len(x))
		for _, v := range x {
			variance += (float64(v) - mean) * (float64(v) - mean)
		}
		return mean, variance / float64(len(x)-1)
	}
	m1, s1 := moments(conv1)
	m0, s0 := moments(conv0)
	a, b := s1/57, s0/80
	df := (a + b) * (a + b) / (a*a/56 + b*b/79)
	half := tQuantile975(df) * math.Sqrt(a+b)
	c1, _, _ := sums(conv1, make([]float64, 57))
	c0, _, _ := sums(conv0, make([]float64, 80))
	got := welch(c1, c0)
	if math.Abs(got.Difference-(m1-m0)) > 1e-12 || math.Abs(got.CI95[0]-(m1-m0-half)) > 1e-9 || math.Abs(got.CI95[1]-(m1-m0+half)) > 1e-9 {
		t.Errorf("welch = %+v, want %v ± %v", got, m1-m0, half)
	}
}
