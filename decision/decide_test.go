package decision_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// now is the fixed clock of every decision here: Black Friday week, when
// the retail catalog's VIP early access and doorbusters run, summer
// clearance is over and the spring preview has not begun.
var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

var (
	retailOnce sync.Once
	retail     *rules.Catalog
	retailErr  error
)

func retailCatalog(t testing.TB) *rules.Catalog {
	t.Helper()
	retailOnce.Do(func() {
		retail, retailErr = rules.LoadFile("../examples/retail/catalog.yaml")
		if retail != nil {
			// These tests check eligibility and ranking by business
			// value; learned arbitration has its own tests.
			retail.Arbitration = rules.Arbitration{Static: true}
		}
	})
	if retailErr != nil {
		t.Fatal(retailErr)
	}
	return retail
}

func daysAgo(d float64) time.Time { return now.Add(-time.Duration(d * float64(24*time.Hour))) }

// vector builds a feature vector from the schema's defaults and the given
// values, by feature name.
func vector(t testing.TB, c *rules.Catalog, values map[string]any) featurestore.Vector {
	t.Helper()
	v := c.Schema.Defaults(nil)
	for name, x := range values {
		f, ok := c.Schema.Lookup(name)
		if !ok {
			t.Fatalf("no feature %q", name)
		}
		val, err := featurestore.Coerce(f.Type, x)
		if err != nil {
			t.Fatalf("feature %s: %v", name, err)
		}
		v[f.Index] = val
	}
	return v
}

// The customers of the retail tests.
var (
	// vera is a gold VIP runner who bought 10 days ago and uses the app.
	vera = map[string]any{
		"lifetime_value": 2500.0, "tier": "gold", "interests": []string{"running", "outdoor"},
		"loyalty_points": 800.0, "app_installed": true, "last_app_open_at": daysAgo(2),
		"signup_at": daysAgo(3 * 365), "last_purchase_at": daysAgo(10), "purchases_30d": 1.0,
		"spend_90d": 450.0, "region": "north", "last_category": "running",
	}
	// larry is a platinum VIP who has not bought for four months, called
	// twice to cancel and opted out of email and SMS.
	larry = map[string]any{
		"lifetime_value": 3000.0, "tier": "platinum", "last_purchase_at": daysAgo(120),
		"support_calls_30d": 2.0, "last_call_reason": "cancel", "opted_out_email": true, "opted_out_sms": true,
		"signup_at": daysAgo(2000),
	}
	// nina signed up ten days ago, has two items in her cart and browses.
	nina = map[string]any{
		"signup_at": daysAgo(10), "cart_items": 2.0, "page_views_7d": 4.0, "interests": []string{"kids"},
		"region": "south", "last_category": "electronics",
	}
	// lou bought a little, long ago.
	lou = map[string]any{"lifetime_value": 300.0, "last_purchase_at": daysAgo(100), "signup_at": daysAgo(400)}
)

// decide runs one decision and returns the chosen offer ids with scores.
func decide(t *testing.T, c *rules.Catalog, f featurestore.Vector, req decision.Request) (*decision.Result, []string) {
	t.Helper()
	if req.Now.IsZero() {
		req.Now = now
	}
	var eng decision.Engine
	res := &decision.Result{}
	if err := eng.Decide(c, f, &req, res); err != nil {
		t.Fatalf("Decide(%+v): %v", req, err)
	}
	return res, chosen(res)
}

func chosen(res *decision.Result) []string {
	var ids []string
	for _, ch := range res.Offers {
		ids = append(ids, fmt.Sprintf("%s=%g", ch.Offer.ID, ch.Score))
	}
	return ids
}

