package decision

import (
	"math"
	"math/rand/v2"
	"slices"
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
	var d betaDraws
	return d.sample(p, r)
}

// betaDraws draws from Beta posteriors as the ratio of two gamma draws,
// remembering the constants of the last shapes it drew for: the offers
// of a decision mostly share their posterior's shapes (the catalog's
// prior, when an offer has no statistics yet), and each shape's
// constants cost a square root and two divisions. The draws are exactly
// Posterior.Sample's.
type betaDraws struct {
	alpha, beta gammaShape
}

func (d *betaDraws) sample(p Posterior, r *rand.Rand) float64 {
	if p.Alpha != d.alpha.a {
		d.alpha = shapeOf(p.Alpha)
	}
	if p.Beta != d.beta.a {
		d.beta = shapeOf(p.Beta)
	}
	x := d.alpha.draw(r)
	y := d.beta.draw(r)
	if x+y == 0 {
		return p.Mean()
	}
	return x / (x + y)
}

// gammaShape holds the constants of Marsaglia and Tsang's method ("A
// simple method for generating gamma variables", 2000) for Gamma(a, 1).
// A shape a < 1 is boosted with Gamma(a) = Gamma(a+1) · U^(1/a). The zero
// gammaShape is the shape 0, which draws 0.
type gammaShape struct {
	a     float64 // the shape
	ok    bool    // a > 0; otherwise every draw is 0
	boost bool    // a < 1
	inv   float64 // 1/a, for the boost
	d, c  float64 // a' - 1/3 and 1/sqrt(9d), a' = a, or a+1 when boosted
}

func shapeOf(a float64) gammaShape {
	g := gammaShape{a: a, ok: a > 0}
	if !g.ok {
		return g
	}
	if a < 1 {
		g.boost, g.inv = true, 1/a
		a++
	}
	g.d = a - 1.0/3
	g.c = 1 / math.Sqrt(9*g.d)
	return g
}

// draw draws from Gamma(g.a, 1).
func (g *gammaShape) draw(r *rand.Rand) float64 {
	if !g.ok {
		return 0
	}
	boost := 1.0
	if g.boost {
		boost = math.Pow(r.Float64(), g.inv)
	}
	d, c := g.d, g.c
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
				if featurestore.IsModelKey(v.Str) {
					return "" // never a model's cell (featurestore/model.go)
				}
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
	env := s.outcomeEnv(c, f, channel, now)
	for _, seg := range c.Segments {
		if in, _ := seg.Rule.Eval(env); in {
			return seg.Name // the first segment is the key
		}
	}
	return ""
}

// outcomeEnv readies s's rule environment for the customer of an
// outcome whose features are f (nil: the schema's defaults), on channel
// at now: what LearnKeyFor and OutcomeLearning evaluate the catalog's rules
// against.
func (s *scratch) outcomeEnv(c *rules.Catalog, f featurestore.Vector, channel string, now time.Time) *rules.Env {
	env := &s.env
	env.Reset(c)
	if len(f) != c.Schema.Len() {
		s.defaults = c.Schema.Defaults(s.defaults)
		f = s.defaults
	}
	env.Customer, env.Channel, env.Now = f, channel, now
	return env
}

// ModelTerms appends to dst the terms of the catalog's learning model for
// a customer whose features are f (nil: the schema's defaults) deciding
// on channel at now, and returns it; nil when the catalog has no model.
func (e *Engine) ModelTerms(dst []float64, c *rules.Catalog, f featurestore.Vector, channel string, now time.Time) []float64 {
	if c.Learning.Model == nil {
		return nil
	}
	_, dst = e.OutcomeLearning(dst, c, f, channel, now)
	return dst
}

// OutcomeLearning returns what the outcome path credits an outcome of a
// customer whose features are f (nil: the schema's defaults) on channel
// at now with: the learn key (LearnKeyFor) and, appended to dst, the
// terms of the catalog's learning model (nil without one), the segments
// evaluated once for both.
func (e *Engine) OutcomeLearning(dst []float64, c *rules.Catalog, f featurestore.Vector, channel string, now time.Time) (string, []float64) {
	by, m := c.Learning.LearnBy, c.Learning.Model
	if m == nil {
		return e.LearnKeyFor(c, f, channel, now), nil
	}
	s := e.scratch()
	defer e.release(s)
	env := s.outcomeEnv(c, f, channel, now)
	if m.Segments || by.Segment {
		for _, seg := range c.Segments {
			if in, _ := seg.Rule.Eval(env); in {
				env.AddSegment(seg)
			}
		}
	}
	key := ""
	switch {
	case by.Segment:
		if len(env.Segments) > 0 {
			key = env.Segments[0] // the first segment is the key
		}
	case !by.IsZero():
		key = LearnKey(c, env.Customer, nil)
	}
	d := m.Dim()
	dst = slices.Grow(dst[:0], d)[:d]
	m.Eval(env, dst)
	return key, dst
}
