package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nextbest/nextbest/internal/keys"
)

// Issue 6's access control against the real binary: keys made with
// `nextbest keys create`, scopes, public keys and customer tokens, CORS,
// rate limits.

const tokenSecret = "test-token-secret-0123456789"

type authServer struct {
	*server
	keys map[string]string // name → key
}

// createKey runs `nextbest keys create` and returns the printed key.
func createKey(t *testing.T, dir string, args ...string) string {
	t.Helper()
	args = append([]string{"keys", "create", "--keys", filepath.Join(dir, "keys.yaml"), "--audit-log", filepath.Join(dir, "audit.log")}, args...)
	code, stdout, stderr := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("keys create %v: exit %d: %s", args, code, stderr)
	}
	key := strings.TrimSpace(stdout)
	if !strings.HasPrefix(key, keys.Prefix) || !strings.Contains(stderr, "only time it is shown") {
		t.Fatalf("keys create printed %q / %q", stdout, stderr)
	}
	return key
}

// startAuthServer starts serve with a keys file of one key per role and
// extra flags.
func startAuthServer(t *testing.T, extra ...string) *authServer {
	t.Helper()
	dir := t.TempDir()
	keys := map[string]string{
		"decider":  createKey(t, dir, "--name", "decider", "--scope", "decide"),
		"ingest":   createKey(t, dir, "--name", "ingest", "--scope", "events"),
		"crm":      createKey(t, dir, "--name", "crm", "--scope", "profiles"),
		"ops":      createKey(t, dir, "--name", "ops", "--scope", "admin"),
		"website":  createKey(t, dir, "--name", "website", "--scope", "decide,events", "--public", "--origin", "https://shop.example.com"),
		"throttle": createKey(t, dir, "--name", "throttle", "--scope", "decide", "--rate", "5", "--burst", "5"),
		// A public key whose clients may make 3 requests in 300 s.
		"widget": createKey(t, dir, "--name", "widget", "--scope", "decide,events", "--public", "--client-rate", "0.01", "--client-burst", "3"),
	}
	keysFile, err := os.ReadFile(filepath.Join(dir, "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(string(keysFile), k) {
			t.Fatal("the keys file holds a key in clear")
		}
	}
	s := startServerIn(t, ".", append([]string{"--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--catalog", "testdata/catalog.yaml",
		"--keys", filepath.Join(dir, "keys.yaml"), "--token-secret", tokenSecret, "--client-ip-header", "X-Forwarded-For"}, extra...)...)
	return &authServer{server: s, keys: keys}
}

// do sends a request with the named key ("" for none) and extra headers.
func (s *authServer) do(method, path, key, body string, header ...string) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+s.keys[key])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAuthScopes(t *testing.T) {
	s := startAuthServer(t)
	decide := `{"customer_id":"c-1","channel":"web"}`
	event := `{"customer_id":"c-1","type":"support_call","channel":"call_center"}`
	profile := `{"features":{"tier":"gold"}}`
	routes := []struct {
		method, path, body string
		allowed            string // the one non-public key with the scope
	}{
		{"POST", "/v1/decide", decide, "decider"},
		{"POST", "/v1/events", event, "ingest"},
		{"PUT", "/v1/customers/c-1", profile, "crm"},
		{"GET", "/v1/customers/c-1", "", "crm"},
		{"POST", "/v1/customers/c-1/merge", `{"from":"anon-1"}`, "crm"},
		{"GET", "/v1/stats", "", "ops"},
		{"GET", "/metrics", "", "ops"},
	}
	for _, r := range routes {
		for _, key := range []string{"decider", "ingest", "crm", "ops"} {
			status, _, body := s.do(r.method, r.path, key, r.body)
			switch {
			case key == r.allowed && status >= 300:
				t.Errorf("%s %s with %s: %d %s, want success", r.method, r.path, key, status, body)
			case key != r.allowed && (status != 403 || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, "scope")):
				t.Errorf("%s %s with %s: %d %s, want 403 naming the scope", r.method, r.path, key, status, body)
			}
		}
		status, h, body := s.do(r.method, r.path, "", r.body)
		if status != 401 || !strings.Contains(body, `"code":"unauthorized"`) || h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s without a key: %d %s, want 401 with WWW-Authenticate", r.method, r.path, status, body)
		}
		status, _, _ = s.do(r.method, r.path, "", r.body, "Authorization", "Bearer nbk_forged")
		if status != 401 {
			t.Errorf("%s %s with a forged key: %d, want 401", r.method, r.path, status)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _, _ := s.do("GET", path, "", ""); status != 200 {
			t.Errorf("GET %s without a key: %d, want 200", path, status)
		}
	}
	if logs := s.logs.String(); strings.Contains(logs, s.keys["decider"]) || strings.Contains(logs, tokenSecret) {
		t.Error("a key or the token secret appears in the logs")
	}
}

