package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// template is a kind of offer: what the marketers wrote (eligibility,
// value range, weight) and, hidden from the engine, how it converts.
type template struct {
	offers   []variant // the offers of the template, dealt in order
	eligible string    // the offers' eligible rule unless they set one; "" for every customer
	webOnly  bool
	value    [2]float64 // the offers' values are drawn in this range
	weight   float64    // 0 means 1
	// Hidden: the conversion rate of a customer whose covariates are all
	// 0 (a non-VIP buyer of median spend and age who last bought 30 to 90
	// days ago), and the log-odds effect of each covariate.
	base    float64
	effects [nx]float64
}

// templates are in the order offers are dealt from them, round robin, so
// that a small --offers still spans every kind. High values tend to go
// with low rates: the premium membership, financing and electronics are
// worth the most and convert the least, except for the right customers,
// which is what static value × weight ranking cannot see.
var templates = []template{
	{offers: []variant{{id: "new-arrivals"}, {id: "staff-picks", eligible: `customer.page_views_7d >= 3`}},
		value: [2]float64{4, 7}, base: 0.05,
		effects: fx(xActive, 0.4, xLapsed, -0.4, xProspect, -0.3, xViews, 0.25, xApp, 0.1)},
	{offers: []variant{{id: "free-shipping"}, {id: "free-returns", eligible: `customer.cart_items > 0 || customer.page_views_7d >= 5`}},
		eligible: `!("vip" in segments)`, value: [2]float64{8, 12}, base: 0.035,
		effects: fx(xCart, 1.0, xNew, 0.4, xProspect, 0.3, xSpend, -0.2, xViews, 0.2)},
	{offers: []variant{{id: "premium-membership", eligible: `customer.tier != "none" || customer.lifetime_value >= 500`}, {id: "premium-trial", eligible: `customer.tier == "none" && customer.lifetime_value > 0`}},
		value: [2]float64{40, 50}, weight: 1.2, base: 0.006,
		effects: fx(xVIP, 1.9, xActive, 0.6, xLapsed, -0.6, xSpend, 0.35, xAge, 0.15)},
	{offers: []variant{{id: "welcome-10"}, {id: "first-order-gift"}},
		eligible: `"new_customer" in segments || "prospect" in segments`, value: [2]float64{10, 16}, base: 0.04,
		effects: fx(xNew, 0.9, xProspect, 0.2, xCart, 0.5, xViews, 0.3, xApp, 0.2)},
	{offers: []variant{{id: "cart-reminder"}, {id: "cart-discount-5", eligible: `customer.cart_items >= 2`}},
		eligible: `"cart_abandoner" in segments`, value: [2]float64{15, 25}, base: 0.09,
		effects: fx(xVIP, 0.3, xLapsed, -0.7, xNew, 0.3, xProspect, -0.3, xViews, 0.3, xApp, 0.15)},
	{offers: []variant{{id: "winback-20"}, {id: "we-miss-you"}},
		eligible: `"lapsed" in segments`, value: [2]float64{15, 25}, weight: 1.5, base: 0.03,
		effects: fx(xVIP, 0.6, xLapsed, -0.3, xSpend, 0.3, xAge, 0.15)},
	{offers: []variant{{id: "vip-early-access"}, {id: "vip-personal-styling"}},
		eligible: `"vip" in segments`, value: [2]float64{35, 50}, base: 0.05,
		effects: fx(xLapsed, -1.0, xActive, 0.5, xCart, 0.3, xSpend, 0.2, xAge, 0.2)},
	{offers: []variant{{id: "tier-upgrade"}, {id: "double-points", eligible: `customer.tier in ["silver", "gold", "platinum"] && customer.app_installed`}},
		eligible: `customer.tier in ["silver", "gold"]`, value: [2]float64{18, 28}, base: 0.035,
		effects: fx(xActive, 0.8, xLapsed, -0.7, xVIP, 0.2, xApp, 0.3)},
	{offers: []variant{{id: "app-download"}, {id: "app-scan-and-go", eligible: `!customer.app_installed && customer.region in ["north", "west"]`}},
		eligible: `!customer.app_installed`, webOnly: true, value: [2]float64{6, 10}, base: 0.03,
		effects: fx(xActive, 0.3, xAge, -0.6, xViews, 0.4)},
	{offers: []variant{{id: "pay-in-3", eligible: `customer.cart_items > 0 || customer.lifetime_value >= 300`}, {id: "store-card", eligible: `customer.lifetime_value >= 800`}},
		value: [2]float64{30, 45}, base: 0.008,
		effects: fx(xCart, 1.1, xVIP, 0.5, xAge, -0.25, xSpend, 0.2)},
	{offers: []variant{{id: "running-shoes-launch"}, {id: "running-club", eligible: `"running" in customer.interests && customer.age < 50`}},
		eligible: `"running" in customer.interests`, value: [2]float64{14, 30}, base: 0.05,
		effects: fx(xActive, 0.5, xLapsed, -0.4, xAge, -0.3, xViews, 0.2)},
	{offers: []variant{{id: "outdoor-gear-bundle"}, {id: "trail-jacket", eligible: `"outdoor" in customer.interests && customer.region in ["north", "east"]`}},
		eligible: `"outdoor" in customer.interests`, value: [2]float64{18, 35}, base: 0.035,
		effects: fx(xActive, 0.3, xVIP, 0.4, xAge, 0.2, xNorth, 0.3)},
	{offers: []variant{{id: "kids-winter-wear"}, {id: "back-to-school", eligible: `"family" in segments && customer.page_views_7d >= 2`}},
		eligible: `"family" in segments`, value: [2]float64{8, 20}, base: 0.06,
		effects: fx(xNew, 0.2, xActive, 0.3, xApp, 0.2)},
	{offers: []variant{{id: "headphones-deal"}, {id: "smartwatch-launch", eligible: `"electronics" in customer.interests && customer.lifetime_value >= 200`}},
		eligible: `"electronics" in customer.interests`, value: [2]float64{35, 50}, base: 0.012,
		effects: fx(xVIP, 0.8, xCart, 0.6, xAge, -0.3, xSpend, 0.3)},
	{offers: []variant{{id: "new-season-fashion"}, {id: "fashion-outlet", eligible: `"fashion" in customer.interests && !("vip" in segments)`}},
		eligible: `"fashion" in customer.interests`, value: [2]float64{10, 25}, base: 0.05,
		effects: fx(xNew, 0.4, xActive, 0.3, xAge, -0.35, xApp, 0.25)},
	{offers: []variant{{id: "home-refresh"}, {id: "kitchen-essentials", eligible: `"home" in customer.interests && customer.age >= 30`}},
		eligible: `"home" in customer.interests`, value: [2]float64{12, 30}, base: 0.03,
		effects: fx(xAge, 0.4, xLapsed, -0.3)},
}

