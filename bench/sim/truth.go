package main

import (
	"math"
	"math/rand/v2"
)

// The hidden truth: every offer converts a customer with probability
// sigmoid(b0 + Σ b_i·x_i) over the covariates x below. The engine never
// sees it; it sees only the catalog (features, segments, offers) and the
// outcomes drawn from it.
//
// The first covariates are what the catalog's segments are built on,
// because marketers build segments on what drives behaviour. The rest are
// real effects no segment captures (spend beyond the VIP threshold, age,
// browsing, the app, the region): the engine, which learns per offer and
// first segment, cannot tell customers of one segment apart by them, and
// neither can it tell apart the members of its first segment by their
// other segments. That is why learned stays below the oracle.
const (
	// Captured by a segment.
	xVIP = iota
	xCart
	xNew
	xLapsed
	xProspect
	xActive
	// Captured by none.
	xSpend // log lifetime value, standardised
	xAge   // standardised
	xViews // page views in the last 7 days, standardised
	xApp   // app installed, centred
	xNorth // lives in the north region
	nx

	firstResidual = xSpend
)

// covariates returns the truth's view of c.
func covariates(c *customer) [nx]float64 {
	var x [nx]float64
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	x[xVIP] = flag(c.ltv >= 1500 || c.tier >= 2)
	x[xCart] = flag(c.cart > 0)
	x[xNew] = flag(c.signup <= 30)
	x[xLapsed] = flag(c.ltv > 0 && c.purchase > 90)
	x[xProspect] = flag(c.ltv == 0)
	x[xActive] = flag(c.purchase >= 0 && c.purchase <= 30)
	if c.ltv > 0 {
		x[xSpend] = (math.Log(c.ltv) - math.Log(250)) / 1.1
	}
	x[xAge] = (c.age - 41) / 13
	x[xViews] = (float64(min(c.views, 20)) - 4) / 4
	x[xApp] = flag(c.app) - 0.35
	x[xNorth] = flag(regions[c.region] == "north")
	return x
}

// truth holds each offer's logistic model, by rules.Offer.Index.
type truth struct {
	b0   []float64
	coef [][nx]float64
}

// newTruth draws the model of every offer from its template: the base
// rate and effects of the template, each offer varying around them. The
// effects of the covariates no segment captures are then scaled together
// so that they make up residual, a share in [0, 1), of the variance of
// the log-odds across the population (averaged over the offers): the
// segments capture the rest of what drives behaviour.
func newTruth(rng *rand.Rand, offers []offerSpec, pop []customer, residual float64) *truth {
	t := &truth{b0: make([]float64, len(offers)), coef: make([][nx]float64, len(offers))}
	for i, o := range offers {
		tp := o.template
		t.b0[i] = math.Log(tp.base/(1-tp.base)) + 0.25*rng.NormFloat64()
		for k := range nx {
			b := tp.effects[k] * (0.8 + 0.4*rng.Float64())
			if k >= firstResidual {
				b += 0.1 * rng.NormFloat64()
			}
			t.coef[i][k] = b
		}
	}
	seg, res := t.variances(pop)
	scale := 0.0
	if residual > 0 && res > 0 {
		scale = math.Sqrt(residual / (1 - residual) * seg / res)
	}
	for i := range t.coef {
		for k := firstResidual; k < nx; k++ {
			t.coef[i][k] *= scale
		}
	}
	return t
}

// variances returns the variance across pop of the segment part and of
// the residual part of the log-odds, averaged over the offers.
func (t *truth) variances(pop []customer) (seg, res float64) {
	if len(pop) == 0 || len(t.coef) == 0 {
		return 0, 0
	}
	type moments struct{ sum, sq float64 }
	ms := make([][2]moments, len(t.coef))
	for j := range pop {
		x := covariates(&pop[j])
		for i, c := range t.coef {
			var a, b float64
			for k := range firstResidual {
				a += c[k] * x[k]
			}
			for k := firstResidual; k < nx; k++ {
				b += c[k] * x[k]
			}
			ms[i][0].sum += a
			ms[i][0].sq += a * a
			ms[i][1].sum += b
			ms[i][1].sq += b * b
		}
	}
	n := float64(len(pop))
	variance := func(m moments) float64 { return m.sq/n - (m.sum/n)*(m.sum/n) }
	for _, m := range ms {
		seg += variance(m[0])
		res += variance(m[1])
	}
	return seg / float64(len(ms)), res / float64(len(ms))
}

// p is the probability that offer i converts a customer of covariates x.
func (t *truth) p(i int, x *[nx]float64) float64 {
	z := t.b0[i]
	for k, b := range t.coef[i] {
		z += b * x[k]
	}
	return 1 / (1 + math.Exp(-z))
}
