package ope

import (
	"errors"
	"fmt"
	"math"
)

// Item is one offer a logged decision returned.
type Item struct {
	// Reward is the reward observed for the offer: 1 for a click, the
	// number of conversions, their value.
	Reward float64
	// Logging is the probability the logging policy returned the offer
	// (its propensity), in [0, 1]. Below Options.Floor it is clipped.
	Logging float64
	// Target is the probability the target policy returns the offer in
	// the same decision, in [0, 1].
	Target float64
	// Model is the reward model's prediction of Reward (DR only).
	Model float64
}

// Sample is one logged decision.
type Sample struct {
	Items []Item
	// Direct is the reward model's value of the target policy on the
	// decision, the sum over every offer a of target(a) × model(a),
	// including the offers the logging policy did not return (DR only).
	Direct float64
	// TargetMass is the sum over every offer of target(a): the number of
	// offers the target policy is expected to return (1 when it returns
	// one offer a decision, 0 when it returns none). SNIPS normalises by
	// it.
	TargetMass float64
}

// Options tunes the estimators and the overlap warnings. The zero value
// takes every default.
type Options struct {
	// Floor clips a logged propensity below it up to it, bounding a
	// weight to Target/Floor; each clip is counted. Default 0.01.
	Floor float64
	// MaxWeight is the weight past which an overlap warning is raised:
	// one decision then speaks for more than MaxWeight. Default 20.
	MaxWeight float64
	// MinESSShare is the share of the sample below which the effective
	// sample size raises an overlap warning. Default 0.1.
	MinESSShare float64
	// Z is the normal quantile of the intervals. Default 1.959964 (95%).
	Z float64
}

// Option defaults.
const (
	DefaultFloor       = 0.01
	DefaultMaxWeight   = 20
	DefaultMinESSShare = 0.1
	DefaultZ           = 1.959964
)

func (o Options) withDefaults() (Options, error) {
	if o.Floor < 0 || o.Floor > 1 || o.MaxWeight < 0 || o.MinESSShare < 0 || o.MinESSShare > 1 || o.Z < 0 {
		return o, errors.New("ope: Floor and MinESSShare must be in [0, 1], MaxWeight and Z not negative")
	}
	if o.Floor == 0 {
		o.Floor = DefaultFloor
	}
	if o.MaxWeight == 0 {
		o.MaxWeight = DefaultMaxWeight
	}
	if o.MinESSShare == 0 {
		o.MinESSShare = DefaultMinESSShare
	}
	if o.Z == 0 {
		o.Z = DefaultZ
	}
	return o, nil
}

// Estimate is one estimator's value per decision with its interval.
type Estimate struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	// StdErr is the standard error the interval is Value ± Z·StdErr of.
	StdErr float64 `json:"std_err"`
}

// Covers reports whether v is within the interval.
func (e Estimate) Covers(v float64) bool { return e.Low <= v && v <= e.High }

// Result is the estimates of one target policy on one sample.
type Result struct {
	N     int      `json:"n"` // decisions
	IPS   Estimate `json:"ips"`
	SNIPS Estimate `json:"snips"`
	DR    Estimate `json:"dr"`
	// Logged is the logging policy's own observed value per decision
	// (the mean reward), for comparison, with its interval.
	Logged Estimate `json:"logged"`
	// ESS is Kish's effective sample size of the weights,
	// (Σw)²/Σw², over every logged offer.
	ESS float64 `json:"ess"`
	// Items is the number of logged offers the weights are over.
	Items int `json:"items"`
	// MaxWeight is the largest weight.
	MaxWeight float64 `json:"max_weight"`
	// Clipped counts the propensities below Options.Floor, raised to it;
	// Zero those of them that were 0 where the target policy would
	// return the offer (the logging policy, by its estimate, never
	// could: the weight is then only a bound).
	Clipped int `json:"clipped"`
	Zero    int `json:"zero"`
	// Warnings say why the overlap of the two policies may be too small
	// to trust the estimates; none when it is not.
	Warnings []string `json:"warnings,omitempty"`
}