// variant is one offer of a template: its id and, when the marketers
// narrowed it, its own eligibility.
type variant struct{ id, eligible string }

// fx builds an effects vector from covariate, effect pairs.
func fx(pairs ...float64) [nx]float64 {
	var e [nx]float64
	for i := 0; i+1 < len(pairs); i += 2 {
		e[int(pairs[i])] = pairs[i+1]
	}
	return e
}

// offerSpec is one offer of the generated catalog.
type offerSpec struct {
	id       string
	eligible string
	template *template
	value    float64
	weight   float64
}

// offerSpecs deals n offers from the templates, round robin, drawing each
// one's value from its template's range.
func offerSpecs(rng *rand.Rand, n int) []offerSpec {
	specs := make([]offerSpec, n)
	for i := range specs {
		tp := &templates[i%len(templates)]
		round := i / len(templates)
		v := variant{id: tp.offers[0].id + "-" + strconv.Itoa(round+1)}
		if round < len(tp.offers) {
			v = tp.offers[round]
		}
		if v.eligible == "" {
			v.eligible = tp.eligible
		}
		w := tp.weight
		if w == 0 {
			w = 1
		}
		specs[i] = offerSpec{id: v.id, eligible: v.eligible, template: tp, value: math.Round(tp.value[0] + rng.Float64()*(tp.value[1]-tp.value[0])), weight: w}
	}
	return specs
}