func TestAuthPublicKeyTokens(t *testing.T) {
	s := startAuthServer(t)
	// The customer is a VIP: a proven request sees it, an anonymous one not.
	if status, _, body := s.do("PUT", "/v1/customers/vera", "crm", `{"features":{"tier":"gold","lifetime_value":5000}}`); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	good := keys.CustomerToken([]byte(tokenSecret), "vera")
	forged := keys.CustomerToken([]byte("another-secret-0123456789"), "vera")
	otherCustomer := keys.CustomerToken([]byte(tokenSecret), "mallory")
	decide := func(token string) decideResponse {
		t.Helper()
		status, _, body := s.do("POST", "/v1/decide", "website", fmt.Sprintf(`{"customer_id":"vera","channel":"web","customer_token":%q}`, token))
		if status != 200 {
			t.Fatalf("decide with token %q: %d %s", token, status, body)
		}
		var d decideResponse
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide(good); d.CustomerID != "vera" || !slices.Contains(d.offerIDs(), "vip-lounge") {
		t.Errorf("valid token: customer %q offers %v, want vera's decision (the VIP lounge)", d.CustomerID, d.offerIDs())
	}
	for name, token := range map[string]string{"forged": forged, "another customer's": otherCustomer, "missing": "", "garbage": "zz"} {
		if d := decide(token); d.CustomerID != "" || slices.Contains(d.offerIDs(), "vip-lounge") {
			t.Errorf("%s token: customer %q offers %v, want an anonymous decision", name, d.CustomerID, d.offerIDs())
		}
	}
	// Explanations show the catalog's offers and rules: not to browsers.
	status, _, body := s.do("POST", "/v1/decide", "website", fmt.Sprintf(`{"customer_id":"vera","channel":"web","customer_token":%q,"explain":true}`, good))
	if status != 403 || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, "explain") {
		t.Errorf("explain with a public key: %d %s, want 403 naming explain", status, body)
	}
	if status, _, body := s.do("POST", "/v1/decide", "decider", `{"customer_id":"vera","channel":"web","explain":true}`); status != 200 || !strings.Contains(body, `"explain":[`) {
		t.Errorf("explain with a server-side key: %d %.200s, want 200 with the explanation", status, body)
	}
	// Events: only for proven customers.
	if status, _, body := s.do("POST", "/v1/events", "website", fmt.Sprintf(`{"customer_id":"vera","type":"page_view","channel":"web","customer_token":%q}`, good)); status != 202 {
		t.Errorf("event with a valid token: %d %s", status, body)
	}
	status, _, body = s.do("POST", "/v1/events", "website", fmt.Sprintf(`{"events":[{"customer_id":"vera","type":"page_view","channel":"web","customer_token":%q},{"customer_id":"vera","type":"page_view","channel":"web","customer_token":%q}]}`, good, forged))
	if status != 403 || !strings.Contains(body, "events[1].customer_token") {
		t.Errorf("batch with a forged token: %d %s, want 403 naming events[1]", status, body)
	}
	// Public keys never reach profiles or admin routes.
	if status, _, _ := s.do("GET", "/v1/customers/vera", "website", ""); status != 403 {
		t.Errorf("public key on profiles: %d, want 403", status)
	}
}

