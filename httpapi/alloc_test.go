//go:build !race

package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/internal/keys"
)

// decideCtx returns a request context for a decide body, reusable across
// calls of the handler.
func decideCtx(body string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/v1/decide")
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, nil, nil)
	return ctx
}

// again serves ctx once more as fasthttp serves the next request of a
// connection: read just now, so the time a test spends between calls does
// not count as queueing for admission control (it would shed the decision
// and the test would measure the fallback).
func again(h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	ctx.Init2(ctx.Conn(), discardLogger, true)
	h(ctx)
}

var discardLogger = log.New(io.Discard, "", 0)

// TestDecideAllocs pins the allocations of one decision through the real
// handler. Raise a number only with a reason; lower it when you can.
func TestDecideAllocs(t *testing.T) {
	tests := []struct {
		name   string
		cached bool // the store has an in-memory tier the handler asks first
		body   string
		want   float64
	}{
		{"cache hit", true, `{"customer_id":"carter","channel":"web"}`, 0},
		{"cache hit, limit and placement", true, `{"customer_id":"carter","channel":"app","placement":"home","limit":3}`, 0},
		{"cache hit, explain", true, `{"customer_id":"carter","channel":"web","explain":true}`, 0},
		// The context map: the map, its key and value strings, the boxed value.
		{"cache hit, context", true, `{"customer_id":"carter","channel":"web","placement":"checkout","context":{"page":"checkout"}}`, 5},
		// A miss pays for the store deadline (context, timer) and for an id
		// string the store may keep.
		{"store without cache", false, `{"customer_id":"carter","channel":"web"}`, 5},
		{"unknown customer", true, `{"customer_id":"anon","channel":"web"}`, 5},
		// The store fails: a degraded answer, counted by cause.
		{"store error, degraded", false, `{"customer_id":"carter","channel":"web"}`, 5},
	}
	// With learning on: the learned statistics are read and the decision
	// counted in the recorder, its customer in the reach sketches, still
	// without allocating.
	tests = append(tests, struct {
		name   string
		cached bool
		body   string
		want   float64
	}{"cache hit, learning and statistics", true, `{"customer_id":"carter","channel":"web"}`, 0})
	// A customer in segments: the decision counts in each segment's cells
	// and reach too, and their record already holds those segments for
	// the channel (the first decision wrote them), so nothing is written.
	tests = append(tests, struct {
		name   string
		cached bool
		body   string
		want   float64
	}{"cache hit, in segments, learning and statistics", true, `{"customer_id":"vera","channel":"web"}`, 0})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeStore()
			var store nextbest.RecordStore = fake
			if tt.cached {
				store = &cachingStore{fakeStore: fake}
			}
			s := newTestServer(t, store, func(o *testOptions) {
				if strings.Contains(tt.name, "learning") {
					rec := outcomes.New(newReachStats(), outcomes.Options{FlushEvery: time.Hour, RefreshEvery: time.Hour}) // and reach
					o.Stats = rec
				}
			})
			seed(t, s, fake, "carter", nil, featurestore.Event{Type: "cart_add"})
			seed(t, s, fake, "vera", map[string]featurestore.Value{"tier": featurestore.String("gold")}, featurestore.Event{Type: "purchase"})
			if strings.Contains(tt.name, "degraded") {
				fake.err = errors.New("store down")
			}
			h := s.Handler()
			ctx := decideCtx(tt.body)
			h(ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			if degraded := bytes.Contains(ctx.Response.Body(), []byte(`"degraded":true,"reason":"error"`)); degraded != strings.Contains(tt.name, "degraded") {
				t.Fatalf("degraded %v: %s", degraded, ctx.Response.Body())
			}
			got := testing.AllocsPerRun(1000, func() { again(h, ctx) })
			if strings.Contains(tt.name, "in segments") {
				ex := decideCtx(`{"customer_id":"vera","channel":"web","explain":true}`)
				h(ex)
				fake.mu.Lock()
				writes := fake.mutates
				fake.mu.Unlock()
				if !bytes.Contains(ex.Response.Body(), []byte(`"segments":["vip","shopper"]`)) || writes != 1 {
					t.Fatalf("%d writes, decision %s; want one write of the segments vip and shopper", writes, ex.Response.Body())
				}
			}
			t.Logf("%s: %v allocs", tt.name, got)
			if body := ctx.Response.Body(); ctx.Response.StatusCode() != 200 || strings.Contains(string(body), `"reason":"overload"`) {
				t.Fatalf("last decision: %d %s, want 200 and not shed", ctx.Response.StatusCode(), body)
			}
			if got != tt.want {
				t.Errorf("allocs per decision: got %v, want %v", got, tt.want)
			}
		})
	}
}