// Evaluate estimates the target policy's value per decision on samples.
//
// IPS is the mean over decisions of Σ w·reward, w = Target/Logging
// (unbiased when every offer the target may return could have been
// logged); its interval is the normal approximation on the per-decision
// terms. SNIPS divides the same sum by the sum of the weights, scaled
// by the mean TargetMass (biased, of order 1/n, but bounded by the
// rewards and of lower variance); its interval is the delta method for
// the ratio. DR is the mean of Direct + Σ w·(reward − Model) (unbiased
// when either the propensities or the reward model are right); its
// interval is the normal approximation on the per-decision terms.
func Evaluate(samples []Sample, opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	res := Result{N: len(samples)}
	if len(samples) == 0 {
		return res, errors.New("ope: no logged decisions")
	}
	n := float64(len(samples))
	ips := make([]float64, len(samples))
	norm := make([]float64, len(samples))
	dr := make([]float64, len(samples))
	logged := make([]float64, len(samples))
	var sumW, sumW2, mass float64
	for i := range samples {
		s := &samples[i]
		dr[i] = s.Direct
		mass += s.TargetMass
		for _, it := range s.Items {
			if it.Logging < 0 || it.Logging > 1 || it.Target < 0 || it.Target > 1 || math.IsNaN(it.Reward) || math.IsInf(it.Reward, 0) {
				return Result{}, fmt.Errorf("ope: decision %d: propensities must be in [0, 1] and rewards finite, got %+v", i, it)
			}
			p := it.Logging
			if p < opts.Floor {
				p = opts.Floor
				res.Clipped++
				if it.Logging == 0 && it.Target > 0 {
					res.Zero++
				}
			}
			w := it.Target / p
			ips[i] += w * it.Reward
			norm[i] += w
			dr[i] += w * (it.Reward - it.Model)
			logged[i] += it.Reward
			sumW += w
			sumW2 += w * w
			res.MaxWeight = max(res.MaxWeight, w)
			res.Items++
		}
	}
	res.IPS = meanInterval(ips, opts.Z)
	res.DR = meanInterval(dr, opts.Z)
	res.Logged = meanInterval(logged, opts.Z)
	res.SNIPS = ratioInterval(ips, norm, mass/n, opts.Z)
	if sumW2 > 0 {
		res.ESS = sumW * sumW / sumW2
	}
	res.Warnings = warnings(&res, opts)
	return res, nil
}

// meanInterval is the mean of xs with the normal approximation's
// interval.
func meanInterval(xs []float64, z float64) Estimate {
	n := float64(len(xs))
	var sum float64
	for _, x := range xs {
		sum += x
	}
	m := sum / n
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	se := 0.0
	if len(xs) > 1 {
		se = math.Sqrt(ss / (n - 1) / n)
	}
	return Estimate{Value: m, Low: m - z*se, High: m + z*se, StdErr: se}
}

// ratioInterval is scale·Σy/Σz with the delta method's interval:
// Var(ȳ/z̄) ≈ Var(y − R·z)/(n·z̄²), R = ȳ/z̄ (scale taken as known).
func ratioInterval(y, zs []float64, scale, z float64) Estimate {
	n := float64(len(y))
	var sy, sz float64
	for i := range y {
		sy += y[i]
		sz += zs[i]
	}
	if sz == 0 {
		// No weight: the target policy never returns a logged offer.
		return Estimate{}
	}
	r := sy / sz
	var ss float64
	for i := range y {
		d := y[i] - r*zs[i]
		ss += d * d
	}
	zbar := sz / n
	se := 0.0
	if len(y) > 1 {
		se = scale * math.Sqrt(ss/(n-1)/n) / zbar
	}
	v := scale * r
	return Estimate{Value: v, Low: v - z*se, High: v + z*se, StdErr: se}
}

// warnings explains why res's overlap may be too small to trust.
func warnings(res *Result, opts Options) []string {
	var ws []string
	if res.Items > 0 && res.ESS < opts.MinESSShare*float64(res.Items) {
		ws = append(ws, fmt.Sprintf("effective sample size %.0f is %.1f%% of the %d logged offers (under %.0f%%): a few decisions carry the estimate", res.ESS, 100*res.ESS/float64(res.Items), res.Items, 100*opts.MinESSShare))
	}
	if res.MaxWeight > opts.MaxWeight {
		ws = append(ws, fmt.Sprintf("largest weight %.1f is over %.0f: one decision speaks for %.0f", res.MaxWeight, opts.MaxWeight, res.MaxWeight))
	}
	if res.Zero > 0 {
		ws = append(ws, fmt.Sprintf("%d logged offers had propensity 0 where the new policy would return them: clipped to %g, their weight is a guess", res.Zero, opts.Floor))
	}
	if res.Clipped > res.Zero {
		ws = append(ws, fmt.Sprintf("%d logged propensities below %g were clipped to it: their weights are capped, which biases IPS and DR toward 0", res.Clipped-res.Zero, opts.Floor))
	}
	if res.ESS == 0 {
		ws = append(ws, "no logged offer is one the new policy would return: nothing to estimate from")
	}
	return ws
}
