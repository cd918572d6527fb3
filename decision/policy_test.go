package decision_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

const policyCatalog = `
channels: [web, sms]
arbitration: static
contact_policy: {max_offers: 4, within: 1d}
offers:
  - id: promo
    channels: [web, sms]
    value: 30
    caps: [{max: 2, within: 7d}, {max: 1, within: 1d, channel: sms}]
    content: {web: {h: promo}, sms: {t: promo}}
  - id: upsell
    channels: [web]
    value: 20
    suppress_after: {conversion: 30d, dismiss: 3d}
    content: {web: {h: upsell}}
  - id: news
    channels: [web, sms]
    value: 10
    content: {web: {h: news}, sms: {t: news}}
`

// TestContactPolicy: caps count impressions across channels unless they
// name one (and then bind that channel only), suppressions follow an
// outcome for their window, the catalog-wide policy stops every offer,
// and explain tells which rule held each offer back.
func TestContactPolicy(t *testing.T) {
	c, err := rules.Load("policy.yaml", []byte(policyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	imp := func(offer, ch string, d time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: offer, Channel: ch, Kind: featurestore.Impression, At: ago(d)}
	}
	out := func(offer string, k featurestore.Outcome, d time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: offer, Channel: "web", Kind: k, At: ago(d)}
	}
	h, d := time.Hour, 24*time.Hour
	tests := []struct {
		name    string
		channel string
		history []featurestore.Contact // oldest first
		want    []string
		reasons map[string]decision.Reason
		details map[string]string // the contact rule explain names
	}{
		{"no history", "web", nil, []string{"promo", "upsell", "news"}, nil, nil},
		{"one impression is under every cap", "web", []featurestore.Contact{imp("promo", "web", h)},
			[]string{"promo", "upsell", "news"}, nil, nil},
		{"cap counts impressions across channels", "web",
			[]featurestore.Contact{imp("promo", "sms", 3*d), imp("promo", "web", h)},
			[]string{"upsell", "news"}, map[string]decision.Reason{"promo": decision.Capped}, map[string]string{"promo": "caps: 2 impressions within 7d on all channels"}},
		{"impressions older than the cap window do not count", "web",
			[]featurestore.Contact{imp("promo", "web", 8*d), imp("promo", "web", h)},
			[]string{"promo", "upsell", "news"}, nil, nil},
		{"clicks are not impressions", "web",
			[]featurestore.Contact{out("promo", featurestore.Click, h), out("promo", featurestore.Click, h)},
			[]string{"promo", "upsell", "news"}, nil, nil},
		{"a channel cap binds its channel", "sms", []featurestore.Contact{imp("promo", "sms", h)},
			[]string{"news"}, map[string]decision.Reason{"promo": decision.Capped}, map[string]string{"promo": "caps: 1 impression within 1d on sms"}},
		{"a channel cap does not bind other channels", "web", []featurestore.Contact{imp("promo", "sms", h)},
			[]string{"promo", "upsell", "news"}, nil, nil},
		{"a channel cap counts only its channel", "sms", []featurestore.Contact{imp("promo", "web", h)},
			[]string{"promo", "news"}, nil, nil},
		{"suppressed after a conversion", "web", []featurestore.Contact{out("upsell", featurestore.Conversion, 29*d)},
			[]string{"promo", "news"}, map[string]decision.Reason{"upsell": decision.Suppressed}, map[string]string{"upsell": "suppress_after: a conversion within 30d"}},
		{"suppression ends with its window", "web", []featurestore.Contact{out("upsell", featurestore.Dismiss, 4*d)},
			[]string{"promo", "upsell", "news"}, nil, nil},
		{"another offer's outcome does not suppress", "web", []featurestore.Contact{out("news", featurestore.Conversion, h)},
			[]string{"promo", "upsell", "news"}, nil, nil},
		{"contact policy stops every offer", "web",
			[]featurestore.Contact{imp("news", "web", 5*h), imp("news", "sms", 4*h), imp("news", "web", 3*h), imp("upsell", "web", 2*h)},
			nil, map[string]decision.Reason{"promo": decision.PolicyReached, "upsell": decision.PolicyReached, "news": decision.PolicyReached}, map[string]string{"news": "contact_policy: 4 offers within 1d"}},
		{"contact policy counts its window only", "web",
			[]featurestore.Contact{imp("news", "web", 2*d), imp("news", "sms", 4*h), imp("news", "web", 3*h), imp("upsell", "web", 2*h)},
			[]string{"promo", "upsell", "news"}, nil, nil},
	}
	var e decision.Engine
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res decision.Result
			req := decision.Request{Channel: tt.channel, Limit: 5, Explain: true, Now: now, History: tt.history}
			if err := e.Decide(c, nil, &req, &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range res.Offers {
				got = append(got, o.Offer.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("offers %v, want %v", got, tt.want)
			}
			for _, x := range res.Explain {
				if want, ok := tt.reasons[x.OfferID]; ok && x.Reason != want {
					t.Errorf("%s: reason %q, want %q", x.OfferID, x.Reason, want)
				}
				if want, ok := tt.details[x.OfferID]; ok && x.Rule != want {
					t.Errorf("%s: rule %q, want %q", x.OfferID, x.Rule, want)
				}
			}
		})
	}
}

