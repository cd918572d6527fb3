package decision_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// historyCatalog reads contact history in every way a catalog can: the
// catalog-wide policy, a channel's contact limit, offers' caps (one on a
// channel), a group's caps, suppressions and stickiness; its longest
// look-back is the 20 days of a suppression.
const historyCatalog = `
channels:
  - web
  - {name: sms, contact_limit: {max: 3, within: 2d}}
arbitration: static
contact_policy: {max_offers: 6, within: 1d}
groups:
  cards: {caps: [{max: 3, within: 10d}]}
offers:
  - id: promo
    channels: [web, sms]
    value: 30
    sticky: 12h
    caps: [{max: 2, within: 7d}, {max: 1, within: 1d, channel: sms}]
    content: {web: {h: promo}, sms: {t: promo}}
  - id: gold
    group: cards
    channels: [web, sms]
    value: 25
    content: {web: {h: gold}, sms: {t: gold}}
  - id: silver
    group: cards
    channels: [web]
    value: 22
    content: {web: {h: silver}}
  - id: upsell
    channels: [web]
    value: 20
    suppress_after: {conversion: 20d, dismiss: 3d}
    content: {web: {h: upsell}}
  - id: news
    channels: [web, sms]
    value: 10
    content: {web: {h: news}, sms: {t: news}}
`

func TestContactLookback(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      time.Duration
	}{
		{"every rule", historyCatalog, 20 * 24 * time.Hour},
		{"policy", policyCatalog, 30 * 24 * time.Hour},
		{"none", "channels: [web]\noffers:\n  - {id: a, channels: [web], content: {web: {h: a}}}\n", 0},
		{"stickiness", "channels: [web]\nsticky: 2d\noffers:\n  - {id: a, channels: [web], content: {web: {h: a}}}\n", 48 * time.Hour},
	} {
		c, err := rules.Load(tt.name+".yaml", []byte(tt.src))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ContactLookback(); got != tt.want {
			t.Errorf("%s: ContactLookback %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestHistoryRead: a decision given only HistoryRead of a history
// decides as it does given all of it, offers and explanations, on every
// channel, for random histories reaching twice the look-back; and
// HistoryRead keeps no contact older than the look-back but those an
// out-of-order history puts after a newer one.
func TestHistoryRead(t *testing.T) {
	c, err := rules.Load("history.yaml", []byte(historyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	lookback := c.ContactLookback()
	r := rand.New(rand.NewPCG(3, 4))
	offers := []string{"promo", "gold", "silver", "upsell", "news"}
	kinds := []featurestore.Outcome{featurestore.Impression, featurestore.Impression, featurestore.Impression, featurestore.Click, featurestore.Conversion, featurestore.Dismiss}
	var e decision.Engine
	trimmed, differ := 0, 0
	for i := range 400 {
		n := r.IntN(60)
		h := make([]featurestore.Contact, n)
		for j := range h {
			h[j] = featurestore.Contact{OfferID: offers[r.IntN(len(offers))], Channel: []string{"web", "sms"}[r.IntN(2)],
				Kind: kinds[r.IntN(len(kinds))], At: now.Add(-time.Duration(r.Int64N(int64(2 * lookback)))).UnixNano()}
		}
		slices.SortFunc(h, func(a, b featurestore.Contact) int { return cmp.Compare(a.At, b.At) })
		if i%10 == 0 && n > 2 {
			h[n-1].At = now.Add(-lookback - time.Hour).UnixNano() // out of order: the scans stop at it
		}
		read := decision.HistoryRead(c, h, now)
		if len(read) < len(h) {
			trimmed++
		}
		for _, x := range read {
			if x.At < now.Add(-lookback).UnixNano() && i%10 != 0 {
				t.Fatalf("history %d: a contact %s before the look-back kept", i, now.Sub(time.Unix(0, x.At)))
			}
		}
		for _, ch := range []string{"web", "sms"} {
			decide := func(h []featurestore.Contact) string {
				var res decision.Result
				req := decision.Request{CustomerID: "c", Channel: ch, Limit: 3, Explain: true, Now: now, History: h}
				if err := e.Decide(c, c.Schema.Defaults(nil), &req, &res); err != nil {
					t.Fatal(err)
				}
				s := fmt.Sprint(res.Suppressed.Reason)
				for _, o := range res.Offers {
					s += " " + o.Offer.ID
				}
				for _, x := range res.Explain {
					s += fmt.Sprintf(" %s:%s:%s", x.OfferID, x.Reason, x.Rule)
				}
				return s
			}
			full, part := decide(h), decide(read)
			if full != part {
				t.Errorf("history %d on %s: with all %d contacts %s; with the %d read %s", i, ch, len(h), full, len(read), part)
			}
			if full != decide(nil) {
				differ++
			}
		}
	}
	// The test must trim histories whose contacts matter.
	if trimmed < 100 || differ < 100 {
		t.Errorf("%d histories trimmed, %d decisions held back by contacts: want each at least 100", trimmed, differ)
	}
}