func TestDecideRetail(t *testing.T) {
	c := retailCatalog(t)
	tests := []struct {
		name     string
		customer map[string]any
		req      decision.Request
		want     []string // offer=score, best first
		fallback string   // the fallback content when want is empty
	}{
		// Ranking is by value x weight; 14 = 14 is a tie, broken by
		// declaration order (running shoes are declared before outdoor).
		{"vip web", vera, decision.Request{Channel: "web", Limit: 5},
			[]string{"vip-early-access=40", "black-friday-doorbusters=25", "running-shoes-launch=14", "outdoor-gear-bundle=14", "store-pickup=4"}, ""},
		{"vip web limit 3", vera, decision.Request{Channel: "web", Limit: 3},
			[]string{"vip-early-access=40", "black-friday-doorbusters=25", "running-shoes-launch=14"}, ""},
		{"limit 0 means 1", vera, decision.Request{Channel: "web"}, []string{"vip-early-access=40"}, ""},
		{"negative limit means 1", vera, decision.Request{Channel: "web", Limit: -3}, []string{"vip-early-access=40"}, ""},
		{"vip app", vera, decision.Request{Channel: "app", Limit: 10},
			[]string{"vip-early-access=40", "black-friday-doorbusters=25", "running-shoes-launch=14", "outdoor-gear-bundle=14", "app-exclusive-deal=10", "loyalty-points-reminder=6", "store-pickup=4", "review-request=2"}, ""},
		{"vip call center", vera, decision.Request{Channel: "call_center", Limit: 10}, []string{"call-vip-concierge=35"}, ""},
		{"vip email", vera, decision.Request{Channel: "email", Limit: 10},
			[]string{"vip-early-access=40", "black-friday-doorbusters=25", "running-shoes-launch=14", "loyalty-points-reminder=6", "email-weekly-picks=3", "review-request=2"}, ""},
		{"vip sms", vera, decision.Request{Channel: "sms", Limit: 10}, []string{"black-friday-doorbusters=25"}, ""},

		// A VIP at risk: the save offers first, on the call center.
		{"vip at risk call center", larry, decision.Request{Channel: "call_center", Limit: 2}, []string{"vip-churn-save=80", "call-retention-offer=60"}, ""},
		// Opted out of both outbound channels: nothing may be sent.
		{"opted out email", larry, decision.Request{Channel: "email", Limit: 10}, nil, `{"subject":"What's new this week","preheader":"Fresh arrivals and staff picks","template":"newsletter"}`},
		// SMS consent is the channel's: not even its default is sent.
		{"opted out sms", larry, decision.Request{Channel: "sms", Limit: 10}, nil, ""},
		// Weight: 18 x 1.5 = 27 beats the doorbusters' 25.
		{"lapsed email", lou, decision.Request{Channel: "email", Limit: 3}, []string{"winback-20=27", "black-friday-doorbusters=25", "email-weekly-picks=3"}, ""},

		// A new customer with a full cart: no doorbusters (new customers
		// have their own welcome offer).
		{"new cart web", nina, decision.Request{Channel: "web", Limit: 10},
			[]string{"cart-reminder=20", "welcome-10=12", "kids-winter-wear=9", "app-download=8"}, ""},
		// On the cart page: 12 = 12 again, and the free-shipping nudge is
		// declared first.
		{"new cart web cart page", nina, decision.Request{Channel: "web", Placement: "cart_page", Context: map[string]any{"page": "cart"}, Limit: 10},
			[]string{"cart-reminder=20", "free-shipping-nudge=12", "welcome-10=12", "cart-bundle=10", "kids-winter-wear=9", "app-download=8"}, ""},
		{"new cart web checkout", nina, decision.Request{Channel: "web", Placement: "checkout", Context: map[string]any{"page": "checkout", "cart_total": 450.0}, Limit: 10},
			[]string{"cart-reminder=20", "checkout-protection-plan=15", "welcome-10=12", "kids-winter-wear=9", "financing-offer=8", "app-download=8"}, ""},
		{"new cart product page", nina, decision.Request{Channel: "web", Context: map[string]any{"page": "product"}, Limit: 3},
			[]string{"cart-reminder=20", "welcome-10=12", "kids-winter-wear=9"}, ""},
		// At most 2 SMS a week (the channel's contact limit), whatever the limit.
		{"new cart sms", nina, decision.Request{Channel: "sms", Limit: 10}, []string{"sms-cart-low-stock=13", "sms-flash-sale=11"}, ""},

		// An unknown customer (nil features) has the schema's defaults.
		{"anonymous web", nil, decision.Request{Channel: "web", Limit: 10}, []string{"black-friday-doorbusters=25"}, ""},
		{"anonymous home hero", nil, decision.Request{Channel: "web", Placement: "home_hero", Limit: 10}, []string{"black-friday-doorbusters=25", "home-hero-new-arrivals=2"}, ""},
		{"anonymous call center", nil, decision.Request{Channel: "call_center", Limit: 10}, nil,
			`{"script":"Thank the customer for calling and ask how you can help.","talking_points":["Confirm contact details","Mention the newsletter"]}`},

		// Schedules: in July the summer clearance runs and Black Friday
		// does not; in March the spring preview opens for runners.
		{"july", vera, decision.Request{Channel: "web", Limit: 3, Now: time.Date(2026, 7, 15, 9, 0, 0, 0, time.UTC)},
			[]string{"summer-clearance=30", "running-shoes-launch=14", "outdoor-gear-bundle=14"}, ""},
		{"schedule start is inclusive", nil, decision.Request{Channel: "web", Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}, []string{"summer-clearance=30"}, ""},
		{"schedule end is exclusive", nil, decision.Request{Channel: "web", Now: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}, nil, `{"headline":"Welcome back","body":"Discover what's new this week.","image":"/img/hero/default.jpg","cta_url":"/"}`},
		{"march", map[string]any{"interests": []string{"running"}}, decision.Request{Channel: "app", Limit: 2, Now: time.Date(2027, 3, 10, 9, 0, 0, 0, time.UTC)},
			[]string{"spring-running-preview=30", "running-shoes-launch=14"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f featurestore.Vector
			if tt.customer != nil {
				f = vector(t, c, tt.customer)
			}
			res, got := decide(t, c, f, tt.req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("offers (-want +got):\n%s", diff)
			}
			if res.Channel == nil || res.Channel.Name != tt.req.Channel {
				t.Errorf("Result.Channel = %v, want %s", res.Channel, tt.req.Channel)
			}
			for _, ch := range res.Offers {
				if ch.Content != ch.Offer.Content(res.Channel) || ch.Content == nil {
					t.Errorf("offer %s: content is not its %s content", ch.Offer.ID, tt.req.Channel)
				}
			}
			switch {
			case len(tt.want) == 0 && tt.fallback == "":
				if res.Fallback != nil || res.Suppressed.Reason == "" {
					t.Errorf("fallback %v, suppressed %+v; want none, withheld by the channel", res.Fallback, res.Suppressed)
				}
			case len(tt.want) == 0 && res.Fallback == nil:
				t.Errorf("no offers and no fallback")
			case len(tt.want) == 0 && string(res.Fallback.JSON) != tt.fallback:
				t.Errorf("fallback = %s, want %s", res.Fallback.JSON, tt.fallback)
			case len(tt.want) > 0 && res.Fallback != nil:
				t.Errorf("fallback = %s with offers, want nil", res.Fallback.JSON)
			}
		})
	}
}

