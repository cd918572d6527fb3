package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 13, point 2 against the real binary, on both stores: a batch of
// decisions over a segment (an outbound campaign) streams one decide
// response per customer, respects the caps the website's impressions
// set, records its own, and a second run sends nothing new.

// campaignCatalog is the service tests' campaign: a win-back offer on web
// and email, capped across channels, email with consent and a contact
// limit of one a week.
const campaignCatalog = "../../testdata/campaign.yaml"

// campaignCustomers is the population: c-00000 on, every other one
// lapsed, every tenth not opted in to email.
const campaignCustomers = 10_000

func campaignCustomer(i int) string { return fmt.Sprintf("c-%05d", i) }

// batchLine is a line of a batch's answer: a decision, or the summary.
type batchLine struct {
	channelDecision
	Summary *struct {
		Scanned, Decided, Offered, Fallback, Deferred, Errors int
		Suppressed                                            map[string]int
		Done                                                  bool
		Last, Cursor                                          *string
		Error                                                 *struct{ Code, Message string }
	}
}

// batch posts a batch request and returns its decisions, by customer,
// and its summary; every decision line with offers must have the keys of
// a /v1/decide answer with offers (keys).
func (s *server) batch(t *testing.T, body string, keys []string) (map[string]batchLine, batchLine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/decide/batch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("batch %s: %s, %s", body, resp.Status, resp.Header.Get("Content-Type"))
	}
	got := map[string]batchLine{}
	var summary batchLine
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if summary.Summary != nil {
			t.Fatalf("a line after the summary: %s", sc.Text())
		}
		var l batchLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if err := json.Unmarshal(sc.Bytes(), &l.decideResponse); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.Summary != nil {
			summary = l
			continue
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(sc.Bytes(), &m)
		if k := slices.Sorted(maps.Keys(m)); len(l.Offers) > 0 && !slices.Equal(k, keys) {
			t.Fatalf("batch line keys %q, want those of a decide answer with offers, %q", k, keys)
		}
		if _, dup := got[l.CustomerID]; dup {
			t.Fatalf("%s decided twice", l.CustomerID)
		}
		got[l.CustomerID] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if summary.Summary == nil {
		t.Fatal("no summary line")
	}
	return got, summary
}

