package decision_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

const channelPolicyCatalog = `channels:
  - web
  - name: sms
    eligible: customer.sms_opt_in && !customer.do_not_disturb
    contact_limit: {max: 2, within: 7d}
    quiet_hours: {from: "21:00", to: "09:00", timezone: customer.timezone, default_timezone: Asia/Tokyo}
    decision_is_impression: true
features:
  sms_opt_in: {type: bool}
  do_not_disturb: {type: bool}
  timezone: {type: string}
offers:
  - id: a
    channels: [web, sms]
    value: 2
    content: {web: {h: a}, sms: {text: a}}
  - id: b
    channels: [sms]
    content: {sms: {text: b}}
defaults:
  web: {h: default}
  sms: {text: default}
`

func impression(offer, channel string, at time.Time) featurestore.Contact {
	return featurestore.Contact{OfferID: offer, Channel: channel, Kind: featurestore.Impression, At: at.UnixNano()}
}

// TestChannelPolicy checks that a channel's consent, quiet hours and
// contact limit withhold the whole answer, fallback included, and say why.
func TestChannelPolicy(t *testing.T) {
	c, err := rules.Load("catalog.yaml", []byte(channelPolicyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	c.Arbitration = rules.Arbitration{Static: true}
	paris, _ := time.LoadLocation("Europe/Paris")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	noon := time.Date(2026, 12, 7, 12, 0, 0, 0, paris) // a Monday
	opted := map[string]any{"sms_opt_in": true, "timezone": "Europe/Paris"}
	tests := []struct {
		name     string
		features map[string]any
		channel  string
		limit    int
		now      time.Time
		history  []featurestore.Contact
		want     []string // chosen offers
		reason   decision.Reason
		rule     string
		next     time.Time
	}{
		{name: "opted out", features: map[string]any{"timezone": "Europe/Paris"}, channel: "sms", now: noon,
			reason: decision.ChannelIneligible, rule: "customer.sms_opt_in"},
		{name: "do not disturb", features: map[string]any{"sms_opt_in": true, "do_not_disturb": true}, channel: "sms", now: noon,
			reason: decision.ChannelIneligible, rule: "!customer.do_not_disturb"},
		{name: "opted out, on web", features: map[string]any{}, channel: "web", now: noon, want: []string{"a=2"}},
		{name: "opted in", features: opted, channel: "sms", now: noon, want: []string{"a=2"}},
		{name: "two sms of two offers this week", features: opted, channel: "sms", now: noon,
			history: []featurestore.Contact{impression("a", "sms", noon.Add(-6*24*time.Hour)), impression("b", "sms", noon.Add(-time.Hour))},
			reason:  decision.ContactLimit, rule: "contact_limit: 2 impressions within 7d on sms"},
		{name: "one sms this week, one before", features: opted, channel: "sms", now: noon,
			history: []featurestore.Contact{impression("a", "sms", noon.Add(-8*24*time.Hour)), impression("b", "sms", noon.Add(-time.Hour))},
			want:    []string{"a=2"}},
		{name: "limit 3, two SMS left this week", features: opted, channel: "sms", limit: 3, now: noon,
			want: []string{"a=2", "b=1"}},
		{name: "limit 3, one SMS left this week", features: opted, channel: "sms", limit: 3, now: noon,
			history: []featurestore.Contact{impression("b", "sms", noon.Add(-time.Hour))},
			want:    []string{"a=2"}},
		{name: "limit 3 on the web, after two SMS", features: opted, channel: "web", limit: 3, now: noon,
			history: []featurestore.Contact{impression("a", "sms", noon.Add(-2*time.Hour)), impression("b", "sms", noon.Add(-time.Hour))},
			want:    []string{"a=2"}},
		{name: "web impressions do not count", features: opted, channel: "sms", now: noon,
			history: []featurestore.Contact{impression("a", "web", noon.Add(-2*time.Hour)), impression("a", "web", noon.Add(-time.Hour))},
			want:    []string{"a=2"}},
		{name: "the sms limit does not bind web", features: opted, channel: "web", now: noon,
			history: []featurestore.Contact{impression("a", "sms", noon.Add(-2*time.Hour)), impression("b", "sms", noon.Add(-time.Hour))},
			want:    []string{"a=2"}},
		{name: "22:00 in the customer's zone", features: opted, channel: "sms", now: time.Date(2026, 12, 7, 22, 0, 0, 0, paris),
			reason: decision.QuietHours, rule: "quiet_hours: 21:00 to 09:00 in customer.timezone, else Asia/Tokyo",
			next: time.Date(2026, 12, 8, 9, 0, 0, 0, paris)},
		{name: "08:59 in the customer's zone", features: opted, channel: "sms", now: time.Date(2026, 12, 7, 8, 59, 0, 0, paris),
			reason: decision.QuietHours, rule: "quiet_hours: 21:00 to 09:00 in customer.timezone, else Asia/Tokyo",
			next: time.Date(2026, 12, 7, 9, 0, 0, 0, paris)},
		{name: "09:00 in the customer's zone", features: opted, channel: "sms", now: time.Date(2026, 12, 7, 9, 0, 0, 0, paris), want: []string{"a=2"}},
		{name: "no zone: the default's", features: map[string]any{"sms_opt_in": true}, channel: "sms", now: noon, // 20:00 in Tokyo
			want: []string{"a=2"}},
		{name: "no zone, 22:00 in Tokyo", features: map[string]any{"sms_opt_in": true}, channel: "sms", now: time.Date(2026, 12, 7, 22, 0, 0, 0, tokyo),
			reason: decision.QuietHours, rule: "quiet_hours: 21:00 to 09:00 in customer.timezone, else Asia/Tokyo",
			next: time.Date(2026, 12, 8, 9, 0, 0, 0, tokyo)},
		{name: "quiet hours on sms only", features: opted, channel: "web", now: time.Date(2026, 12, 7, 22, 0, 0, 0, paris), want: []string{"a=2"}},
		{name: "consent comes first", features: map[string]any{"timezone": "Europe/Paris"}, channel: "sms", now: time.Date(2026, 12, 7, 22, 0, 0, 0, paris),
			reason: decision.ChannelIneligible, rule: "customer.sms_opt_in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, explain := range []bool{false, true} {
				req := decision.Request{CustomerID: "c1", Channel: tt.channel, Limit: tt.limit, Now: tt.now, History: tt.history, Explain: explain}
				var res decision.Result
				if err := new(decision.Engine).Decide(c, vector(t, c, tt.features), &req, &res); err != nil {
					t.Fatal(err)
				}
				if got := chosen(&res); !slices.Equal(got, tt.want) {
					t.Errorf("explain %v: offers %v, want %v", explain, got, tt.want)
				}
				if res.Suppressed.Reason != tt.reason || res.Suppressed.Rule != tt.rule {
					t.Errorf("explain %v: suppressed %+v, want %s, %q", explain, res.Suppressed, tt.reason, tt.rule)
				}
				if tt.reason != "" && res.Fallback != nil {
					t.Errorf("explain %v: a withheld decision has the fallback %s", explain, res.Fallback.JSON)
				}
				if !res.NextAllowedAt.Equal(tt.next) {
					t.Errorf("explain %v: next allowed at %v, want %v", explain, res.NextAllowedAt, tt.next)
				}
				if !explain || tt.reason == "" {
					continue
				}
				for _, x := range res.Explain {
					want := tt.reason
					if o, _ := c.Offer(x.OfferID); !o.OfferedOn(res.Channel) {
						want = decision.WrongChannel
					}
					if x.Eligible || x.Reason != want || (want == tt.reason && x.Rule != tt.rule) {
						t.Errorf("explain of %s: %+v, want reason %s", x.OfferID, x, want)
					}
				}
				if len(res.Explain) != len(c.Offers) {
					t.Errorf("explain has %d offers, want %d", len(res.Explain), len(c.Offers))
				}
			}
		})
	}
}

