package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 13, points 3 and 7 against the real binary, on both stores: the
// timeline shows a customer's events from every channel in order, newest
// first, with the offers decisions showed; the profile shows the contact
// history's summary; an export lists what was stored, and a deletion
// leaves an unknown customer.

const journeyCatalog = "testdata/journey.yaml"

type timelineBody struct {
	CustomerID string `json:"customer_id"`
	Entries    []struct {
		Kind       string
		Type       string
		At         time.Time
		Channel    string
		OfferID    string `json:"offer_id"`
		DecisionID string `json:"decision_id"`
		Outcome    string
		EventID    string `json:"event_id"`
		Properties map[string]any
		Changes    map[string]any
	}
}

// line is an entry as the test compares it.
func (b timelineBody) lines() []string {
	var out []string
	for _, e := range b.Entries {
		out = append(out, strings.Join([]string{e.Kind, e.Type, e.Channel, e.OfferID}, " "))
	}
	return out
}

func (s *server) timeline(id, query string) timelineBody {
	s.t.Helper()
	var b timelineBody
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/customers/"+id+"/timeline"+query, "", 200)), &b); err != nil {
		s.t.Fatal(err)
	}
	return b
}

type capBody struct {
	OfferID string `json:"offer_id"`
	Channel *string
	Count   int
	Max     int
	Within  string
	Reached bool
	Until   *time.Time
}

type customerBody struct {
	Known          bool
	Features       map[string]any
	ContactHistory struct {
		LastImpressions []struct {
			OfferID string `json:"offer_id"`
			Channel string
			At      time.Time
		} `json:"last_impressions"`
		Suppressions []struct {
			OfferID string `json:"offer_id"`
			Outcome string
			At      time.Time
			Until   time.Time
		}
		Caps          []capBody
		ChannelLimits []capBody `json:"channel_limits"`
	} `json:"contact_history"`
}

func (s *server) customerBody(id string) customerBody {
	s.t.Helper()
	var c customerBody
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/customers/"+id, "", 200)), &c); err != nil {
		s.t.Fatal(err)
	}
	return c
}

type exportBody struct {
	CustomerID     string `json:"customer_id"`
	Known          bool
	Profile        map[string]any
	Features       map[string]any
	Aggregates     map[string]json.RawMessage
	Contacts       []struct{ OfferID, Channel, Outcome string }
	ContactHistory json.RawMessage `json:"contact_history"`
	Timeline       []json.RawMessage
	EventIDs       []string `json:"event_ids"`
}

func (s *server) export(id string) exportBody {
	s.t.Helper()
	var x exportBody
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/customers/"+id+"/export", "", 200)), &x); err != nil {
		s.t.Fatal(err)
	}
	return x
}

