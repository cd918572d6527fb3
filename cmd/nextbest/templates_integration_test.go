package main

import (
	"fmt"
	"testing"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 13, point 6 against the real binary, on both stores: content
// templates render with the customer's own details, escaped as HTML on
// the web and verbatim on SMS.

const templatesCatalog = "testdata/templates.yaml"

func TestContentTemplates(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", templatesCatalog, "--data", t.TempDir())
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", templatesCatalog, "--redis", "redis://"+rs.Addr+"/0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			profile := func(id, name string) {
				s.mustCall("PUT", "/v1/customers/"+id, fmt.Sprintf(`{"features":{"first_name":%q}}`, name), 200)
			}
			view := func(id, category string) {
				s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"product_view","channel":"web","properties":{"category":%q}}`, id, category), 202)
			}
			content := func(id, channel string) (offer bool, field string) {
				t.Helper()
				d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q}`, id, channel))
				c := d.Fallback
				if len(d.Offers) > 0 {
					offer, c = true, d.Offers[0].Content
				}
				for _, k := range []string{"headline", "text"} {
					if v, ok := c[k].(string); ok {
						return offer, v
					}
				}
				t.Fatalf("decide %s on %s: no headline or text in %+v", id, channel, d)
				return false, ""
			}
			tests := []struct {
				customer, channel string
				offer             bool
				want              string
			}{
				{"ada", "web", true, "Hi Ada, still thinking about outdoor &amp; camping?"},
				{"ada", "sms", true, "Hi Ada, still thinking about outdoor & camping?"},
				{"mallory", "web", true, "Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;, still thinking about kids?"},
				{"mallory", "sms", true, "Hi <script>alert('x')</script>, still thinking about kids?"},
				{"bea", "web", false, "Welcome, Bea"}, // no views: the fallback, rendered too
				{"anon", "web", true, "Hi there, still thinking about running?"},
				{"never-seen", "web", false, "Welcome, there"},
			}
			profile("ada", "Ada")
			view("ada", "outdoor & camping")
			profile("mallory", "<script>alert('x')</script>")
			view("mallory", "kids")
			profile("bea", "Bea")
			view("anon", "running")
			for _, tt := range tests {
				offer, got := content(tt.customer, tt.channel)
				if offer != tt.offer || got != tt.want {
					t.Errorf("%s on %s: offer %v, %q; want offer %v, %q", tt.customer, tt.channel, offer, got, tt.offer, tt.want)
				}
			}
			// A changed name shows in the next decision.
			profile("ada", "Ada L.")
			if _, got := content("ada", "web"); got != "Hi Ada L., still thinking about outdoor &amp; camping?" {
				t.Errorf("after a new name: %q", got)
			}
		})
	}
}