// TestContentPerChannel checks that each channel gets the same offer in
// its own form, with the creative's fields in the author's order.
func TestContentPerChannel(t *testing.T) {
	c := retailCatalog(t)
	f := vector(t, c, vera)
	tests := []struct {
		channel string
		offer   string
		content string
	}{
		{"web", "vip-early-access", `{"headline":"Your early access is open","body":"Shop the holiday sale 48 hours before everyone else.","image":"/img/campaigns/vip-early.jpg","cta_url":"/sale?access=vip"}`},
		{"app", "vip-early-access", `{"title":"VIP early access","body":"The holiday sale is open for you, 48 hours early.","deeplink":"shop://sale?access=vip"}`},
		{"call_center", "call-vip-concierge", `{"script":"Offer to transfer the customer to the VIP concierge desk for personal styling advice.","talking_points":["Free personal styling session","Priority delivery on every order"]}`},
		{"email", "vip-early-access", `{"subject":"You're in: early access to the holiday sale","preheader":"48 hours before everyone else","template":"vip-early-access"}`},
		{"sms", "black-friday-doorbusters", `{"text":"Black Friday is on: up to 50% off at shop.example/bf until Nov 30. Reply STOP to opt out."}`},
	}
	for _, tt := range tests {
		res, _ := decide(t, c, f, decision.Request{Channel: tt.channel})
		if len(res.Offers) != 1 {
			t.Fatalf("%s: %d offers, want 1", tt.channel, len(res.Offers))
		}
		got := res.Offers[0]
		if got.Offer.ID != tt.offer || string(got.Content.JSON) != tt.content {
			t.Errorf("%s: %s %s\nwant %s %s", tt.channel, got.Offer.ID, got.Content.JSON, tt.offer, tt.content)
		}
		if got.Content.Value == nil {
			t.Errorf("%s: content has no Value", tt.channel)
		}
	}
}

