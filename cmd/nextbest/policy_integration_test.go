package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Issue 5's contact policy over HTTP against the real binary.

func policyServer(t *testing.T) *server {
	t.Helper()
	return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", "testdata/policy.yaml")
}

func (s *server) outcome(customer, typ, offer, channel string) {
	s.t.Helper()
	s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":%q,"offer_id":%q,"channel":%q}`, customer, typ, offer, channel), 202)
}

func (s *server) offersOn(customer, channel string) []string {
	s.t.Helper()
	return s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q,"limit":5}`, customer, channel)).offerIDs()
}

func reasonOf(d decideResponse, offer string) string {
	for _, x := range d.Explain {
		if x.OfferID == offer {
			return x.Reason
		}
	}
	return ""
}

func TestPolicyCapAcrossChannels(t *testing.T) {
	s := policyServer(t)
	if got := s.offersOn("c1", "call_center"); !slices.Contains(got, "promo") {
		t.Fatalf("promo missing before any impression: %v", got)
	}
	s.outcome("c1", "impression", "promo", "web")
	s.outcome("c1", "impression", "promo", "app")
	if got := s.offersOn("c1", "call_center"); !slices.Contains(got, "promo") {
		t.Fatalf("promo capped after two impressions (cap is 3): %v", got)
	}
	s.outcome("c1", "impression", "promo", "web")
	d := s.decide(`{"customer_id":"c1","channel":"call_center","limit":5,"explain":true}`)
	if slices.Contains(d.offerIDs(), "promo") {
		t.Errorf("the fourth decision, on call_center, still offers promo after three web/app impressions: %v", d.offerIDs())
	}
	if r := reasonOf(d, "promo"); r != "capped" {
		t.Errorf("explain reason for promo = %q, want capped", r)
	}
	for _, x := range d.Explain {
		if x.OfferID == "promo" && x.Rule != "caps: 3 impressions within 7d on all channels" {
			t.Errorf("explain names the cap %q, want the offer's 3-in-7d cap", x.Rule)
		}
	}
}

func TestPolicyPerChannelCap(t *testing.T) {
	s := policyServer(t)
	s.outcome("c2", "impression", "sms-deal", "web")
	s.outcome("c2", "impression", "sms-deal", "web")
	if got := s.offersOn("c2", "sms"); !slices.Contains(got, "sms-deal") {
		t.Fatalf("web impressions count against the sms-only cap: %v", got)
	}
	s.outcome("c2", "impression", "sms-deal", "sms")
	if got := s.offersOn("c2", "sms"); slices.Contains(got, "sms-deal") {
		t.Errorf("sms-deal offered by SMS again within the day: %v", got)
	}
	if got := s.offersOn("c2", "web"); !slices.Contains(got, "sms-deal") {
		t.Errorf("the SMS cap removed sms-deal from the web too: %v", got)
	}
}

func TestPolicySuppressAfterConversion(t *testing.T) {
	s := policyServer(t)
	if got := s.offersOn("c3", "web"); !slices.Contains(got, "upsell") {
		t.Fatalf("upsell missing before any outcome: %v", got)
	}
	s.outcome("c3", "conversion", "upsell", "call_center")
	d := s.decide(`{"customer_id":"c3","channel":"web","limit":5,"explain":true}`)
	if slices.Contains(d.offerIDs(), "upsell") {
		t.Errorf("upsell offered again right after a conversion: %v", d.offerIDs())
	}
	if r := reasonOf(d, "upsell"); r != "suppressed" {
		t.Errorf("explain reason for upsell = %q, want suppressed", r)
	}
}

func TestPolicyDecisionIsImpression(t *testing.T) {
	s := policyServer(t)
	if got := s.offersOn("c4", "email"); !slices.Equal(got, []string{"newsletter"}) {
		t.Fatalf("first email decision = %v, want [newsletter]", got)
	}
	// The email decision was the impression: the weekly cap is reached.
	d := s.decide(`{"customer_id":"c4","channel":"email"}`)
	if len(d.Offers) != 0 || d.Fallback["subject"] != "Nothing new" {
		t.Errorf("second email decision = %v (fallback %v), want the fallback only", d.offerIDs(), d.Fallback)
	}
}

func TestPolicyOutcomeValidation(t *testing.T) {
	s := policyServer(t)
	for _, tt := range []struct{ body, want string }{
		{`{"customer_id":"c","type":"click"}`, "offer_id: required"},
		{`{"customer_id":"c","type":"click","offer_id":"nope"}`, `nope\" is not an offer`},
		{`{"customer_id":"c","type":"page_view","offer_id":"promo"}`, "only outcome events"},
		{`{"events":[{"customer_id":"c","type":"impression","offer_id":"promo","channel":"web"},{"customer_id":"c","type":"click","channel":"web"}]}`, "events[1].offer_id"},
		{`{"customer_id":"c","type":"click","offer_id":"promo"}`, "channel: a click event needs the catalog channel"},
		{`{"customer_id":"c","type":"click","offer_id":"promo","channel":"store"}`, "channel: a click event needs the catalog channel"},
	} {
		status, body := s.call("POST", "/v1/events", tt.body)
		if status != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("POST %s = %d %s, want 400 mentioning %q", tt.body, status, body, tt.want)
		}
	}
}