func TestJourney(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", journeyCatalog, "--data", t.TempDir())
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", journeyCatalog, "--redis", "redis://"+rs.Addr+"/0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			ts := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }

			// Ana browses on the web, opens the app and calls the call
			// center; her profile changes; an email campaign decides for
			// her (deciding is sending on email), and she clicks.
			s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"events":[
				{"customer_id":"ana","type":"product_view","channel":"web","ts":%q,"properties":{"category":"shoes"}},
				{"customer_id":"ana","type":"app_open","channel":"app","ts":%q},
				{"event_id":"call-1","customer_id":"ana","type":"call","channel":"call_center","ts":%q,"properties":{"reason":"billing"}},
				{"customer_id":"bob","type":"product_view","channel":"web","ts":%q}]}`,
				ts(-3*time.Hour), ts(-2*time.Hour), ts(-time.Hour), ts(-time.Hour)), 202)
			s.mustCall("PUT", "/v1/customers/ana", `{"features":{"first_name":"Ana","tier":"silver"}}`, 200)
			s.mustCall("PUT", "/v1/customers/ana", `{"features":{"tier":"silver"}}`, 200) // no change, no entry
			d := s.decide(`{"customer_id":"ana","channel":"email"}`)
			if got := d.offerIDs(); !slices.Equal(got, []string{"sale"}) {
				t.Fatalf("the email decision sent %v, want the sale", got)
			}
			s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":"ana","type":"click","offer_id":"sale","decision_id":%q,"channel":"email"}`, d.DecisionID), 202)

			t.Run("the timeline shows every channel in order, newest first", func(t *testing.T) {
				tl := s.timeline("ana", "")
				want := []string{
					"offer click email sale",
					"offer impression email sale",
					"profile profile  ",
					"event call call_center ",
					"event app_open app ",
					"event product_view web ",
				}
				if got := tl.lines(); !slices.Equal(got, want) {
					t.Fatalf("timeline\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				e := tl.Entries
				if e[1].DecisionID != d.DecisionID || e[1].Outcome != "impression" || e[0].DecisionID != d.DecisionID {
					t.Errorf("the offer entries name decision %q and %q (outcome %q), want the email decision %q", e[0].DecisionID, e[1].DecisionID, e[1].Outcome, d.DecisionID)
				}
				if e[2].Changes["first_name"] != "Ana" || e[2].Changes["tier"] != "silver" || len(e[2].Changes) != 2 {
					t.Errorf("profile change %v, want first_name and tier", e[2].Changes)
				}
				if e[3].Properties["reason"] != "billing" || e[3].EventID != "call-1" {
					t.Errorf("the call: %+v", e[3])
				}
				for i := 1; i < len(e); i++ {
					if e[i].At.After(e[i-1].At) {
						t.Errorf("entry %d (%s) is newer than entry %d", i, e[i].At, i-1)
					}
				}
				if got := s.timeline("ana", "?limit=2").lines(); !slices.Equal(got, want[:2]) {
					t.Errorf("limit=2: %v, want %v", got, want[:2])
				}
				if got := s.timeline("nobody", "?limit=5"); len(got.Entries) != 0 || got.Entries == nil {
					t.Errorf("an unknown customer's timeline: %+v, want entries: []", got)
				}
				for _, q := range []string{"?limit=0", "?limit=201", "?limit=ten", "?limit="} {
					status, body := s.call("GET", "/v1/customers/ana/timeline"+q, "")
					if status != 400 || !strings.Contains(body, "limit: must be a whole number from 1 to 200") {
						t.Errorf("%s: %d %s, want 400 naming the limit", q, status, body)
					}
				}
			})

			t.Run("the profile shows the contact history's summary", func(t *testing.T) {
				h := s.customerBody("ana").ContactHistory
				if len(h.LastImpressions) != 1 || h.LastImpressions[0].OfferID != "sale" || h.LastImpressions[0].Channel != "email" {
					t.Errorf("last impressions %+v, want the sale on email", h.LastImpressions)
				}
				if len(h.Caps) != 1 || h.Caps[0].OfferID != "sale" || h.Caps[0].Count != 1 || h.Caps[0].Max != 2 || h.Caps[0].Within != "7d" || h.Caps[0].Reached {
					t.Errorf("caps %+v, want the sale's at 1 of 2 within 7d", h.Caps)
				}
				if len(h.ChannelLimits) != 1 || *h.ChannelLimits[0].Channel != "email" || h.ChannelLimits[0].Count != 1 || h.ChannelLimits[0].Max != 3 {
					t.Errorf("channel limits %+v, want email at 1 of 3", h.ChannelLimits)
				}
				if len(h.Suppressions) != 0 {
					t.Errorf("suppressions %+v, want none", h.Suppressions)
				}
				// A second email reaches the sale's cap: the summary says
				// so, and until when, as the next decision does.
				if got := s.decide(`{"customer_id":"ana","channel":"email"}`).offerIDs(); !slices.Equal(got, []string{"sale"}) {
					t.Fatalf("the second email sent %v, want the sale", got)
				}
				h = s.customerBody("ana").ContactHistory
				if len(h.Caps) != 1 || !h.Caps[0].Reached || h.Caps[0].Until == nil || h.Caps[0].Count != 2 {
					t.Errorf("caps %+v, want the sale's reached, with its end", h.Caps)
				}
				if got := s.decide(`{"customer_id":"ana","channel":"web","explain":true}`); reasonOf(got, "sale") != "capped" {
					t.Errorf("the web after the cap: %v, sale %q; want it capped", got.offerIDs(), reasonOf(got, "sale"))
				}
				// A dismissal suppresses the sale for three days.
				s.mustCall("POST", "/v1/events", `{"customer_id":"ana","type":"dismiss","offer_id":"sale","channel":"app"}`, 202)
				h = s.customerBody("ana").ContactHistory
				if len(h.Suppressions) != 1 || h.Suppressions[0].Outcome != "dismiss" || h.Suppressions[0].Until.Sub(h.Suppressions[0].At) != 72*time.Hour {
					t.Errorf("suppressions %+v, want the sale dismissed for 3 days", h.Suppressions)
				}
			})

			t.Run("an export lists what was stored", func(t *testing.T) {
				x := s.export("ana")
				if !x.Known || x.Profile["first_name"] != "Ana" || x.Profile["tier"] != "silver" || x.Features["views_30d"] != 1.0 {
					t.Errorf("export: known %v, profile %v, features %v", x.Known, x.Profile, x.Features)
				}
				if _, ok := x.Aggregates["views_30d"]; !ok {
					t.Errorf("export aggregates %v, want views_30d", x.Aggregates)
				}
				var outcomes []string
				for _, c := range x.Contacts {
					outcomes = append(outcomes, c.Outcome)
				}
				if len(outcomes) < 3 || !slices.Contains(outcomes, "dismiss") || !slices.Contains(outcomes, "click") {
					t.Errorf("export contacts %v, want the impressions, the click and the dismissal", outcomes)
				}
				if len(x.Timeline) != len(s.timeline("ana", "?limit=200").Entries) || len(x.Timeline) < 7 {
					t.Errorf("export timeline of %d entries", len(x.Timeline))
				}
				if !slices.Contains(x.EventIDs, "call-1") || !slices.Contains(x.EventIDs, d.DecisionID+":sale") {
					t.Errorf("export event ids %v, want call-1 and the decision's impression", x.EventIDs)
				}
			})

			t.Run("delete then get: an unknown customer", func(t *testing.T) {
				for range 2 {
					if status, body := s.call("DELETE", "/v1/customers/ana", ""); status != 204 || body != "" {
						t.Fatalf("DELETE: %d %q, want 204 and no body", status, body)
					}
				}
				if c := s.customerBody("ana"); c.Known || c.Features["first_name"] != "" || len(c.ContactHistory.LastImpressions) != 0 {
					t.Errorf("after DELETE: known %v, features %v, history %+v", c.Known, c.Features, c.ContactHistory)
				}
				if tl := s.timeline("ana", ""); len(tl.Entries) != 0 {
					t.Errorf("after DELETE the timeline has %v", tl.lines())
				}
				x := s.export("ana")
				if x.Known || len(x.Profile) != 0 || len(x.Contacts) != 0 || len(x.Timeline) != 0 || len(x.EventIDs) != 0 {
					t.Errorf("after DELETE the export holds %+v", x)
				}
				if status, _ := s.call("DELETE", "/v1/customers/never-seen", ""); status != 204 {
					t.Errorf("DELETE of a customer never seen: %d, want 204", status)
				}
				// Another customer is untouched.
				if c := s.customerBody("bob"); !c.Known || c.Features["views_30d"] != 1.0 {
					t.Errorf("bob after deleting ana: known %v, features %v", c.Known, c.Features)
				}
				// The sale is no longer capped or suppressed for her.
				if got := s.decide(`{"customer_id":"ana","channel":"app"}`).offerIDs(); !slices.Equal(got, []string{"sale"}) {
					t.Errorf("after DELETE the app offers %v, want the sale", got)
				}
			})
		})
	}
}