func TestCampaign(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", campaignCatalog, "--data", t.TempDir())
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", campaignCatalog, "--redis", "redis://"+rs.Addr+"/0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			var lines strings.Builder
			for i := range campaignCustomers {
				tier := "active"
				if i%2 == 0 {
					tier = "lapsed"
				}
				fmt.Fprintf(&lines, `{"customer_id":%q,"features":{"tier":%q,"email_opt_in":%t}}`+"\n", campaignCustomer(i), tier, i%10 != 0)
			}
			s.mustCall("POST", "/v1/customers:import", lines.String(), 200)

			// The website showed the win-back to 50 lapsed customers this
			// morning (the page reported the impression).
			webSeen := map[string]bool{}
			for i := 2; len(webSeen) < 50; i += 2 {
				if i%10 == 0 {
					continue
				}
				id := campaignCustomer(i)
				d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web"}`, id))
				if got := d.offerIDs(); !slices.Equal(got, []string{"winback"}) {
					t.Fatalf("web decision for %s: %v, want winback", id, got)
				}
				s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":"winback","channel":"web","decision_id":%q}`, id, d.DecisionID), 202)
				webSeen[id] = true
			}
			// A decide answer's keys, from a customer outside the segment
			// (who is sent the win-back).
			var keys map[string]json.RawMessage
			_ = json.Unmarshal([]byte(s.mustCall("POST", "/v1/decide", `{"customer_id":"c-00001","channel":"email"}`, 200)), &keys)
			decideKeys := slices.Sorted(maps.Keys(keys))

			got, sum := s.batch(t, `{"channel":"email","segment":"lapsed"}`, decideKeys)
			if len(got) != campaignCustomers/2 {
				t.Fatalf("decided %d customers, want the %d lapsed", len(got), campaignCustomers/2)
			}
			for i := 0; i < campaignCustomers; i += 2 {
				id := campaignCustomer(i)
				d := got[id]
				switch {
				case i%10 == 0:
					if len(d.Offers) != 0 || d.Suppressed == nil || d.Suppressed.Reason != "channel_ineligible" {
						t.Fatalf("%s (no consent): %+v, want suppressed channel_ineligible", id, d)
					}
				case webSeen[id]:
					if len(d.Offers) != 0 {
						t.Fatalf("%s (seen on the website): emailed %v, want nothing (capped)", id, d.offerIDs())
					}
				default:
					if got := d.offerIDs(); !slices.Equal(got, []string{"winback"}) || d.Channel != "email" {
						t.Fatalf("%s: %v on %s, want winback on email", id, got, d.Channel)
					}
				}
			}
			ss := sum.Summary
			wantSent := campaignCustomers/2 - campaignCustomers/10 - len(webSeen)
			if ss.Scanned != campaignCustomers || ss.Decided != campaignCustomers/2 || ss.Offered != wantSent || ss.Fallback != len(webSeen) ||
				ss.Suppressed["channel_ineligible"] != campaignCustomers/10 || ss.Suppressed["contact_limit"] != 0 || ss.Errors != 0 || !ss.Done || ss.Cursor != nil {
				t.Errorf("summary %+v, want %d scanned, %d decided, %d offered, %d fallback, %d channel_ineligible, done", ss,
					campaignCustomers, campaignCustomers/2, wantSent, len(webSeen), campaignCustomers/10)
			}

			// The same campaign again, through nextbest campaign: every
			// customer emailed is at the channel's contact limit (the
			// batch recorded its impressions), the capped still capped;
			// nothing is sent.
			dir := t.TempDir()
			out := filepath.Join(dir, "sends.ndjson")
			code, stdout, stderr := runBinary(t, "campaign", "--url", s.url, "--channel", "email", "--segment", "lapsed", "--out", out, "--page-size", "700")
			if code != 0 || !strings.Contains(stdout, fmt.Sprintf("decided %d customers of %d scanned: 0 with offers", campaignCustomers/2, campaignCustomers)) ||
				!strings.Contains(stdout, fmt.Sprintf("contact_limit %d", wantSent)) {
				t.Fatalf("nextbest campaign: exit %d, %q %q", code, stdout, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			sends := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(sends) != campaignCustomers/2 {
				t.Fatalf("%s: %d lines, want %d", out, len(sends), campaignCustomers/2)
			}
			for _, l := range sends {
				var d decideResponse
				if err := json.Unmarshal([]byte(l), &d); err != nil || len(d.Offers) != 0 {
					t.Fatalf("second run sent %s (%v)", l, err)
				}
			}
			if c, _ := os.ReadFile(out + ".cursor"); !strings.Contains(string(c), `"done": true`) {
				t.Errorf("cursor file %s, want done", c)
			}
			if code, stdout, _ := runBinary(t, "campaign", "--url", s.url, "--channel", "email", "--segment", "lapsed", "--out", out, "--resume"); code != 0 || !strings.Contains(stdout, "already done") {
				t.Errorf("--resume of a done campaign: exit %d %q", code, stdout)
			}
			if code, _, stderr := runBinary(t, "campaign", "--url", s.url, "--channel", "sms", "--segment", "lapsed", "--out", out, "--resume"); code != 2 || !strings.Contains(stderr, `not of --channel "sms"`) {
				t.Errorf("--resume of another campaign's cursor: exit %d %q, want a usage error", code, stderr)
			}
			if code, _, stderr := runBinary(t, "campaign", "--url", s.url, "--channel", "email", "--segment", "lost", "--out", filepath.Join(dir, "x")); code != 1 || !strings.Contains(stderr, `segment: "lost" is not one of lapsed`) {
				t.Errorf("unknown segment: exit %d %q, want the server's 400", code, stderr)
			}
		})
	}
}

// TestCampaignResume: on the embedded store the scan is ordered by id
// and a cursor is the last id done: a campaign resumed from a cursor
// file decides exactly the customers after it.
func TestCampaignResume(t *testing.T) {
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", campaignCatalog, "--data", t.TempDir())
	var lines strings.Builder
	for i := range 100 {
		fmt.Fprintf(&lines, `{"customer_id":%q,"features":{"tier":"lapsed","email_opt_in":true}}`+"\n", campaignCustomer(i))
	}
	s.mustCall("POST", "/v1/customers:import", lines.String(), 200)
	dir := t.TempDir()
	out := filepath.Join(dir, "sends.ndjson")
	// As an interrupted run leaves it: the page it was in (after
	// c-00039), and the last customer it wrote.
	cursor := `{"channel":"email","segment":"lapsed","cursor":"c-00039","after":"c-00041","done":false,"totals":{"decided":42}}`
	if err := os.WriteFile(out+".cursor", []byte(cursor), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBinary(t, "campaign", "--url", s.url, "--channel", "email", "--segment", "lapsed", "--out", out, "--resume", "--page-size", "10")
	if code != 0 || !strings.Contains(stdout, "decided 100 customers") || !strings.Contains(stdout, "58 this run") {
		t.Fatalf("--resume: exit %d %q %q", code, stdout, stderr)
	}
	b, _ := os.ReadFile(out)
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(got) != 59 || got[0] != "{}" || !strings.Contains(got[1], `"customer_id":"c-00042"`) || !strings.Contains(got[58], `"customer_id":"c-00099"`) {
		t.Errorf("after --resume: %d lines, first %.80q, last %.80q; want the old line then c-00042 to c-00099", len(got), got[1], got[len(got)-1])
	}
}
