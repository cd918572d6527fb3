package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// epoch is the simulation's clock at the first decision.
var epoch = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

var (
	tiers     = [...]string{"none", "silver", "gold", "platinum"}
	regions   = [...]string{"north", "south", "east", "west"}
	interests = [...]string{"running", "outdoor", "kids", "electronics", "fashion", "home"}
	// interestShare is the share of customers who declared each interest.
	interestShare = [len(interests)]float64{0.22, 0.18, 0.20, 0.20, 0.32, 0.15}
)

// customer is one member of the population, kept compact: the feature
// vector the engine reads is built from it per decision.
type customer struct {
	id        string
	ltv       float64 // lifetime value, EUR; 0 for a customer who never bought
	tier      uint8   // index in tiers
	region    uint8   // index in regions
	age       float64
	signup    float64 // days between signing up and epoch
	purchase  float64 // days between the last purchase and epoch; < 0 for never
	cart      int     // items in the cart
	views     int     // page views in the last 7 days
	app       bool    // app installed
	interests uint8   // bit i: interests[i]
}

// population draws n customers from rng. The distributions are those of
// a mid-sized online retailer: a quarter of the accounts never bought;
// lifetime value of buyers is lognormal (median about 250 EUR, a long
// tail of big spenders); the loyalty tier follows spend, with noise;
// recency of the last purchase is exponential (mean 75 days); about one
// in six has something in the cart; page views are overdispersed
// (geometric); younger customers install the app more often.
func population(rng *rand.Rand, n int) []customer {
	cs := make([]customer, n)
	for i := range cs {
		c := &cs[i]
		c.id = "c-" + strconv.Itoa(i)
		c.age = math.Round(min(85, max(18, 41+13*rng.NormFloat64())))
		c.region = uint8(rng.IntN(len(regions)))
		c.signup = 30 + rng.ExpFloat64()*700
		if rng.Float64() < 0.08 {
			c.signup = rng.Float64() * 30 // signed up this month
		}
		c.purchase = -1
		if rng.Float64() < 0.75 {
			c.ltv = math.Round(math.Exp(math.Log(250)+1.1*rng.NormFloat64())*100) / 100
			c.purchase = min(c.signup, rng.ExpFloat64()*75)
		}
		switch u := rng.Float64(); {
		case c.ltv >= 2500 && u < 0.7, c.ltv >= 5000:
			c.tier = 3
		case c.ltv >= 900 && u < 0.6:
			c.tier = 2
		case c.ltv >= 300 && u < 0.5:
			c.tier = 1
		}
		if rng.Float64() < 0.16 {
			c.cart = 1 + rng.IntN(4)
		}
		c.views = int(rng.ExpFloat64() * 4) // geometric, mean about 3.5
		if c.cart > 0 {
			c.views += 2 + rng.IntN(6)
		}
		c.app = rng.Float64() < 0.55-0.006*(c.age-18)
		for k := range interests {
			share := interestShare[k]
			if interests[k] == "kids" && c.age >= 28 && c.age <= 50 {
				share *= 2
			}
			if rng.Float64() < share {
				c.interests |= 1 << k
			}
		}
	}
	return cs
}

// catalogFeatures is the features: section of the generated catalog.
const catalogFeatures = `features:
  lifetime_value:   {type: number, default: 0, description: "Net spend since the first order, in EUR"}
  tier:             {type: string, default: "none", description: "Loyalty tier: none, silver, gold or platinum"}
  region:           {type: string, default: "unknown"}
  age:              {type: number, default: 0}
  signup_at:        {type: time}
  last_purchase_at: {type: time}
  cart_items:       {type: number, default: 0}
  page_views_7d:    {type: number, default: 0}
  app_installed:    {type: bool, default: false}
  interests:        {type: list, description: "Categories the customer told us they like"}
`

// vectorizer builds the engine's feature vectors from customers.
type vectorizer struct {
	schema *featurestore.Schema
	idx    struct {
		ltv, tier, region, age, signup, purchase, cart, views, app, interests int
	}
	lists [1 << len(interests)][]string // the interests list of every bit set, shared read-only
}

func newVectorizer(c *rules.Catalog) (*vectorizer, error) {
	v := &vectorizer{schema: c.Schema}
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{"lifetime_value", &v.idx.ltv}, {"tier", &v.idx.tier}, {"region", &v.idx.region}, {"age", &v.idx.age},
		{"signup_at", &v.idx.signup}, {"last_purchase_at", &v.idx.purchase}, {"cart_items", &v.idx.cart},
		{"page_views_7d", &v.idx.views}, {"app_installed", &v.idx.app}, {"interests", &v.idx.interests},
	} {
		ft, ok := c.Schema.Lookup(f.name)
		if !ok {
			return nil, fmt.Errorf("catalog has no feature %q", f.name)
		}
		*f.dst = ft.Index
	}
	for bits := range v.lists {
		l := []string{}
		for k, name := range interests {
			if bits&(1<<k) != 0 {
				l = append(l, name)
			}
		}
		v.lists[bits] = l
	}
	return v, nil
}

// vector fills dst with c's features.
func (v *vectorizer) vector(dst featurestore.Vector, c *customer) featurestore.Vector {
	dst = v.schema.Defaults(dst)
	days := func(d float64) featurestore.Value {
		return featurestore.Time(epoch.Add(-time.Duration(d * float64(24*time.Hour))).Truncate(time.Second))
	}
	dst[v.idx.ltv] = featurestore.Number(c.ltv)
	dst[v.idx.tier] = featurestore.String(tiers[c.tier])
	dst[v.idx.region] = featurestore.String(regions[c.region])
	dst[v.idx.age] = featurestore.Number(c.age)
	dst[v.idx.signup] = days(c.signup)
	if c.purchase >= 0 {
		dst[v.idx.purchase] = days(c.purchase)
	}
	dst[v.idx.cart] = featurestore.Number(float64(c.cart))
	dst[v.idx.views] = featurestore.Number(float64(c.views))
	dst[v.idx.app] = featurestore.Bool(c.app)
	dst[v.idx.interests] = featurestore.List(v.lists[c.interests])
	return dst
}