// TestGroupCaps: a group's caps count the impressions of all its offers.
func TestGroupCaps(t *testing.T) {
	c, err := rules.Load("groups.yaml", []byte(`
channels: [web, sms]
arbitration: static
groups:
  loans: {caps: [{max: 2, within: 7d}, {max: 1, within: 1d, channel: sms}]}
offers:
  - {id: loan-a, group: loans, channels: [web, sms], value: 30, content: {web: {h: a}, sms: {t: a}}}
  - {id: loan-b, group: loans, channels: [web, sms], value: 20, content: {web: {h: b}, sms: {t: b}}}
  - {id: card, group: cards, channels: [web, sms], value: 10, content: {web: {h: c}, sms: {t: c}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	imp := func(offer, ch string, ago time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: offer, Channel: ch, Kind: featurestore.Impression, At: now.Add(-ago).UnixNano()}
	}
	d := 24 * time.Hour
	tests := []struct {
		name    string
		channel string
		history []featurestore.Contact
		want    []string
	}{
		{"no history", "web", nil, []string{"loan-a", "card"}},
		{"one loan impression", "web", []featurestore.Contact{imp("loan-b", "web", 2*d)}, []string{"loan-a", "card"}},
		{"two impressions of the group's offers", "web", []featurestore.Contact{imp("loan-b", "web", 2*d), imp("loan-a", "sms", 3*d)}, []string{"card"}},
		{"outside the window", "web", []featurestore.Contact{imp("loan-b", "web", 8*d), imp("loan-a", "web", 3*d)}, []string{"loan-a", "card"}},
		{"the group's sms cap", "sms", []featurestore.Contact{imp("loan-b", "sms", time.Hour)}, []string{"card"}},
		{"the group's sms cap does not bind the web", "web", []featurestore.Contact{imp("loan-b", "sms", time.Hour)}, []string{"loan-a", "card"}},
		{"an undeclared group has no caps", "web", []featurestore.Contact{imp("card", "web", time.Hour), imp("card", "web", time.Hour), imp("card", "web", time.Hour)}, []string{"loan-a", "card"}},
	}
	var e decision.Engine
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res decision.Result
			req := decision.Request{Channel: tt.channel, Limit: 5, Explain: true, Now: now, History: tt.history}
			if err := e.Decide(c, nil, &req, &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range res.Offers {
				got = append(got, o.Offer.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("offers %v, want %v", got, tt.want)
			}
			for _, x := range res.Explain {
				if x.OfferID == "loan-a" && !slices.Contains(got, "loan-a") && (x.Reason != decision.GroupCapped || !strings.HasPrefix(x.Rule, "group loans caps: ")) {
					t.Errorf("loan-a reason %q (%s), want %q naming the group's cap", x.Reason, x.Rule, decision.GroupCapped)
				}
			}
		})
	}
}
