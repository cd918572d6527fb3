package main

import (
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// The populations --population names.
const (
	popRetail = "retail"
	popQuiet  = "quiet-winner"
	popOBD    = "obd"
)

var populations = []string{popRetail, popQuiet, popOBD}

// populationDefaults are the customers and decisions of a population
// when the flags leave them 0.
var populationDefaults = map[string][2]int{
	popRetail: {100000, 200000},
	popQuiet:  {6000, 60000},
	popOBD:    {10000, 1000000}, // of 3 offers each: see obdWorld
}

// quietWinner is the population of issue 14's outside check: three
// personas, six offers, and for the bargain hunters the best offer
// (saver-4) converts at 25% but is worth 4, while bundle-10 is worth 10
// and converts at 9%. Ranked by prior propensity × value, the high-value
// offers are tried first, and a Thompson sampler that draws each offer's
// rate on the same scale tries saver-4 rarely enough to starve it. Every
// offer is capped at 2 impressions a week; 6000 customers decide 60,000
// times over 60 days, so a customer decides about 1.2 times a week and
// the cap binds on the best offer now and then: the best policy is the
// best ranking of the top offers per persona, not one best offer. The
// oracle is myopic (the best uncapped offer now), which is the optimum
// when caps bind rarely; the simulation's horizon is long against the
// cap's window so that over the last half no policy gains by having
// saved its caps.
func quietWinner() *world {
	return &world{
		name: popQuiet,
		offers: []worldOffer{
			{"saver-4", 4}, {"bundle-10", 10}, {"basics-6", 6}, {"style-8", 8}, {"socks-3", 3}, {"luxe-12", 12},
		},
		kinds: []worldKind{
			{"bargain", []float64{0.25, 0.09, 0.10, 0.05, 0.20, 0.03}}, // value × rate: 1.00 0.90 0.60 0.40 0.60 0.36
			{"premium", []float64{0.05, 0.10, 0.06, 0.09, 0.04, 0.12}}, // 0.20 1.00 0.36 0.72 0.12 1.44
			{"casual", []float64{0.10, 0.05, 0.12, 0.08, 0.12, 0.02}},  // 0.40 0.50 0.72 0.64 0.36 0.24
		},
		share:     []float64{0.4, 0.3, 0.3},
		cap:       worldCap{max: 2, within: 7 * 24 * time.Hour},
		horizon:   60 * 24 * time.Hour,
		priorRate: 0.02, priorStrength: 50, // nextbest's defaults: the marketers set none
	}
}

//go:embed testdata/obd/prior_bts.yaml
var obdPriors []byte

// obdWorld is the Open Bandit Dataset's ZOZOTOWN "all" campaign (see
// testdata/obd/README.md): 80 items, each clicked at the mean of the
// Beta prior production Thompson sampling used, alpha / (alpha + beta),
// 0.317% on average and 0.501% for the best. Every item worth 1, no
// caps, one kind of customer. The catalog's prior is the rate a marketer
// knows before learning anything, the site's published uniform random
// CTR (0.35%), not the per-item priors.
//
// As on the site, a decision shows 3 items (the dataset's positions
// 1-3; no position effect is simulated), each an impression with its
// own click: the oracle shows the 3 best items, 1.52x uniform random
// (the best one alone would be 1.58x), and the published 1.43x of
// production is per impression over the 3 positions too. The horizon is
// the source's order of magnitude: production's Bernoulli Thompson
// sampling was pre-trained "for over a month" before the 7 days of its
// log, about 12 million impressions (the dataset's documentation,
// zr-obp.readthedocs.io/en/latest/about.html); the default, 1 million
// decisions (3 million impressions), is a quarter of the 7 days alone,
// because 20 seeds of it take minutes. With 80 arms 0.1 to 0.2 points
// of CTR apart, 400,000 single-slot decisions (the horizon before) is
// too short to tell the best items apart: Thompson sampling with the same prior,
// updated after every impression, outside the engine (TestOBDHorizon),
// reaches 0.77 to 0.84 of the best item there and 0.87 to 0.89 at 2
// million.
func obdWorld() (*world, error) {
	var campaigns map[string]struct{ Alpha, Beta []float64 }
	if err := yaml.Unmarshal(obdPriors, &campaigns); err != nil {
		return nil, fmt.Errorf("obd priors: %w", err)
	}
	all := campaigns["all"]
	if len(all.Alpha) == 0 || len(all.Alpha) != len(all.Beta) {
		return nil, fmt.Errorf("obd priors: campaign all has %d alphas and %d betas", len(all.Alpha), len(all.Beta))
	}
	w := &world{name: popOBD, share: []float64{1}, horizon: 7 * 24 * time.Hour, slots: 3, priorRate: 0.0035, priorStrength: 50}
	kind := worldKind{name: "all", p: make([]float64, len(all.Alpha))}
	for i, a := range all.Alpha {
		w.offers = append(w.offers, worldOffer{id: "item-" + strconv.Itoa(i), value: 1})
		kind.p[i] = a / (a + all.Beta[i])
	}
	w.kinds = []worldKind{kind}
	return w, nil
}
