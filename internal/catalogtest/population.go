package catalogtest

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// Epoch is the clock of a Population whose Now is zero. Tests and
// benchmarks decide at Epoch so that windows and schedules give the same
// answers whatever the date.
var Epoch = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Population is a deterministic crowd of customers for the features that
// Generate and the retail example declare. Customer i is the same for the
// same Seed and Now, whatever else is generated, so a load driver may
// write customers in any order or in parallel.
type Population struct {
	// Seed selects the population; every seed, including 0, is valid.
	// Default 0.
	Seed uint64
	// Now is the population's present: events happen in the 180 days
	// before it, never after. Default Epoch.
	Now time.Time
}

// Customer is one generated customer: the profile attributes a CRM would
// set and the event history the channels would have sent, oldest first.
type Customer struct {
	ID     string
	Attrs  map[string]featurestore.Value
	Events []featurestore.Event
}

var (
	tiers      = []string{"none", "none", "none", "none", "none", "silver", "silver", "silver", "gold", "platinum"}
	regions    = []string{"north", "south", "east", "west", "unknown"}
	categories = []string{"running", "outdoor", "kids", "electronics", "home", "fashion"}
	reasons    = []string{"delivery", "return", "billing", "product", "cancel", "complaint"}
	webPaths   = []string{"/", "/running", "/outdoor", "/kids", "/sale", "/product/1", "/cart"}
)

// Customer returns customer i (from 0): id "c-<i>", attributes for every
// profile feature and 0 to about 40 events of the types the features
// aggregate (purchase, cart_add, product_view, page_view, call, app_open).
func (p Population) Customer(i int) Customer {
	now := p.now()
	rng := rand.New(rand.NewPCG(p.Seed, uint64(i)))
	c := Customer{ID: "c-" + strconv.Itoa(i), Attrs: make(map[string]featurestore.Value, 9)}

	ltv := 0.0
	if rng.IntN(4) != 0 { // a quarter never bought anything
		ltv = math.Round(math.Exp(5.5+1.2*rng.NormFloat64())*100) / 100
	}
	interests := []string{}
	for _, k := range rng.Perm(len(categories))[:rng.IntN(4)] {
		interests = append(interests, categories[k])
	}
	signup := rng.IntN(1500) + 1
	if rng.IntN(12) == 0 {
		signup = rng.IntN(30) + 1 // new customers
	}
	appInstalled := rng.IntN(5) < 2
	c.Attrs["lifetime_value"] = featurestore.Number(ltv)
	c.Attrs["tier"] = featurestore.String(tiers[rng.IntN(len(tiers))])
	c.Attrs["interests"] = featurestore.List(interests)
	c.Attrs["loyalty_points"] = featurestore.Number(math.Floor(ltv * (0.5 + rng.Float64())))
	c.Attrs["opted_out_sms"] = featurestore.Bool(rng.IntN(5) == 0)
	c.Attrs["opted_out_email"] = featurestore.Bool(rng.IntN(10) == 0)
	c.Attrs["region"] = featurestore.String(regions[rng.IntN(len(regions))])
	c.Attrs["app_installed"] = featurestore.Bool(appInstalled)
	c.Attrs["signup_at"] = featurestore.Time(now.Add(-time.Duration(signup) * 24 * time.Hour))

	// ago returns a time up to days before now, to the second.
	ago := func(days float64) time.Time {
		return now.Add(-time.Duration(rng.Float64() * days * float64(24*time.Hour))).Truncate(time.Second)
	}
	ev := func(typ, channel string, at time.Time, props map[string]any) {
		c.Events = append(c.Events, featurestore.Event{CustomerID: c.ID, Type: typ, Channel: channel, Time: at, Properties: props})
	}
	if ltv > 0 {
		horizon := 180.0
		if rng.IntN(3) == 0 {
			horizon = 30 // recent buyers
		}
		for range 1 + rng.IntN(6) {
			ev("purchase", pickOf(rng, []string{"web", "app", "store"}), ago(horizon), map[string]any{"amount": math.Round((10+rng.ExpFloat64()*80)*100) / 100})
		}
	}
	for range rng.IntN(4) {
		ev("cart_add", pickOf(rng, []string{"web", "app"}), ago(3), map[string]any{"sku": "sku-" + strconv.Itoa(rng.IntN(5000))})
	}
	for range rng.IntN(8) {
		ev("product_view", pickOf(rng, []string{"web", "app"}), ago(14), map[string]any{"category": pickOf(rng, categories)})
	}
	for range rng.IntN(16) {
		ev("page_view", "web", ago(10), map[string]any{"path": pickOf(rng, webPaths)})
	}
	if rng.IntN(4) == 0 {
		for range 1 + rng.IntN(3) {
			ev("call", "call_center", ago(40), map[string]any{"reason": pickOf(rng, reasons)})
		}
	}
	if appInstalled {
		for range rng.IntN(6) {
			ev("app_open", "app", ago(30), nil)
		}
	}
	slices.SortStableFunc(c.Events, func(a, b featurestore.Event) int { return a.Time.Compare(b.Time) })
	return c
}

func (p Population) now() time.Time {
	if p.Now.IsZero() {
		return Epoch
	}
	return p.Now
}

func pickOf(rng *rand.Rand, list []string) string { return list[rng.IntN(len(list))] }

// Record returns c as a store would hold it under schema s at now: the
// attributes s declares set, and every event applied. Attributes s does
// not declare are left out, as the API would reject them.
func (c *Customer) Record(s *featurestore.Schema, now time.Time) *featurestore.Record {
	r := &featurestore.Record{}
	for name, v := range c.Attrs {
		if f, ok := s.Lookup(name); ok && f.From == nil && f.Type == v.Kind {
			r.SetAttr(name, v)
		}
	}
	for i := range c.Events {
		r.Apply(s, &c.Events[i], now)
	}
	return r
}

// AttrsJSON returns c's attributes as the body of
// PUT /v1/customers/{id} carries them: {"features": AttrsJSON()}.
func (c *Customer) AttrsJSON() map[string]any {
	m := make(map[string]any, len(c.Attrs))
	for k, v := range c.Attrs {
		m[k] = v.JSON()
	}
	return m
}

// Vectors returns the feature vectors under schema s of customers 0 to
// n-1 at the population's Now, ready for Decide.
func (p Population) Vectors(s *featurestore.Schema, n int) []featurestore.Vector {
	now := p.now()
	out := make([]featurestore.Vector, n)
	for i := range out {
		c := p.Customer(i)
		out[i] = c.Record(s, now).Features(s, now, nil)
	}
	return out
}