func TestSegments(t *testing.T) {
	c := retailCatalog(t)
	tests := []struct {
		name     string
		customer map[string]any
		want     []string // in declaration order
	}{
		{"anonymous", nil, nil},
		{"vera", vera, []string{"vip", "app_user"}},
		{"larry", larry, []string{"vip", "lapsed", "at_risk", "vip_at_risk"}},
		{"nina", nina, []string{"new_customer", "cart_abandoner", "high_intent"}},
		{"lou", lou, []string{"lapsed"}},
		{"never bought is not lapsed", map[string]any{"signup_at": daysAgo(400)}, nil},
		{"many page views", map[string]any{"page_views_7d": 10.0}, []string{"high_intent"}},
		{"old app user", map[string]any{"app_installed": true, "last_app_open_at": daysAgo(15)}, nil},
	}
	for _, tt := range tests {
		var f featurestore.Vector
		if tt.customer != nil {
			f = vector(t, c, tt.customer)
		}
		// Segments are the same on every channel.
		for _, ch := range c.Channels {
			res, _ := decide(t, c, f, decision.Request{Channel: ch.Name})
			if diff := cmp.Diff(tt.want, res.Segments, cmpEmpty); diff != "" {
				t.Errorf("%s on %s: segments (-want +got):\n%s", tt.name, ch.Name, diff)
			}
		}
	}
}

// cmpEmpty makes nil and empty slices equal.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

