package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 13, point 1 against the real binary, on both stores: a channel's
// consent, contact limit and quiet hours gate its offers and its default.

const channelsCatalog = "testdata/channels.yaml"

// channelDecision is a decide response with what a channel's policy adds.
type channelDecision struct {
	decideResponse
	Fallback      json.RawMessage // null, not absent, when withheld
	NextAllowedAt string          `json:"next_allowed_at"`
}

func (s *server) channelDecide(body string) channelDecision {
	s.t.Helper()
	resp := s.mustCall("POST", "/v1/decide", body, 200)
	var d channelDecision
	if err := json.Unmarshal([]byte(resp), &d); err != nil {
		s.t.Fatalf("decide %s: %v in %s", body, err, resp)
	}
	if err := json.Unmarshal([]byte(resp), &d.decideResponse); err != nil {
		s.t.Fatalf("decide %s: %v in %s", body, err, resp)
	}
	return d
}

// zoneAt returns an IANA zone (Etc/GMT±h, without daylight saving) whose
// clock reads hour now, and that clock.
func zoneAt(t *testing.T, hour int) (string, time.Time) {
	t.Helper()
	off := hour - time.Now().UTC().Hour()
	off = ((off+12)%24+24)%24 - 12 // -12 to 11 hours east of UTC
	name := "Etc/UTC"
	switch {
	case off > 0:
		name = fmt.Sprintf("Etc/GMT-%d", off) // POSIX signs: GMT-9 is 9 hours east
	case off < 0:
		name = fmt.Sprintf("Etc/GMT+%d", -off)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return name, time.Now().In(loc)
}

func TestChannelPolicy(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", channelsCatalog, "--data", t.TempDir())
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", channelsCatalog, "--redis", "redis://"+rs.Addr+"/0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			noon, _ := zoneAt(t, 12) // outside the quiet hours
			profile := func(id, features string) {
				s.mustCall("PUT", "/v1/customers/"+id, `{"features":`+features+`}`, 200)
			}
			withheld := func(d channelDecision, reason string) {
				t.Helper()
				if len(d.Offers) != 0 || string(d.Fallback) != "null" || d.Suppressed == nil || d.Suppressed.Reason != reason {
					t.Errorf("got offers %v, fallback %s, suppressed %+v; want none, null and %s", d.offerIDs(), d.Fallback, d.Suppressed, reason)
				}
			}

			t.Run("an opted-out customer gets no SMS default", func(t *testing.T) {
				profile("out", fmt.Sprintf(`{"sms_opt_in":false,"timezone":%q}`, noon))
				d := s.channelDecide(`{"customer_id":"out","channel":"sms","explain":true}`)
				withheld(d, "channel_ineligible")
				if d.Suppressed != nil && d.Suppressed.Rule != "customer.sms_opt_in" {
					t.Errorf("suppressed by %q, want the failing part customer.sms_opt_in", d.Suppressed.Rule)
				}
				for _, x := range d.Explain {
					if x.OfferID != "sale" && x.Reason != "channel_ineligible" {
						t.Errorf("explain of %s: %s, want channel_ineligible", x.OfferID, x.Reason)
					}
				}
				// Nobody has consented who was never asked.
				withheld(s.channelDecide(`{"customer_id":"never-seen","channel":"sms"}`), "channel_ineligible")
				profile("dnd", fmt.Sprintf(`{"sms_opt_in":true,"do_not_disturb":true,"timezone":%q}`, noon))
				withheld(s.channelDecide(`{"customer_id":"dnd","channel":"sms"}`), "channel_ineligible")
				// The web is not SMS: its default is still there.
				if d := s.channelDecide(`{"customer_id":"out","channel":"web"}`); len(d.Offers) != 1 || d.Suppressed != nil {
					t.Errorf("the web answers %v, suppressed %+v, want the sale", d.offerIDs(), d.Suppressed)
				}
			})

			t.Run("a third SMS in a week is refused by contact_limit across two offers", func(t *testing.T) {
				profile("in", fmt.Sprintf(`{"sms_opt_in":true,"timezone":%q}`, noon))
				first := s.channelDecide(`{"customer_id":"in","channel":"sms"}`)
				second := s.channelDecide(`{"customer_id":"in","channel":"sms"}`)
				if got := append(first.offerIDs(), second.offerIDs()...); strings.Join(got, ",") != "sale,new-arrivals" {
					t.Fatalf("the first two SMS sent %v, want sale then new-arrivals", got)
				}
				third := s.channelDecide(`{"customer_id":"in","channel":"sms","explain":true}`)
				withheld(third, "contact_limit")
				if third.Suppressed != nil && third.Suppressed.Rule != "contact_limit: 2 impressions within 7d on sms" {
					t.Errorf("suppressed by %q, want the contact limit named", third.Suppressed.Rule)
				}
				if r := reasonOf(third.decideResponse, "loyalty"); r != "contact_limit" {
					t.Errorf("explain of loyalty, uncapped: %q, want contact_limit", r)
				}
				// One decision of three offers sends no more than the
				// limit leaves: two.
				profile("many", fmt.Sprintf(`{"sms_opt_in":true,"timezone":%q}`, noon))
				if got := s.channelDecide(`{"customer_id":"many","channel":"sms","limit":3}`).offerIDs(); strings.Join(got, ",") != "sale,new-arrivals" {
					t.Errorf("limit 3 under a limit of 2 a week sent %v, want sale and new-arrivals", got)
				}
				withheld(s.channelDecide(`{"customer_id":"many","channel":"sms"}`), "contact_limit")
				// Web impressions are not SMS.
				s.outcome("web-only", "impression", "sale", "web")
				s.outcome("web-only", "impression", "sale", "web")
				profile("web-only", fmt.Sprintf(`{"sms_opt_in":true,"timezone":%q}`, noon))
				if d := s.channelDecide(`{"customer_id":"web-only","channel":"sms"}`); len(d.Offers) != 1 {
					t.Errorf("two web impressions count against the SMS limit: %v, suppressed %+v", d.offerIDs(), d.Suppressed)
				}
			})

			t.Run("a decision at 22:00 in the customer's zone is deferred", func(t *testing.T) {
				late, clock := zoneAt(t, 22)
				profile("late", fmt.Sprintf(`{"sms_opt_in":true,"timezone":%q}`, late))
				d := s.channelDecide(`{"customer_id":"late","channel":"sms"}`)
				withheld(d, "quiet_hours")
				y, m, day := clock.Date()
				want := time.Date(y, m, day+1, 9, 0, 0, 0, clock.Location())
				got, err := time.Parse(time.RFC3339, d.NextAllowedAt)
				if err != nil || !got.Equal(want) {
					t.Errorf("next_allowed_at %q, want %s (09:00 the next morning in %s)", d.NextAllowedAt, want.Format(time.RFC3339), late)
				}
				// Nothing was sent, so nothing was counted.
				profile("late", fmt.Sprintf(`{"timezone":%q}`, noon))
				if d := s.channelDecide(`{"customer_id":"late","channel":"sms"}`); len(d.Offers) != 1 || d.NextAllowedAt != "" {
					t.Errorf("at noon: %v, next_allowed_at %q, want the sale and none", d.offerIDs(), d.NextAllowedAt)
				}
			})

			t.Run("an unknown time zone is refused on upsert", func(t *testing.T) {
				status, body := s.call("PUT", "/v1/customers/mars", `{"features":{"timezone":"Mars/Olympus"}}`)
				if status != 400 || !strings.Contains(body, `features.timezone: \"Mars/Olympus\" is not a time zone`) {
					t.Errorf("PUT with an unknown zone: %d %s, want 400 naming it", status, body)
				}
				if f := s.customerFeatures("mars"); f["timezone"] != "" {
					t.Errorf("the refused zone was stored: %v", f)
				}
				lines := `{"customer_id":"imp-1","features":{"timezone":"Europe/Paris"}}` + "\n" + `{"customer_id":"imp-2","features":{"timezone":"Europe/Pariss"}}` + "\n"
				status, body = s.call("POST", "/v1/customers:import", lines, "Content-Type", "application/x-ndjson")
				if status != 200 || !strings.Contains(body, `"imported":1`) || !strings.Contains(body, `features.timezone: \"Europe/Pariss\" is not a time zone`) {
					t.Errorf("import: %d %s, want line 2 skipped for its zone", status, body)
				}
				status, body = s.call("POST", "/v1/customers:import?on_error=fail", lines, "Content-Type", "application/x-ndjson")
				if status != 400 || !strings.Contains(body, "Europe/Pariss") {
					t.Errorf("import, on_error=fail: %d %s, want 400", status, body)
				}
			})
		})
	}
}
