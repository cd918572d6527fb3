package decision

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// Posterior is the Beta posterior of an offer's success rate: the prior
// updated with the successes and failures of its impressions.
type Posterior struct {
	Alpha, Beta float64
}

// PosteriorOf combines prior with counts, where success names the outcome
// that counts as a success. Successes beyond impressions (a conversion
// whose impression was never reported) count as successes of unreported
// impressions rather than driving Beta negative.
func PosteriorOf(prior rules.Prior, n featurestore.Counts, success featurestore.Outcome) Posterior {
	s := n.Conversions
	if success == featurestore.Click {
		s = n.Clicks
	}
	fail := n.Impressions - s
	if fail < 0 {
		fail = 0
	}
	return Posterior{Alpha: prior.Alpha() + float64(s), Beta: prior.Beta() + float64(fail)}
}

// Mean is the posterior mean.
func (p Posterior) Mean() float64 { return p.Alpha / (p.Alpha + p.Beta) }

// Sample draws from the posterior.
func (p Posterior) Sample(r *rand.Rand) float64 {
	x := gamma(r, p.Alpha)
	y := gamma(r, p.Beta)
	if x+y == 0 {
		return p.Mean()
	}
	return x / (x + y)
}

// gamma draws from Gamma(a, 1) by Marsaglia and Tsang's method ("A simple
// method for generating gamma variables", 2000), boosting a < 1 with
// Gamma(a) = Gamma(a+1) · U^(1/a).
func gamma(r *rand.Rand, a float64) float64 {
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

// LearnKey is the key that splits the learning statistics of a customer
// under c's learn_by: the value of the learn_by feature, or the first
// segment (in declaration order) of segments; "" when the catalog does not
// split or the customer has no such value.
func LearnKey(c *rules.Catalog, f featurestore.Vector, segments []string) string {
	by := c.Learning.LearnBy
	switch {
	case by.Segment:
		if len(segments) > 0 {
			return segments[0]
		}
	case by.Feature != nil:
		if by.Feature.Index < len(f) {
			v := f[by.Feature.Index]
			switch v.Kind {
			case featurestore.TypeString:
				return v.Str
			case featurestore.TypeBool:
				return strconv.FormatBool(v.Int != 0)
			}
		}
	}
	return ""
}

// LearnKeyFor returns the learn key of a customer whose features are f
// (nil: the schema's defaults), evaluating the segments only when the
// catalog learns by segment. The outcome path uses it to credit an
// outcome to the cell its decision drew on.
func (e *Engine) LearnKeyFor(c *rules.Catalog, f featurestore.Vector, channel string, now time.Time) string {
	by := c.Learning.LearnBy
	if by.IsZero() {
		return ""
	}
	if !by.Segment {
		if len(f) != c.Schema.Len() {
			f = c.Schema.Defaults(nil)
		}
		return LearnKey(c, f, nil)
	}
	s := e.scratch()
	defer e.release(s)
	env := &s.env
	env.Reset(c)
	if len(f) != c.Schema.Len() {
		s.defaults = c.Schema.Defaults(s.defaults)
		f = s.defaults
	}
	env.Customer, env.Channel, env.Now = f, channel, now
	for _, seg := range c.Segments {
		if in, _ := seg.Rule.Eval(env); in {
			return seg.Name // the first segment is the key
		}
	}
	return ""
}
