package decision_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

const experimentCatalog = `
channels: [web, app]
arbitration: static
sticky: 1h
experiments:
  - id: ranking
    salt: s1
    variants:
      - {name: control, weight: 70}
      - {name: holdout, weight: 10, holdout: true}
      - {name: news-only, weight: 20, offers: [news]}
  - id: half
    traffic: 0.5
    variants: [{name: x}, {name: y}]
offers:
  - {id: promo, channels: [web, app], value: 30, content: {web: {h: promo}, app: {t: promo}}}
  - {id: news,  channels: [web, app], value: 10, content: {web: {h: news}, app: {t: news}}}
  - {id: app-only, channels: [app], value: 5, sticky: 1m, content: {app: {t: a}}}
defaults:
  web: {h: fallback}
`

func loadExperiments(t *testing.T) *rules.Catalog {
	t.Helper()
	c, err := rules.Load("x.yaml", []byte(experimentCatalog))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAssign: assignment is deterministic, split by the weights and the
// traffic share, and independent of the channel.
func TestAssign(t *testing.T) {
	c := loadExperiments(t)
	const n = 20000
	count := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("customer-%d", i)
		as := decision.Assign(nil, c, id)
		again := decision.Assign(nil, c, id)
		if !slices.Equal(as, again) {
			t.Fatalf("%s: assignment changed between calls: %v, %v", id, as, again)
		}
		for _, a := range as {
			count[a.Experiment.ID+"/"+a.Variant.Name]++
		}
	}
	for name, want := range map[string]float64{"ranking/control": 0.7, "ranking/holdout": 0.1, "ranking/news-only": 0.2, "half/x": 0.25, "half/y": 0.25} {
		got := float64(count[name]) / n
		if sd := math.Sqrt(want * (1 - want) / n); math.Abs(got-want) > 5*sd {
			t.Errorf("%s: share %.4f, want %.2f", name, got, want)
		}
	}
	if as := decision.Assign(nil, c, ""); len(as) != 0 {
		t.Errorf("an anonymous request was assigned %v", as)
	}
}

// customerIn finds a customer id assigned to the named variant of ranking.
func customerIn(t *testing.T, c *rules.Catalog, variant string) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("c%d", i)
		for _, a := range decision.Assign(nil, c, id) {
			if a.Experiment.ID == "ranking" && a.Variant.Name == variant {
				return id
			}
		}
	}
	t.Fatalf("no customer in variant %s", variant)
	return ""
}

func TestVariants(t *testing.T) {
	c := loadExperiments(t)
	var e decision.Engine
	tests := []struct {
		variant  string
		want     []string
		holdout  bool
		fallback bool
		reasons  map[string]decision.Reason
	}{
		{"control", []string{"promo", "news"}, false, false, nil},
		{"holdout", nil, true, true, map[string]decision.Reason{"promo": decision.Holdout, "news": decision.Holdout}},
		{"news-only", []string{"news"}, false, false, map[string]decision.Reason{"promo": decision.NotInVariant}},
	}
	for _, tt := range tests {
		t.Run(tt.variant, func(t *testing.T) {
			id := customerIn(t, c, tt.variant)
			var res decision.Result
			req := decision.Request{CustomerID: id, Channel: "web", Limit: 3, Explain: true, Now: time.Unix(0, 0)}
			if err := e.Decide(c, nil, &req, &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range res.Offers {
				got = append(got, o.Offer.ID)
			}
			if !slices.Equal(got, tt.want) || res.Holdout != tt.holdout || (res.Fallback != nil) != tt.fallback {
				t.Errorf("offers %v holdout %v fallback %v; want %v %v %v", got, res.Holdout, res.Fallback != nil, tt.want, tt.holdout, tt.fallback)
			}
			for _, x := range res.Explain {
				if want, ok := tt.reasons[x.OfferID]; ok && x.Reason != want {
					t.Errorf("%s: reason %q, want %q", x.OfferID, x.Reason, want)
				}
			}
			if len(res.Assignments) == 0 || res.Assignments[0].Variant.Name != tt.variant {
				t.Errorf("assignments %v, want ranking/%s first", res.Assignments, tt.variant)
			}
		})
	}
}

// TestSticky: an offer just shown on one channel is ranked first on the
// others for its window, while it is eligible there.
func TestSticky(t *testing.T) {
	c := loadExperiments(t)
	id := customerIn(t, c, "control")
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	imp := func(offer, ch string, ago time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: offer, Channel: ch, Kind: featurestore.Impression, At: now.Add(-ago).UnixNano()}
	}
	tests := []struct {
		name    string
		channel string
		history []featurestore.Contact
		want    []string
		sticky  string
	}{
		{"no history", "app", nil, []string{"promo", "news", "app-only"}, ""},
		{"shown on the web, first in the app", "app", []featurestore.Contact{imp("news", "web", 10*time.Minute)}, []string{"news", "promo", "app-only"}, "news"},
		{"the most recent sticky offer wins", "app", []featurestore.Contact{imp("news", "web", 30*time.Minute), imp("app-only", "app", 30*time.Second)}, []string{"app-only", "promo", "news"}, "app-only"},
		{"an offer's own window", "app", []featurestore.Contact{imp("news", "web", 30*time.Minute), imp("app-only", "app", 2*time.Minute)}, []string{"news", "promo", "app-only"}, "news"},
		{"window over", "app", []featurestore.Contact{imp("news", "web", 2*time.Hour)}, []string{"promo", "news", "app-only"}, ""},
		{"sticky offer not on this channel", "web", []featurestore.Contact{imp("app-only", "app", 10*time.Second)}, []string{"promo", "news"}, ""},
		{"clicks do not make an offer sticky", "app", []featurestore.Contact{{OfferID: "news", Channel: "web", Kind: featurestore.Click, At: now.Add(-time.Minute).UnixNano()}}, []string{"promo", "news", "app-only"}, ""},
	}
	var e decision.Engine
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res decision.Result
			req := decision.Request{CustomerID: id, Channel: tt.channel, Limit: 3, Now: now, History: tt.history}
			if err := e.Decide(c, nil, &req, &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			sticky := ""
			for _, o := range res.Offers {
				got = append(got, o.Offer.ID)
				if o.Sticky {
					sticky = o.Offer.ID
				}
			}
			if !slices.Equal(got, tt.want) || sticky != tt.sticky {
				t.Errorf("offers %v (sticky %q), want %v (sticky %q)", got, sticky, tt.want, tt.sticky)
			}
		})
	}
}
