package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
)

// channelsServer serves testdata/channels.yaml with customers of each
// kind the channel's policy tells apart. testNow is 10:00 UTC: 11:00 in
// Paris, 22:00 in Etc/GMT-12.
func channelsServer(t testing.TB, store *fakeStore, cached bool) *Server {
	t.Helper()
	var rs nextbest.RecordStore = store
	if cached {
		rs = &cachingStore{fakeStore: store}
	}
	s := newTestServer(t, rs, func(o *testOptions) { o.Catalog = loadCatalog(t, "testdata/channels.yaml") })
	in := featurestore.Bool(true)
	seedAttrs := func(id string, attrs map[string]featurestore.Value, contacts ...featurestore.Contact) {
		r := &featurestore.Record{}
		for k, v := range attrs {
			r.SetAttr(k, v)
		}
		for _, c := range contacts {
			r.AddContact(c, 30*24*time.Hour, testNow)
		}
		store.mu.Lock()
		store.recs[id] = r
		store.mu.Unlock()
	}
	seedAttrs("in", map[string]featurestore.Value{"sms_opt_in": in, "timezone": featurestore.String("Europe/Paris")})
	seedAttrs("out", map[string]featurestore.Value{"timezone": featurestore.String("Europe/Paris")})
	seedAttrs("late", map[string]featurestore.Value{"sms_opt_in": in, "timezone": featurestore.String("Etc/GMT-12")})
	sms := func(ago time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: "sale", Channel: "sms", Kind: featurestore.Impression, At: testNow.Add(-ago).UnixNano()}
	}
	seedAttrs("limited", map[string]featurestore.Value{"sms_opt_in": in, "timezone": featurestore.String("Europe/Paris")}, sms(48*time.Hour), sms(time.Hour))
	return s
}

// TestDecideChannelPolicy checks what a decision a channel's policy
// withheld answers: no offers, a null fallback, why, and when quiet hours
// end.
func TestDecideChannelPolicy(t *testing.T) {
	s := channelsServer(t, newFakeStore(), false)
	tests := []struct {
		customer, channel string
		want              string // the response from "offers"
	}{
		{"in", "sms", `"offers":[{"id":"sale","name":"sale","score":1,"content":{"text":"Winter sale"}}],"degraded":false}`},
		{"out", "sms", `"offers":[],"fallback":null,"suppressed":{"reason":"channel_ineligible","rule":"customer.sms_opt_in"},"degraded":false}`},
		{"out", "web", `"offers":[{"id":"sale","name":"sale","score":1,"content":{"headline":"Winter sale"}}],"degraded":false}`},
		{"late", "sms", `"offers":[],"fallback":null,"suppressed":{"reason":"quiet_hours","rule":"quiet_hours: 21:00 to 09:00 in customer.timezone, else Asia/Tokyo"},"next_allowed_at":"2026-11-23T09:00:00+12:00","degraded":false}`},
		{"limited", "sms", `"offers":[],"fallback":null,"suppressed":{"reason":"contact_limit","rule":"contact_limit: 2 impressions within 7d on sms"},"degraded":false}`},
	}
	for _, tt := range tests {
		r := do(s, "POST", "/v1/decide", `{"customer_id":"`+tt.customer+`","channel":"`+tt.channel+`"}`)
		status, body := r.status, r.body
		_, got, _ := strings.Cut(body, `"offers":`)
		if status != 200 || `"offers":`+strings.TrimSpace(got) != tt.want {
			t.Errorf("%s on %s: %d %s\nwant ...%s", tt.customer, tt.channel, status, body, tt.want)
		}
	}
}

// TestShedChannelPolicy: a decision shed for overload reads no customer,
// so on a channel with a policy it answers no fallback (the customer may
// have said no); on a channel without one, the fallback as before.
func TestShedChannelPolicy(t *testing.T) {
	store := newFakeStore()
	one := Limit{InFlight: 1, Queue: 50 * time.Millisecond}
	s := newTestServer(t, store, func(o *testOptions) {
		o.Catalog = loadCatalog(t, "testdata/channels.yaml")
		o.Admission = Admission{Decide: one, Events: one, Other: one}
	})
	g := &s.admit.gates[classDecide]
	g.slots <- struct{}{} // a decision in flight
	defer func() { <-g.slots }()
	for _, tt := range []struct{ channel, fallback string }{
		{"sms", `"fallback":null`},
		{"web", `"fallback":{"headline":"Welcome"}`},
	} {
		r := do(s, "POST", "/v1/decide", `{"customer_id":"out","channel":"`+tt.channel+`"}`)
		if r.status != 200 || !strings.Contains(r.body, `"reason":"overload"`) || !strings.Contains(r.body, tt.fallback) {
			t.Errorf("shed decide on %s: %d %s, want %s, degraded for overload", tt.channel, r.status, r.body, tt.fallback)
		}
	}
}