// benchDecideHandler measures the decide handler end to end (parse, cache
// hit, decide, encode) on a server made with edit, for a request prepared
// by header.
func benchDecideHandler(b *testing.B, edit func(*testOptions), header ...string) {
	fake := newFakeStore()
	s := newTestServer(b, &cachingStore{fakeStore: fake}, edit)
	r := &featurestore.Record{}
	r.Apply(s.svc.Catalog().Schema, &featurestore.Event{Type: "cart_add", Time: testNow}, testNow)
	fake.recs["carter"] = r
	h := s.Handler()
	ctx := decideCtx(`{"customer_id":"carter","channel":"web","placement":"home","limit":3}`)
	for i := 0; i+1 < len(header); i += 2 {
		ctx.Request.Header.Set(header[i], header[i+1])
	}
	h(ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	b.ReportAllocs()
	for b.Loop() {
		again(h, ctx)
	}
	if body := ctx.Response.Body(); strings.Contains(string(body), `"degraded":true`) {
		b.Fatalf("last decision degraded: %s", body)
	}
}

func BenchmarkDecideHandler(b *testing.B) { benchDecideHandler(b, nil) }

// BenchmarkDecideHandlerLearning is BenchmarkDecideHandler with learning
// and statistics on, as nextbest serve runs.
func BenchmarkDecideHandlerLearning(b *testing.B) {
	rec := outcomes.New(newFakeStats(), outcomes.Options{})
	ctx, stop := context.WithCancel(context.Background())
	go rec.Run(ctx) // flushing and reloading, as nextbest serve runs it
	defer stop()
	benchDecideHandler(b, func(o *testOptions) { o.Stats = rec })
}

// BenchmarkDecideHandlerAuth is BenchmarkDecideHandler with access
// control on: a keyring of five keys, the caller's found by constant-time
// comparison of SHA-256 digests, scope checked, rate limit of the key.
func BenchmarkDecideHandlerAuth(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("keys:\n")
	for i := range 5 {
		fmt.Fprintf(&doc, "  - {name: k%d, hash: %q, scopes: [decide], rate: 1000000000, burst: 1000000000}\n", i, keys.Hash(fmt.Sprintf("nbk_key-%d", i)))
	}
	kr, err := keys.Parse("keys.yaml", []byte(doc.String()))
	if err != nil {
		b.Fatal(err)
	}
	benchDecideHandler(b, func(o *testOptions) { o.Keys = kr }, "Authorization", "Bearer nbk_key-3")
}

// TestDecideAllocsChannelPolicy pins the allocations of decisions on a
// channel with a policy (consent, contact limit, quiet hours in the
// customer's zone), answered or withheld: none, once the customer's zone
// is loaded.
func TestDecideAllocsChannelPolicy(t *testing.T) {
	s := channelsServer(t, newFakeStore(), true)
	h := s.Handler()
	for _, customer := range []string{"in", "out", "late", "limited"} {
		t.Run(customer, func(t *testing.T) {
			ctx := decideCtx(`{"customer_id":"` + customer + `","channel":"sms"}`)
			h(ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			got := testing.AllocsPerRun(1000, func() { again(h, ctx) })
			if body := ctx.Response.Body(); strings.Contains(string(body), `"reason":"overload"`) {
				t.Fatalf("last decision shed: %s", body)
			}
			if got != 0 {
				t.Errorf("allocs per decision: got %v, want 0", got)
			}
		})
	}
}

// TestDecideAllocsTemplates pins the allocations of decisions whose
// content has templates (issue 13), rendered for the customer into the
// pooled decision's buffers: none, once those have grown.
func TestDecideAllocsTemplates(t *testing.T) {
	s := templatesServer(t, newFakeStore(), true, true)
	h := s.Handler()
	tests := []struct {
		name, body string
		want       float64
	}{
		{"three offers, one template each, web", `{"customer_id":"ada","channel":"web","limit":3}`, 0},
		{"three offers, one template each, sms", `{"customer_id":"mallory","channel":"sms","limit":3}`, 0},
		{"a templated fallback", `{"customer_id":"browser","channel":"web"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := decideCtx(tt.body)
			h(ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			got := testing.AllocsPerRun(1000, func() { again(h, ctx) })
			if body := ctx.Response.Body(); strings.Contains(string(body), `"reason":"overload"`) || bytes.Contains(body, []byte("{{")) {
				t.Fatalf("last decision shed or not rendered: %s", body)
			}
			if got != tt.want {
				t.Errorf("allocs per decision: got %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkDecideTemplates measures the decide handler on a web decision
// of three offers (a cache hit, limit 3) with templates off (each
// template replaced by the text it renders) and on (one template per
// offer's content, rendered for the customer and escaped as HTML).
func BenchmarkDecideTemplates(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "templates=off"
		if on {
			name = "templates=on"
		}
		b.Run(name, func(b *testing.B) {
			h := templatesServer(b, newFakeStore(), true, on).Handler()
			ctx := decideCtx(`{"customer_id":"ada","channel":"web","limit":3}`)
			again(h, ctx)
			if body := ctx.Response.Body(); ctx.Response.StatusCode() != 200 || !bytes.Contains(body, []byte(`"Ada, join the club"`)) {
				b.Fatalf("status %d: %s", ctx.Response.StatusCode(), body)
			}
			b.ReportAllocs()
			for b.Loop() {
				again(h, ctx)
			}
			if body := ctx.Response.Body(); bytes.Contains(body, []byte(`"degraded":true`)) {
				b.Fatalf("last decision degraded: %s", body)
			}
		})
	}
}
