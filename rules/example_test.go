package rules_test

import (
	"fmt"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// A catalog is loaded and compiled once; a decision then evaluates the
// customer's segments and the channel's offers against their features.
func ExampleLoad() {
	catalog, err := rules.Load("catalog.yaml", []byte(`
channels: [web, sms]
arbitration: static # rank by value × weight; the default learns propensities
features:
  lifetime_value: {type: number, default: 0}
  cart_items:     {type: number, from: {event: cart_add, op: count, reset_on: [purchase]}}
segments:
  vip: customer.lifetime_value >= 1000
offers:
  - id: cart-reminder
    channels: [web, sms]
    eligible: customer.cart_items > 0
    value: 20
    content:
      web: {headline: "Your cart is waiting"}
      sms: {text: "Your cart is waiting"}
  - id: vip-lounge
    channels: [web]
    eligible: '"vip" in segments'
    value: 50
    content:
      web: {headline: "Welcome to the VIP lounge"}
defaults:
  web: {headline: "Welcome"}
  sms: {text: "Hello"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

	// A customer who put two items in their cart, and spent a lot before.
	var record featurestore.Record
	record.SetAttr("lifetime_value", featurestore.Number(1500))
	for range 2 {
		record.Apply(catalog.Schema, &featurestore.Event{Type: "cart_add", Time: now.Add(-time.Hour)}, now)
	}
	features := record.Features(catalog.Schema, now, nil)

	var engine decision.Engine
	var res decision.Result
	for _, channel := range []string{"web", "sms"} {
		req := &decision.Request{Channel: channel, Limit: 2, Now: now}
		if err := engine.Decide(catalog, features, req, &res); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(channel, "segments:", res.Segments)
		for _, c := range res.Offers {
			fmt.Printf("  %s %g %s\n", c.Offer.ID, c.Score, c.Content.JSON)
		}
	}

	// An unknown customer has the schema's defaults: nothing is eligible,
	// and the channel's default content is the answer.
	if err := engine.Decide(catalog, nil, &decision.Request{Channel: "sms", Now: now}, &res); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("unknown customer: %d offers, fallback %s\n", len(res.Offers), res.Fallback.JSON)

	// Output:
	// web segments: [vip]
	//   vip-lounge 50 {"headline":"Welcome to the VIP lounge"}
	//   cart-reminder 20 {"headline":"Your cart is waiting"}
	// sms segments: [vip]
	//   cart-reminder 20 {"text":"Your cart is waiting"}
	// unknown customer: 0 offers, fallback {"text":"Hello"}
}

// Every problem of a catalog is reported at once, each with its file,
// position, object and field.
func ExampleErrors() {
	_, err := rules.Load("catalog.yaml", []byte(`channels: [web]
features:
  tier: {type: string, default: "none"}
offers:
  - id: gold
    channels: [web, fax]
    eligible: customer.tier == 1
    content:
      web: {headline: "Gold"}
`))
	fmt.Println(err)
	// Output:
	// catalog.yaml:6:21: offer "gold": channels: channel "fax" is not one of web
	// catalog.yaml:7:29: offer "gold": eligible: invalid operation: == (mismatched types string and int) in `customer.tier == 1`
}