// TestQuietUntil checks the next instant outside quiet hours across
// daylight-saving changes.
func TestQuietUntil(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name     string
		from, to string
		now      time.Time
		want     time.Time // zero: not quiet
	}{
		{"before, over midnight", "21:00", "09:00", time.Date(2026, 6, 1, 20, 59, 59, 0, ny), time.Time{}},
		{"evening", "21:00", "09:00", time.Date(2026, 6, 1, 21, 0, 0, 0, ny), utc("2026-06-02T13:00:00Z")},
		{"morning", "21:00", "09:00", time.Date(2026, 6, 2, 3, 0, 0, 0, ny), utc("2026-06-02T13:00:00Z")},
		{"at the end", "21:00", "09:00", time.Date(2026, 6, 2, 9, 0, 0, 0, ny), time.Time{}},
		{"within a day", "12:00", "14:00", time.Date(2026, 6, 2, 13, 0, 0, 0, ny), utc("2026-06-02T18:00:00Z")},
		{"clocks go forward overnight", "21:00", "09:00", time.Date(2026, 3, 7, 22, 0, 0, 0, ny), utc("2026-03-08T13:00:00Z")},         // 09:00 EDT
		{"clocks go back overnight", "21:00", "09:00", time.Date(2026, 10, 31, 22, 0, 0, 0, ny), utc("2026-11-01T14:00:00Z")},          // 09:00 EST
		{"the end is skipped", "21:00", "02:30", time.Date(2026, 3, 7, 23, 0, 0, 0, ny), utc("2026-03-08T07:00:00Z")},                  // 03:00 EDT, the change
		{"the end is skipped, inside", "21:00", "02:30", time.Date(2026, 3, 8, 1, 59, 0, 0, ny), utc("2026-03-08T07:00:00Z")},          // 03:00 EDT
		{"the end is repeated: the first", "22:00", "01:30", time.Date(2026, 10, 31, 23, 0, 0, 0, ny), utc("2026-11-01T05:30:00Z")},    // 01:30 EDT
		{"the end is repeated, from the first", "00:00", "01:30", time.Date(2026, 11, 1, 1, 0, 0, 0, ny), utc("2026-11-01T05:30:00Z")}, // 01:30 EDT
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := rules.Load("catalog.yaml", []byte("channels:\n  - name: sms\n    quiet_hours: {from: \""+tt.from+"\", to: \""+tt.to+"\"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			ch, _ := c.Channel("sms")
			got, quiet := decision.QuietUntil(ch.Quiet, tt.now)
			if quiet != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("QuietUntil(%s) = %v, %v; want %v", tt.now, got.UTC(), quiet, tt.want)
			}
		})
	}
}
