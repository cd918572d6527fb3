package httpapi

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/keys"
)

const testTokenSecret = "0123456789abcdef-test-secret"

// publicKeyServer returns a server with a public key "nbk_web" whose
// keys-file entry ends with limits, a server-side key "nbk_srv"
// (decide, events), and edit applied to its options.
func publicKeyServer(t testing.TB, limits string, edit func(*testOptions)) *Server {
	t.Helper()
	doc := "keys:\n" +
		"  - {name: web, hash: " + keys.Hash("nbk_web") + ", scopes: [decide, events], public: true" + limits + "}\n" +
		"  - {name: srv, hash: " + keys.Hash("nbk_srv") + ", scopes: [decide, events]}\n"
	kr, err := keys.Parse("keys.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Keys, o.TokenSecret = kr, []byte(testTokenSecret)
		// These tests count rate-limit refusals exactly; admission control
		// would shed a request that waited its queue budget (5 ms for a
		// decision) between doFrom's Init and the handler, as a GC pause
		// under -race on a loaded machine did once in CI (a 200 degraded
		// "overload" where a 429 was due). Admission has its own tests.
		o.Admission.Off = true
		if edit != nil {
			edit(o)
		}
	})
}

// doFrom runs one request through the server's real handler as sent
// from the address remote, with key.
func doFrom(s *Server, remote, key, path, body string, header ...string) response {
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI(path)
	req.SetBodyString(body)
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(remote), Port: 40000}, nil)
	s.Handler()(&ctx)
	h := &fasthttp.ResponseHeader{}
	ctx.Response.Header.CopyTo(h)
	return response{status: ctx.Response.StatusCode(), body: string(ctx.Response.Body()), header: h}
}

// limitStep is one request of a sequence run against one server.
type limitStep struct {
	name       string
	from, key  string
	path, body string
	header     []string
	status     int
	want       string // in the error message, for a refusal
	repeat     int    // times the request is sent; 0: once
}

func runLimitSteps(t *testing.T, s *Server, steps []limitStep) {
	t.Helper()
	for _, st := range steps {
		for i := range max(1, st.repeat) {
			r := doFrom(s, st.from, st.key, st.path, st.body, st.header...)
			if r.status != st.status {
				t.Fatalf("%s (#%d): status %d %s, want %d", st.name, i, r.status, r.body, st.status)
			}
			if st.status == 429 {
				if _, msg := errorBody(t, r); !strings.Contains(msg, st.want) {
					t.Fatalf("%s: message %q, want it to contain %q", st.name, msg, st.want)
				}
				if r.header.Peek("Retry-After") == nil {
					t.Fatalf("%s: 429 without Retry-After", st.name)
				}
			}
		}
	}
}

func decideBody(customer, token string) string {
	return fmt.Sprintf(`{"customer_id":%q,"channel":"web","customer_token":%q}`, customer, token)
}

