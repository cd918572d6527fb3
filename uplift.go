package nextbest

import "math"

// The statistics of uplift by customer, as pure functions of the sums a
// cohort cell keeps (featurestore/exposure.go), so a report computes
// them from cells summed over any period and a test checks them against
// a direct computation.

// z95 is the 97.5th percentile of the standard normal distribution.
const z95 = 1.959963984540054

// Interval is a difference between a variant and the control with its
// 95% confidence interval.
type Interval struct {
	Difference float64    // variant minus control
	CI95       [2]float64 // 95% confidence interval of Difference
	Relative   *float64   // Difference / the control's figure; nil when that is 0
}

// sample is what a report knows of one variant's customers for one
// per-customer figure x: their number, Σx and Σx².
type sample struct {
	n          float64
	sum, sumSq float64
}

func (s sample) mean() float64 { return s.sum / s.n }

// variance is the unbiased sample variance, (Σx² − (Σx)²/n)/(n−1); a
// negative result is float rounding of a variance of 0.
func (s sample) variance() float64 {
	return max((s.sumSq-s.sum*s.sum/s.n)/(s.n-1), 0)
}

// welch compares the means of v and control with Welch's unequal-variance
// t interval: d ± t(ν)·√(s₁²/n₁ + s₀²/n₀), ν by Welch–Satterthwaite. It
// needs two customers on each side (nil otherwise). The figures of one
// customer may be any numbers (a count of conversions, a value), so no
// clamping is needed: the variance is estimated, not derived from a
// Bernoulli model. When both variances are 0 the interval is the
// difference itself.
func welch(v, control sample) *Interval {
	if v.n < 2 || control.n < 2 {
		return nil
	}
	m1, m0 := v.mean(), control.mean()
	a, b := v.variance()/v.n, control.variance()/control.n
	d := m1 - m0
	half := 0.0
	if se2 := a + b; se2 > 0 {
		df := se2 * se2 / (a*a/(v.n-1) + b*b/(control.n-1))
		half = tQuantile975(df) * math.Sqrt(se2)
	}
	return &Interval{Difference: d, CI95: [2]float64{d - half, d + half}, Relative: ratio(d, m0)}
}

// tQuantile975 is the 97.5th percentile of Student's t with df degrees of
// freedom, by its Cornish–Fisher expansion to the fourth order in 1/df
// (Abramowitz & Stegun 26.7.5); TestTQuantile bounds its error against
// tabled values. df below 1 is taken as 1.
func tQuantile975(df float64) float64 {
	df = max(df, 1)
	z := z95
	z2 := z * z
	g1 := (z2 + 1) * z / 4
	g2 := ((5*z2+16)*z2 + 3) * z / 96
	g3 := (((3*z2+19)*z2+17)*z2 - 15) * z / 384
	g4 := ((((79*z2+776)*z2+1482)*z2-1920)*z2 - 945) * z / 92160
	return z + g1/df + g2/(df*df) + g3/(df*df*df) + g4/(df*df*df*df)
}

// wilson is the Wilson score interval of a proportion of k in n.
func wilson(k, n float64) (lo, hi float64) {
	p := k / n
	z2 := z95 * z95
	den := 1 + z2/n
	center := (p + z2/(2*n)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return max(center-half, 0), min(center+half, 1)
}

// newcombe compares the proportions k₁/n₁ and k₀/n₀ with Newcombe's
// hybrid score interval (Newcombe 1998, method 10), built from the two
// Wilson intervals: it stays inside [−1, 1], is never of width 0, and
// keeps close to its nominal coverage for small counts and proportions
// near 0 or 1, where the Wald interval collapses. nil when either side
// has no one.
func newcombe(k1, n1, k0, n0 float64) *Interval {
	if n1 == 0 || n0 == 0 {
		return nil
	}
	p1, p0 := k1/n1, k0/n0
	l1, u1 := wilson(k1, n1)
	l0, u0 := wilson(k0, n0)
	d := p1 - p0
	return &Interval{Difference: d, CI95: [2]float64{
		d - math.Sqrt((p1-l1)*(p1-l1)+(u0-p0)*(u0-p0)),
		d + math.Sqrt((u1-p1)*(u1-p1)+(p0-l0)*(p0-l0)),
	}, Relative: ratio(d, p0)}
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := a / b
	return &r
}