func TestExplain(t *testing.T) {
	c := retailCatalog(t)
	type why struct {
		Eligible bool
		Reason   decision.Reason
		Rule     string
		Score    float64
	}
	tests := []struct {
		name     string
		customer map[string]any
		req      decision.Request
		want     map[string]why // a selection of the explanations, by offer id
	}{
		{"vip web", vera, decision.Request{Channel: "web", Limit: 3}, map[string]why{
			"vip-early-access":         {true, decision.Chosen, "", 40},
			"black-friday-doorbusters": {true, decision.Chosen, "", 25},
			"running-shoes-launch":     {true, decision.Chosen, "", 14},
			"outdoor-gear-bundle":      {true, decision.RankedOut, "", 14},
			"store-pickup":             {true, decision.RankedOut, "", 4},
			"call-vip-concierge":       {false, decision.WrongChannel, "", 0},
			"winback-20":               {false, decision.WrongChannel, "", 0},
			"summer-clearance":         {false, decision.OutOfSchedule, "", 0},
			"spring-running-preview":   {false, decision.OutOfSchedule, "", 0},
			"free-shipping-nudge":      {false, decision.WrongPlacement, "", 0},
			"home-hero-new-arrivals":   {false, decision.WrongPlacement, "", 0},
			"kids-winter-wear":         {false, decision.NotEligible, `"kids" in customer.interests`, 0},
			"tier-upgrade-gold":        {false, decision.NotEligible, `customer.tier == "silver"`, 0},
			"app-download":             {false, decision.NotEligible, "!customer.app_installed", 0},
			"cart-reminder":            {false, decision.NotEligible, `"cart_abandoner" in segments`, 0},
			"welcome-10":               {false, decision.NotEligible, `"new_customer" in segments`, 0},
			// A rule that is not a conjunction is named whole.
			"high-intent-chat": {false, decision.NotEligible, `"high_intent" in segments`, 0},
		}},
		{"new customer: the failing conjunct", nina, decision.Request{Channel: "web", Limit: 10}, map[string]why{
			"black-friday-doorbusters": {false, decision.NotEligible, `!("new_customer" in segments)`, 0},
			"outdoor-gear-bundle":      {false, decision.NotEligible, `"outdoor" in customer.interests || customer.favorite_category == "outdoor" || customer.outdoor_views_30d >= 3`, 0},
			"cart-reminder":            {true, decision.Chosen, "", 20},
		}},
		{"opted out: the failing conjunct", larry, decision.Request{Channel: "email"}, map[string]why{
			"winback-20":         {false, decision.NotEligible, `channel != "email" || !customer.opted_out_email`, 0},
			"vip-churn-save":     {false, decision.NotEligible, `channel != "email" || !customer.opted_out_email`, 0},
			"email-weekly-picks": {false, decision.NotEligible, `!customer.opted_out_email`, 0},
		}},
		{"single rule", nil, decision.Request{Channel: "web", Placement: "cart_page", Context: map[string]any{"page": "cart"}}, map[string]why{
			"cart-bundle":         {false, decision.NotEligible, "customer.cart_items >= 2", 0},
			"free-shipping-nudge": {false, decision.NotEligible, "customer.cart_items >= 1", 0},
			"financing-offer":     {false, decision.NotEligible, "context.cart_total != nil", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f featurestore.Vector
			if tt.customer != nil {
				f = vector(t, c, tt.customer)
			}
			tt.req.Explain = true
			res, _ := decide(t, c, f, tt.req)
			// Every offer of the catalog is explained, in declaration order.
			var ids []string
			got := map[string]why{}
			for _, x := range res.Explain {
				ids = append(ids, x.OfferID)
				got[x.OfferID] = why{x.Eligible, x.Reason, x.Rule, x.Score}
				if x.Reason != decision.RuleError && x.Error != "" {
					t.Errorf("%s: Error = %q with reason %q", x.OfferID, x.Error, x.Reason)
				}
			}
			var want []string
			for _, o := range c.Offers {
				want = append(want, o.ID)
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("explained offers (-want +got):\n%s", diff)
			}
			for id, w := range tt.want {
				if g := got[id]; g != w {
					t.Errorf("%s: %+v\nwant %+v", id, g, w)
				}
			}
		})
	}
}

func TestExplainRuleError(t *testing.T) {
	c := retailCatalog(t)
	req := decision.Request{Channel: "web", Placement: "checkout", Explain: true, Limit: 10,
		Context: map[string]any{"page": "checkout", "cart_total": "a lot"}}
	res, got := decide(t, c, vector(t, c, nina), req)
	for _, x := range res.Explain {
		if x.OfferID != "financing-offer" {
			continue
		}
		if x.Eligible || x.Reason != decision.RuleError || x.Rule != "context.cart_total >= 300" || !strings.Contains(x.Error, "string >= int") {
			t.Errorf("financing-offer: %+v\nwant not eligible, rule_error in `context.cart_total >= 300`, error about string >= int", x)
		}
	}
	// The rest of the decision goes on.
	if want := []string{"cart-reminder=20", "checkout-protection-plan=15", "welcome-10=12", "kids-winter-wear=9", "app-download=8"}; !slices.Equal(got, want) {
		t.Errorf("offers = %v, want %v", got, want)
	}
}

func TestUnknownChannel(t *testing.T) {
	c := retailCatalog(t)
	var eng decision.Engine
	for _, channel := range []string{"fax", "", "WEB", "web "} {
		res := decision.Result{Offers: []decision.Choice{{Score: 1}}}
		err := eng.Decide(c, nil, &decision.Request{Channel: channel, Now: now}, &res)
		if !errors.Is(err, decision.ErrUnknownChannel) {
			t.Errorf("Decide(channel %q) = %v, want ErrUnknownChannel", channel, err)
			continue
		}
		if want := fmt.Sprintf("%q is not one of web, app, call_center, email, sms", channel); !strings.Contains(err.Error(), want) {
			t.Errorf("Decide(channel %q) = %q, want it to say %s", channel, err, want)
		}
	}
}

func TestMaxLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("channels: [web]\narbitration: static\noffers:\n")
	n := 2 * decision.MaxLimit
	for i := range n {
		fmt.Fprintf(&b, "  - {id: o%d, channels: [web], value: %d, content: {web: {h: x}}}\n", i, i)
	}
	c, err := rules.Load("many.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ limit, want int }{
		{0, 1}, {1, 1}, {7, 7}, {decision.MaxLimit, decision.MaxLimit}, {decision.MaxLimit + 1, decision.MaxLimit}, {1 << 30, decision.MaxLimit},
	}
	for _, tt := range tests {
		res, got := decide(t, c, nil, decision.Request{Channel: "web", Limit: tt.limit})
		if len(res.Offers) != tt.want {
			t.Errorf("Limit %d: %d offers, want %d", tt.limit, len(res.Offers), tt.want)
		}
		if len(got) > 0 && got[0] != fmt.Sprintf("o%d=%d", n-1, n-1) {
			t.Errorf("Limit %d: best %s, want o%d", tt.limit, got[0], n-1)
		}
	}
}

