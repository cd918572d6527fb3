//go:build !race

package httpapi

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/keys"
)

// TestDecideAllocsAuth pins the allocations of access control on one
// decision through the real handler: none for a server-side key (digest,
// scope, rate); for a public key, nothing for a client already seen (its
// bucket is looked up without a copy of its id) but the customer token's
// HMAC.
func TestDecideAllocsAuth(t *testing.T) {
	token := keys.CustomerToken([]byte(testTokenSecret), "carter")
	tests := []struct {
		name, key, body string
		want            float64
	}{
		{"server key with a rate", "nbk_srv", `{"customer_id":"carter","channel":"web"}`, 0},
		{"public key, anonymous", "nbk_web", `{"customer_id":"carter","channel":"web"}`, 0},
		// The token's HMAC (hmac.New, its hashes and pads): the client
		// limit adds nothing to it.
		{"public key, proven customer", "nbk_web", `{"customer_id":"carter","channel":"web","customer_token":"` + token + `"}`, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "keys:\n" +
				"  - {name: web, hash: " + keys.Hash("nbk_web") + ", scopes: [decide], public: true, rate: 1e9, burst: 1000000000, client_rate: 1e9, client_burst: 1000000000}\n" +
				"  - {name: srv, hash: " + keys.Hash("nbk_srv") + ", scopes: [decide], rate: 1e9, burst: 1000000000}\n"
			kr, err := keys.Parse("keys.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			fake := newFakeStore()
			s := newTestServer(t, &cachingStore{fakeStore: fake}, func(o *testOptions) { o.Keys, o.TokenSecret = kr, []byte(testTokenSecret) })
			seed(t, s, fake, "carter", nil, featurestore.Event{Type: "cart_add"})
			h := s.Handler()
			var req fasthttp.Request
			decideCtx(tt.body).Request.CopyTo(&req)
			req.Header.Set("Authorization", "Bearer "+tt.key)
			ctx := new(fasthttp.RequestCtx)
			ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 40000}, nil)
			h(ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			got := testing.AllocsPerRun(1000, func() { h(ctx) })
			t.Logf("%s: %v allocs", tt.name, got)
			if got != tt.want {
				t.Errorf("allocs per decision: got %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkDecideHandlerPublic is BenchmarkDecideHandler with a public
// key from a client already seen: the key's digest and scope, the
// client's bucket (LRU lookup) and the key's.
func BenchmarkDecideHandlerPublic(b *testing.B) {
	kr, err := keys.Parse("keys.yaml", []byte("keys:\n  - {name: web, hash: "+keys.Hash("nbk_web")+", scopes: [decide], public: true, rate: 1e9, burst: 1000000000, client_rate: 1e9, client_burst: 1000000000}\n"))
	if err != nil {
		b.Fatal(err)
	}
	benchDecideHandler(b, func(o *testOptions) { o.Keys, o.TokenSecret = kr, []byte(testTokenSecret) }, "Authorization", "Bearer nbk_web")
}