// catalogSegments is the segments: section of the generated catalog. The
// engine learns per offer, channel and a customer's first segment in this
// order, so the order is the marketers' view of what matters most.
const catalogSegments = `segments:
  vip: customer.lifetime_value >= 1500 || customer.tier in ["gold", "platinum"]
  cart_abandoner: customer.cart_items > 0
  new_customer: days_since(customer.signup_at) <= 30
  # Bought before, but not in a quarter.
  lapsed: customer.lifetime_value > 0 && days_since(customer.last_purchase_at) > 90
  # Has an account, never bought.
  prospect: customer.lifetime_value == 0
  active: days_since(customer.last_purchase_at) <= 30
  occasional: days_since(customer.last_purchase_at) <= 90
  # Targeting only: every customer is in one of the segments above first.
  family: '"kids" in customer.interests'
`

// learning is the catalog's learning: section.
type learning struct {
	explore       string // thompson or greedy
	priorRate     float64
	priorStrength float64
	minExplore    int     // learning.min_explore; -1: the catalog sets none
	model         bool    // learning.model over the segments and catalogModelTerms
	exploration   float64 // learning.model.exploration; 0: the catalog sets none
}

// catalogModelTerms are the numeric terms of the learning model a retail
// marketer would list: what the customer record says beyond the segments
// (spend capped where it stops mattering, age, browsing, the app, the
// region). The engine standardises them itself.
const catalogModelTerms = `  model:
    features:
      spend: min(customer.lifetime_value, 4000)
      age: customer.age
      views: min(customer.page_views_7d, 20)
      app: 'customer.app_installed ? 1 : 0'
      north: 'customer.region == "north" ? 1 : 0'
`

// catalogYAML writes the catalog: the features, segments and offers the
// marketers would write, and nothing of the truth. arbitration is static
// or learned.
func catalogYAML(offers []offerSpec, arbitration string, l learning) []byte {
	var b strings.Builder
	b.WriteString("# Generated by bench/sim: a retailer's web and app catalog.\n")
	b.WriteString("channels: [web, app]\n")
	fmt.Fprintf(&b, "learning:\n  prior: {rate: %g, strength: %g}\n  explore: %s\n  learn_by: segment\n", l.priorRate, l.priorStrength, l.explore)
	if l.minExplore >= 0 {
		fmt.Fprintf(&b, "  min_explore: %d\n", l.minExplore)
	}
	if l.model {
		b.WriteString(catalogModelTerms)
		if l.exploration > 0 {
			fmt.Fprintf(&b, "    exploration: %g\n", l.exploration)
		}
	}
	fmt.Fprintf(&b, "arbitration: %s\n", arbitration)
	b.WriteString(catalogFeatures)
	b.WriteString(catalogSegments)
	b.WriteString("offers:\n")
	for _, o := range offers {
		fmt.Fprintf(&b, "  - id: %s\n", o.id)
		if o.template.webOnly {
			b.WriteString("    channels: [web]\n")
		} else {
			b.WriteString("    channels: [web, app]\n")
		}
		if o.eligible != "" {
			fmt.Fprintf(&b, "    eligible: %s\n", strconv.Quote(o.eligible))
		}
		fmt.Fprintf(&b, "    value: %g\n", o.value)
		if o.weight != 1 {
			fmt.Fprintf(&b, "    weight: %g\n", o.weight)
		}
		fmt.Fprintf(&b, "    content:\n      web: {headline: %q}\n", o.id)
		if !o.template.webOnly {
			fmt.Fprintf(&b, "      app: {title: %q}\n", o.id)
		}
	}
	b.WriteString("defaults:\n  web: {headline: \"Welcome back\"}\n  app: {title: \"Welcome back\"}\n")
	return []byte(b.String())
}