// TestResultReuse checks that a Result reused for another decision keeps
// nothing of the last one.
func TestResultReuse(t *testing.T) {
	c := retailCatalog(t)
	var eng decision.Engine
	var res decision.Result
	steps := []struct {
		f        featurestore.Vector
		req      decision.Request
		offers   int
		fallback bool
		explain  bool
		segments int
	}{
		{vector(t, c, larry), decision.Request{Channel: "call_center", Limit: 3, Explain: true}, 3, false, true, 4},
		{nil, decision.Request{Channel: "call_center"}, 0, true, false, 0},
		{vector(t, c, vera), decision.Request{Channel: "web", Limit: 2}, 2, false, false, 2},
		{vector(t, c, larry), decision.Request{Channel: "email", Explain: true}, 0, true, true, 4},
		{vector(t, c, nina), decision.Request{Channel: "sms"}, 1, false, false, 3},
	}
	for i, s := range steps {
		s.req.Now = now
		if err := eng.Decide(c, s.f, &s.req, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Offers) != s.offers || (res.Fallback != nil) != s.fallback || (len(res.Explain) > 0) != s.explain || len(res.Segments) != s.segments || res.Channel.Name != s.req.Channel {
			t.Errorf("step %d: %d offers, fallback %v, %d explanations, segments %v, channel %s; want %d, %v, explain %v, %d segments, %s",
				i, len(res.Offers), res.Fallback != nil, len(res.Explain), res.Segments, res.Channel.Name, s.offers, s.fallback, s.explain, s.segments, s.req.Channel)
		}
	}
}