// TestPublicKeyClientLimits: a public key is limited per client and per
// key; a client over its rate is refused without spending the key's, so
// one visitor's burst leaves the site's other visitors served.
func TestPublicKeyClientLimits(t *testing.T) {
	// Rates so low that nothing refills during the test: every count below
	// is exact.
	s := publicKeyServer(t, ", rate: 0.001, burst: 11, client_rate: 0.001, client_burst: 3", nil)
	vera := keys.CustomerToken([]byte(testTokenSecret), "vera")
	anon := decideBody("x", "")
	event := `{"customer_id":"vera","type":"purchase","properties":{"amount":1},"customer_token":"` + vera + `"}`
	runLimitSteps(t, s, []limitStep{
		{name: "visitor A within its burst", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: anon, status: 200, repeat: 3},
		{name: "visitor A over its burst", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: anon, status: 429, want: "too many requests from this client", repeat: 20},
		{name: "visitor A's bad requests count too", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: `{"channel":`, status: 429, want: "this client"},
		{name: "visitor A's events too", from: "192.0.2.1", key: "nbk_web", path: "/v1/events", body: `{"customer_id":"x","type":"purchase"}`, status: 429, want: "this client"},
		// The key spent 3 of its 11: A's refusals did not spend it.
		{name: "visitor B is served", from: "192.0.2.2", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		// A signed-in customer is its own client, wherever it comes from,
		// over decisions and events alike.
		{name: "vera from A's address", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: decideBody("vera", vera), status: 200, repeat: 2},
		{name: "vera's event", from: "192.0.2.9", key: "nbk_web", path: "/v1/events", body: event, status: 202},
		{name: "vera over her burst", from: "192.0.2.3", key: "nbk_web", path: "/v1/events", body: event, status: 429, want: "this client"},
		// An invalid token is an anonymous visitor: its address.
		{name: "a forged token is visitor A", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: decideBody("vera", strings.Repeat("0", 64)), status: 429, want: "this client"},
		// IPv6 clients are counted by /64.
		{name: "one /64", from: "2001:db8:1:1::1", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		{name: "the same /64", from: "2001:db8:1:1::2", key: "nbk_web", path: "/v1/decide", body: anon, status: 200, repeat: 2},
		{name: "the same /64 over its burst", from: "2001:db8:1:1:ffff::3", key: "nbk_web", path: "/v1/decide", body: anon, status: 429, want: "this client"},
		// 3 + 1 + 3 + 3 = 10 of the key's 11 are spent.
		{name: "the key's last request", from: "192.0.2.4", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		{name: "the key is over its rate", from: "192.0.2.5", key: "nbk_web", path: "/v1/decide", body: anon, status: 429, want: `key "web" is over its rate`},
		// Server-side keys are not limited per client.
		{name: "a server key", from: "192.0.2.1", key: "nbk_srv", path: "/v1/decide", body: anon, status: 200, repeat: 10},
	})
	var m strings.Builder
	s.WriteMetrics(&m)
	for _, want := range []string{
		"nextbest_requests_client_rate_limited_total 25",
		"nextbest_requests_rate_limited_total 26",
		"nextbest_public_client_buckets 6", // A, B, vera, the /64, 192.0.2.4 and .5
		"nextbest_public_client_buckets_evicted_total 0",
	} {
		if !strings.Contains(m.String(), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestPublicKeyClientBuckets: the buckets are bounded; a client forgotten
// comes back with a full bucket, and the evictions are counted.
func TestPublicKeyClientBuckets(t *testing.T) {
	s := publicKeyServer(t, ", client_rate: 0.001, client_burst: 1, client_buckets: 2", nil)
	anon := decideBody("x", "")
	runLimitSteps(t, s, []limitStep{
		{name: "A", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		{name: "A over", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: anon, status: 429, want: "this client"},
		{name: "B", from: "192.0.2.2", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		{name: "C evicts A", from: "192.0.2.3", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		{name: "A again, a new bucket", from: "192.0.2.1", key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
		{name: "C still known", from: "192.0.2.3", key: "nbk_web", path: "/v1/decide", body: anon, status: 429, want: "this client"},
	})
	var m strings.Builder
	s.WriteMetrics(&m)
	for _, want := range []string{"nextbest_public_client_buckets 2\n", "nextbest_public_client_buckets_evicted_total 2\n"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestPublicKeyClientIPHeader: behind a proxy, the client is the address
// the proxy appended last, not the proxy's; without the option the header
// is not trusted.
func TestPublicKeyClientIPHeader(t *testing.T) {
	const proxy = "10.0.0.1"
	anon := decideBody("x", "")
	tests := []struct {
		name   string
		header string // Options.ClientIPHeader
		steps  []limitStep
	}{
		{"X-Forwarded-For", "X-Forwarded-For", []limitStep{
			{name: "visitor 1", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Forwarded-For", "198.51.100.7, 192.0.2.1"}, status: 200},
			{name: "visitor 1 over", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Forwarded-For", "203.0.113.9,192.0.2.1"}, status: 429, want: "this client"},
			{name: "visitor 2", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Forwarded-For", "192.0.2.1, 192.0.2.2"}, status: 200},
			{name: "no header: the proxy", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, status: 200},
			{name: "a bad header: the proxy", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Forwarded-For", "unknown"}, status: 429, want: "this client"},
		}},
		{"X-Real-IP", "X-Real-IP", []limitStep{
			{name: "visitor 1", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Real-IP", "192.0.2.1"}, status: 200},
			{name: "visitor 2", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Real-IP", "192.0.2.2"}, status: 200},
			{name: "visitor 2 with a port", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Real-IP", "192.0.2.2:51234"}, status: 429, want: "this client"},
			{name: "visitor 3 on IPv6 with a port", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Real-IP", "[2001:db8::3]:443"}, status: 200},
			{name: "visitor 3's /64", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Real-IP", "2001:db8::9"}, status: 429, want: "this client"},
		}},
		{"not trusted", "", []limitStep{
			{name: "visitor 1", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Forwarded-For", "192.0.2.1"}, status: 200},
			{name: "a spoofed header does not help", from: proxy, key: "nbk_web", path: "/v1/decide", body: anon, header: []string{"X-Forwarded-For", "192.0.2.2"}, status: 429, want: "this client"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := publicKeyServer(t, ", client_rate: 0.001, client_burst: 1", func(o *testOptions) { o.ClientIPHeader = tt.header })
			runLimitSteps(t, s, tt.steps)
		})
	}
}

// BenchmarkAdmitPublic measures a public key's limits for a client
// already seen, an address and a customer: the id, the LRU lookup and
// both buckets. BenchmarkKeyWait is the key's bucket alone, what a
// server-side key pays.
func BenchmarkAdmitPublic(b *testing.B) {
	s := publicKeyServer(b, ", rate: 1e9, burst: 1000000000, client_rate: 1e9, client_burst: 1000000000", nil)
	key := s.keys.Lookup([]byte("nbk_web"))
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 40000}, nil)
	for _, customer := range []string{"", "customer-00001234"} {
		b.Run(map[string]string{"": "address", "customer-00001234": "customer"}[customer], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !s.admitPublic(&ctx, key, customer) {
					b.Fatal("refused")
				}
			}
		})
	}
}

func BenchmarkKeyWait(b *testing.B) {
	s := publicKeyServer(b, ", rate: 1e9, burst: 1000000000", nil)
	key := s.keys.Lookup([]byte("nbk_web"))
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := key.Allow(time.Now()); !ok {
			b.Fatal("refused")
		}
	}
}