func TestAuthCORS(t *testing.T) {
	s := startAuthServer(t)
	preflight := func(origin, path string) (int, http.Header) {
		status, h, _ := s.do("OPTIONS", path, "", "", "Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		return status, h
	}
	status, h := preflight("https://shop.example.com", "/v1/decide")
	if status != 204 || h.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from the shop: %d %v", status, h)
	}
	for _, tt := range []struct{ origin, path string }{{"https://evil.example", "/v1/decide"}, {"https://shop.example.com", "/v1/customers/x"}, {"", "/v1/decide"}} {
		if status, h := preflight(tt.origin, tt.path); status != 403 || h.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %s %s: %d %v, want 403 without CORS headers", tt.origin, tt.path, status, h)
		}
	}
	status, h, _ = s.do("POST", "/v1/decide", "website", `{"customer_id":"x","channel":"web"}`, "Origin", "https://shop.example.com")
	if status != 200 || h.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || h.Get("Vary") == "" {
		t.Errorf("decide from the shop: %d %v", status, h)
	}
	if status, _, body := s.do("POST", "/v1/decide", "website", `{"customer_id":"x","channel":"web"}`, "Origin", "https://evil.example"); status != 403 || !strings.Contains(body, "origin") {
		t.Errorf("decide from another origin: %d %s, want 403", status, body)
	}
}

func TestAuthRateLimit(t *testing.T) {
	s := startAuthServer(t)
	var mu sync.Mutex
	counts := map[int]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			status, h, _ := s.do("POST", "/v1/decide", "throttle", `{"customer_id":"c","channel":"web"}`)
			mu.Lock()
			defer mu.Unlock()
			counts[status]++
			if status == 429 {
				retryAfter = h.Get("Retry-After")
			}
		})
	}
	wg.Wait()
	if counts[200] < 5 || counts[200] > 7 || counts[429] < 33 || retryAfter == "" {
		t.Errorf("a burst of 40 at 5/s (burst 5): %v, Retry-After %q; want about 5 answered, the rest 429 with Retry-After", counts, retryAfter)
	}
	// Other keys are not limited by it.
	if status, _, _ := s.do("POST", "/v1/decide", "decider", `{"customer_id":"c","channel":"web"}`); status != 200 {
		t.Errorf("another key after the burst: %d", status)
	}
	status, _, metrics := s.do("GET", "/metrics", "ops", "")
	if status != 200 || !strings.Contains(metrics, "nextbest_requests_rate_limited_total") {
		t.Errorf("metrics: %d, rate-limited counter missing", status)
	}
}

func TestAuthRequiredToServe(t *testing.T) {
	code, _, stderr := runBinary(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", "testdata/catalog.yaml")
	if code != 2 || !strings.Contains(stderr, "--insecure-no-auth") || !strings.Contains(stderr, "keys create") {
		t.Errorf("serve without keys: exit %d, %s; want 2 explaining keys and --insecure-no-auth", code, stderr)
	}
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", "testdata/catalog.yaml", "--insecure-no-auth")
	if !strings.Contains(s.logs.String(), "access control is OFF") {
		t.Errorf("--insecure-no-auth without a warning:\n%s", s.logs.String())
	}
}

// TestKeysAudit: key management lands in the audit log serve shares.
func TestKeysAudit(t *testing.T) {
	dir := t.TempDir()
	createKey(t, dir, "--name", "a", "--scope", "decide")
	if code, _, stderr := runBinary(t, "keys", "revoke", "--keys", filepath.Join(dir, "keys.yaml"), "--audit-log", filepath.Join(dir, "audit.log"), "a"); code != 0 {
		t.Fatalf("revoke: %d %s", code, stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e struct{ Action, Actor, Subject string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.Subject != "a" || e.Actor != "cli" {
			t.Errorf("audit line %q: want subject a by cli", line)
		}
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "key.create,key.revoke" {
		t.Errorf("audit actions %v, want key.create, key.revoke", actions)
	}
}