// TestExplainDoesNotChangeDecision runs a population through every
// channel with and without explanations: the offers must be the same.
func TestExplainDoesNotChangeDecision(t *testing.T) {
	c := retailCatalog(t)
	var eng decision.Engine
	var plain, explained decision.Result
	contexts := []map[string]any{nil, {"page": "cart"}, {"page": "product"}, {"page": "checkout", "cart_total": 350.0}}
	placements := []string{"", "home_hero", "cart_page", "checkout"}
	for i, f := range (catalogtest.Population{Seed: 3}).Vectors(c.Schema, 300) {
		for _, ch := range c.Channels {
			req := decision.Request{Channel: ch.Name, Limit: 1 + i%4, Placement: placements[i%4], Context: contexts[(i/4)%4], Now: catalogtest.Epoch}
			if err := eng.Decide(c, f, &req, &plain); err != nil {
				t.Fatal(err)
			}
			req.Explain = true
			if err := eng.Decide(c, f, &req, &explained); err != nil {
				t.Fatal(err)
			}
			if got, want := chosen(&explained), chosen(&plain); !slices.Equal(got, want) {
				t.Fatalf("customer %d, %+v: with explain %v, without %v", i, req, got, want)
			}
			if len(plain.Explain) > 0 {
				t.Fatalf("customer %d: %d explanations without Explain", i, len(plain.Explain))
			}
			// The offers explained as chosen are the offers returned.
			var explainedChosen, offers []string
			for _, x := range explained.Explain {
				if x.Eligible && x.Reason == decision.Chosen {
					explainedChosen = append(explainedChosen, x.OfferID)
				}
			}
			for _, o := range explained.Offers {
				offers = append(offers, o.Offer.ID)
			}
			slices.Sort(explainedChosen)
			slices.Sort(offers)
			if !slices.Equal(explainedChosen, offers) {
				t.Fatalf("customer %d, %+v: explained as chosen %v, offers %v", i, req, explainedChosen, offers)
			}
		}
	}
}

// TestDecideConcurrent runs one Engine from many goroutines (run it with
// -race): every decision must equal the one made alone.
func TestDecideConcurrent(t *testing.T) {
	c := retailCatalog(t)
	vecs := (catalogtest.Population{Seed: 9}).Vectors(c.Schema, 200)
	request := func(i int) decision.Request {
		return decision.Request{Channel: c.Channels[i%len(c.Channels)].Name, Limit: 3, Explain: i%3 == 0, Now: catalogtest.Epoch, Context: map[string]any{"page": "cart"}}
	}
	want := make([][]string, len(vecs))
	var eng decision.Engine
	for i, f := range vecs {
		var res decision.Result
		req := request(i)
		if err := eng.Decide(c, f, &req, &res); err != nil {
			t.Fatal(err)
		}
		want[i] = append(chosen(&res), res.Segments...)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(vecs))
	for g := range 8 {
		wg.Go(func() {
			var res decision.Result
			for k := range vecs {
				i := (k + g*25) % len(vecs)
				req := request(i)
				if err := eng.Decide(c, vecs[i], &req, &res); err != nil {
					errs <- err.Error()
					return
				}
				if got := append(chosen(&res), res.Segments...); !slices.Equal(got, want[i]) {
					errs <- fmt.Sprintf("customer %d: %v, alone %v", i, got, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestTies pins the tie-break on a small catalog: equal scores go to the
// offer declared first, whatever the channel's offer order.
func TestTies(t *testing.T) {
	c, err := rules.Load("ties.yaml", []byte(`channels: [web, app]
arbitration: static
offers:
  - {id: c, channels: [app, web], value: 10, content: {web: {h: c}, app: {t: c}}}
  - {id: a, channels: [web], value: 5, weight: 2, content: {web: {h: a}}}
  - {id: b, channels: [web, app], value: 20, weight: 0.5, content: {web: {h: b}, app: {t: b}}}
  - {id: d, channels: [web], value: 11, content: {web: {h: d}}}
  - {id: z, channels: [web], value: 100, weight: 0, content: {web: {h: z}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // the same every time
		_, got := decide(t, c, nil, decision.Request{Channel: "web", Limit: 10})
		if want := []string{"d=11", "c=10", "a=10", "b=10", "z=0"}; !slices.Equal(got, want) {
			t.Errorf("web = %v, want %v", got, want)
		}
		_, got = decide(t, c, nil, decision.Request{Channel: "app", Limit: 10})
		if want := []string{"c=10", "b=10"}; !slices.Equal(got, want) {
			t.Errorf("app = %v, want %v", got, want)
		}
	}
}
