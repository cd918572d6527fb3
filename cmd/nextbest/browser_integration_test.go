package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/keys"
)

// Issue 10's browser keys against the real binary: a public key is
// limited per client as well as per key, and no key, token or customer
// attribute reaches the log, whatever a client sends.

// TestAuthPublicKeyPerClient: one visitor's burst on a public key gets 429
// and the site's other visitors are still served.
func TestAuthPublicKeyPerClient(t *testing.T) {
	s := startAuthServer(t)
	burst := func(visitor string, n int) map[int]int {
		var mu sync.Mutex
		counts := map[int]int{}
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				status, h, body := s.do("POST", "/v1/decide", "widget", `{"customer_id":"x","channel":"web"}`, "X-Forwarded-For", visitor)
				if status == 429 && (h.Get("Retry-After") == "" || !strings.Contains(body, "this client")) {
					t.Errorf("429 without Retry-After or not naming the client: %v %s", h, body)
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return counts
	}
	// The widget key allows 3 requests per client in 300 s.
	if got := burst("192.0.2.1", 20); got[200] != 3 || got[429] != 17 {
		t.Errorf("a visitor's burst of 20: %v, want 3 answered and 17 × 429", got)
	}
	for _, other := range []string{"192.0.2.2", "2001:db8::7"} {
		if got := burst(other, 3); got[200] != 3 {
			t.Errorf("another visitor (%s) after the burst: %v, want 3 answered", other, got)
		}
	}
	// A signed-in customer is a client of its own, on any address.
	token := keys.CustomerToken([]byte(tokenSecret), "vera")
	body := fmt.Sprintf(`{"customer_id":"vera","channel":"web","customer_token":%q}`, token)
	if status, _, body := s.do("POST", "/v1/decide", "widget", body, "X-Forwarded-For", "192.0.2.1"); status != 200 {
		t.Errorf("a signed-in customer on the busy visitor's address: %d %s, want 200", status, body)
	}
	status, _, metrics := s.do("GET", "/metrics", "ops", "")
	if status != 200 || !strings.Contains(metrics, "nextbest_requests_client_rate_limited_total 17\n") || !strings.Contains(metrics, "nextbest_public_client_buckets 4\n") {
		t.Errorf("metrics: %d, want 17 client refusals and 4 client buckets", status)
	}
}

// TestLogsHoldNoSecrets runs authenticated, anonymous, hostile and
// malformed requests that carry recognisable keys, customer tokens and
// customer attributes, with debug logging and the full access log, and
// greps everything the server printed.
func TestLogsHoldNoSecrets(t *testing.T) {
	s := startAuthServer(t, "--log-level", "debug", "--access-log-sample", "1")
	token := keys.CustomerToken([]byte(tokenSecret), "vera")
	const (
		forgedKey = "nbk_forgedKEYforLOGtest0123456789"
		attr      = "attr-Sapphire-7f3a"    // a profile attribute
		prop      = "prop-Ruby-91c2"        // an event property
		ctxValue  = "ctx-Emerald-44d8"      // a decision context value
		badToken  = "tok-Garnet-c0ffee1234" // a token that proves nothing
	)
	secrets := map[string]string{"token secret": tokenSecret, "customer token": token, "forged key": forgedKey,
		"attribute": attr, "property": prop, "context value": ctxValue, "bad token": badToken}
	for name, key := range s.keys {
		secrets["key "+name] = key
	}

	// Well-formed requests, good and bad.
	requests := []struct {
		method, path, key, body string
		header                  []string
	}{
		{"PUT", "/v1/customers/vera", "crm", `{"features":{"tier":"` + attr + `","lifetime_value":5000}}`, nil},
		{"PUT", "/v1/customers/vera", "crm", `{"features":{"tier":"` + attr + `","lifetime_value":"` + attr + `"}}`, nil},
		{"PUT", "/v1/customers/vera", "crm", `{"features":{"tier":"` + attr + `"`, nil},
		{"GET", "/v1/customers/vera", "crm", "", nil},
		{"POST", "/v1/decide", "website", `{"customer_id":"vera","channel":"web","customer_token":"` + token + `","context":{"page":"` + ctxValue + `"}}`, nil},
		{"POST", "/v1/decide", "website", `{"customer_id":"vera","channel":"web","customer_token":"` + badToken + `","explain":true}`, nil},
		{"POST", "/v1/decide", "website", `{"customer_id":"vera","channel":"fax","customer_token":"` + token + `"}`, nil},
		{"POST", "/v1/decide", "website", `{"customer_id":"vera","channel":"web","customer_token":"` + token + `"}`, []string{"Origin", "https://evil.example"}},
		{"POST", "/v1/events", "website", `{"customer_id":"vera","type":"purchase","properties":{"amount":1,"sku":"` + prop + `"},"customer_token":"` + token + `"}`, nil},
		{"POST", "/v1/events", "website", `{"customer_id":"vera","type":"purchase","properties":{"amount":"` + prop + `"},"customer_token":"` + badToken + `"}`, nil},
		{"POST", "/v1/events", "ingest", `{"customer_id":"vera","type":"purchase","properties":{"amount":"` + prop + `"},"customer_token":7}`, nil},
		{"POST", "/v1/events", "ingest", `{"customer_id":"vera","type":"purchase","properties":{"amount":1,"sku":"` + prop + `"}}`, nil},
		{"GET", "/v1/stats", "website", "", nil},
		{"GET", "/metrics", "decider", "", nil},
		{"POST", "/v1/decide", "", `{"customer_id":"vera","channel":"web"}`, []string{"Authorization", "Bearer " + forgedKey}},
		{"POST", "/v1/decide", "decider", `{"customer_id":"vera","channel":"web"}`, []string{"Content-Type", "text/plain; " + attr}},
		{"GET", "/v1/decide?k=" + forgedKey, "decider", "", nil},
		{"GET", "/readyz", "ops", "", []string{"X-Pad", strings.Repeat(attr, 9<<10/len(attr))}},
	}
	for _, r := range requests {
		s.do(r.method, r.path, r.key, r.body, r.header...)
	}

	// Malformed HTTP after the key, which fasthttp's errors quote.
	auth := "Authorization: Bearer " + s.keys["website"] + "\r\n"
	tokenBody := `{"customer_id":"vera","channel":"web","customer_token":"` + token + `"}`
	raws := []string{
		"POST /v1/decide HTTP/1.1\r\nHost: x\r\n" + auth + "X-Attr: " + attr + "\r\nthis is not a header\r\n\r\n",
		"POST /v1/decide HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: zz" + attr + "\r\n\r\n" + tokenBody,
		"POST /v1/decide HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + tokenBody + "\r\n0\r\n\r\n",
		"POST /v1/decide HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 5000000\r\n\r\n" + tokenBody,
		"POST /v1/decide?" + forgedKey + " HTTP/9.9 " + attr + "\r\n" + auth + "\r\n",
		"GET / HTTP/1.1\r\n" + auth + "X-Pad: " + strings.Repeat(token, 9<<10/len(token)) + "\r\n\r\n",
		"POST /v1/decide HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 500\r\n\r\n" + tokenBody, // the client goes away
	}
	for _, raw := range raws {
		c, err := net.DialTimeout("tcp", hostOf(s.server), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, raw)
		if strings.HasSuffix(raw, tokenBody) && strings.Contains(raw, "Content-Length: 500\r\n") {
			c.Close() // mid-body
			continue
		}
		readUntilClosed(c, time.Now())
		c.Close()
	}
	s.stop()

	logs := s.logs.String()
	for name, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	// The test saw the paths it means to: the access log, and fasthttp's
	// errors logged by class.
	for _, want := range []string{"msg=request", `msg="error serving connection"`, "class=malformed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q: the test did not exercise that path", want)
		}
	}
}
