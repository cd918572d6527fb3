package httpapi

import (
	"strings"
	"testing"

	"github.com/nextbest/nextbest/internal/keys"
)

// TestPublicKeyExplain: explanations list the catalog's offers and rules,
// so a public key's explain is refused with 403; server-side keys, and a
// server without access control, get them.
func TestPublicKeyExplain(t *testing.T) {
	vera := keys.CustomerToken([]byte(testTokenSecret), "vera")
	tests := []struct {
		name, key, body string
		status          int
		explained       bool
	}{
		{"public key, explain", "nbk_web", `{"customer_id":"vera","channel":"web","customer_token":"` + vera + `","explain":true}`, 403, false},
		{"public key, anonymous explain", "nbk_web", `{"customer_id":"x","channel":"web","explain":true}`, 403, false},
		{"public key, explain false", "nbk_web", `{"customer_id":"x","channel":"web","explain":false}`, 200, false},
		{"public key, no explain", "nbk_web", `{"customer_id":"x","channel":"web"}`, 200, false},
		{"server key, explain", "nbk_srv", `{"customer_id":"x","channel":"web","explain":true}`, 200, true},
		{"no access control, explain", "", `{"customer_id":"x","channel":"web","explain":true}`, 200, true},
	}
	withKeys := publicKeyServer(t, "", nil)
	open := newTestServer(t, newFakeStore(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, header := withKeys, []string{"Authorization", "Bearer " + tt.key}
			if tt.key == "" {
				s, header = open, nil
			}
			r := do(s, "POST", "/v1/decide", tt.body, header...)
			if r.status != tt.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tt.status)
			}
			if r.status == 403 {
				if code, msg := errorBody(t, r); code != CodeForbidden || !strings.Contains(msg, "explain: not available with a public key") {
					t.Errorf("error %s %q, want forbidden explaining that explain is for server-side keys", code, msg)
				}
				return
			}
			if got := strings.Contains(r.body, `"explain":`); got != tt.explained {
				t.Errorf("explained: %v, want %v: %s", got, tt.explained, r.body)
			}
		})
	}
}

// TestCustomerTokenType: decide and events read customer_token by one
// rule: absent or null is no token, a string is one, anything else is the
// same 400, whatever the key.
func TestCustomerTokenType(t *testing.T) {
	s := publicKeyServer(t, ", client_rate: 0", nil)
	decide := func(token string) string {
		return `{"customer_id":"vera","channel":"web","customer_token":` + token + `}`
	}
	event := func(token string) string {
		return `{"customer_id":"vera","type":"purchase","properties":{"amount":1},"customer_token":` + token + `}`
	}
	valid := `"` + keys.CustomerToken([]byte(testTokenSecret), "vera") + `"`
	batch := func(token string) string { return `{"events":[` + event(valid) + `,` + event(token) + `]}` }
	tests := []struct {
		name, path string
		body       func(string) string
		token      string
		want       map[string]int // status by key
		msg        string         // of the 400
	}{
		{"decide, number", "/v1/decide", decide, `7`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got a number"},
		{"decide, bool", "/v1/decide", decide, `true`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got a bool"},
		{"decide, object", "/v1/decide", decide, `{}`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got an object"},
		{"decide, array", "/v1/decide", decide, `["x"]`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got an array"},
		{"events, number", "/v1/events", event, `7`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got a number"},
		{"events, bool", "/v1/events", event, `false`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got a bool"},
		{"events, object", "/v1/events", event, `{"t":1}`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "customer_token: must be a string, got an object"},
		{"events, array in a batch", "/v1/events", batch, `[]`, map[string]int{"nbk_web": 400, "nbk_srv": 400}, "events[1].customer_token: must be a string, got an array"},
		// Null is no token: anonymous for decide, refused for a public
		// key's events, unused by a server key.
		{"decide, null", "/v1/decide", decide, `null`, map[string]int{"nbk_web": 200, "nbk_srv": 200}, ""},
		{"events, null", "/v1/events", event, `null`, map[string]int{"nbk_web": 403, "nbk_srv": 202}, ""},
		{"decide, valid", "/v1/decide", decide, valid, map[string]int{"nbk_web": 200, "nbk_srv": 200}, ""},
		{"events, valid", "/v1/events", event, valid, map[string]int{"nbk_web": 202, "nbk_srv": 202}, ""},
	}
	for _, tt := range tests {
		for _, key := range []string{"nbk_web", "nbk_srv"} {
			t.Run(tt.name+"/"+key, func(t *testing.T) {
				r := do(s, "POST", tt.path, tt.body(tt.token), "Authorization", "Bearer "+key)
				if r.status != tt.want[key] {
					t.Fatalf("status %d %s, want %d", r.status, r.body, tt.want[key])
				}
				if r.status == 400 {
					if code, msg := errorBody(t, r); code != CodeInvalidRequest || msg != tt.msg {
						t.Errorf("error %s %q, want invalid_request %q", code, msg, tt.msg)
					}
				}
			})
		}
	}
}
