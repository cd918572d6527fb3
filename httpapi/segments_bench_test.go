//go:build !race

package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/outcomes"
)

// BenchmarkDecideHandlerSegments is a cached decision with learning,
// statistics and reach on, as nextbest serve runs, for a customer in
// none of the catalog's segments (carter) and for one in two of them
// (vera: vip and shopper), whose decision also counts in those segments'
// cells and reach sketches (docs/benchmarks.md, "Issue 14: segment=
// filter").
func BenchmarkDecideHandlerSegments(b *testing.B) {
	for _, customer := range []string{"carter", "vera"} {
		b.Run(customer, func(b *testing.B) {
			rec := outcomes.New(newReachStats(), outcomes.Options{})
			ctx, stop := context.WithCancel(context.Background())
			go rec.Run(ctx) // flushing and reloading, as nextbest serve runs it
			defer stop()
			fake := newFakeStore()
			s := newTestServer(b, &cachingStore{fakeStore: fake}, func(o *testOptions) { o.Stats = rec })
			schema := s.svc.Catalog().Schema
			carter := &featurestore.Record{}
			carter.Apply(schema, &featurestore.Event{Type: "cart_add", Time: testNow}, testNow)
			vera := &featurestore.Record{}
			vera.SetAttr("tier", featurestore.String("gold"))
			vera.Apply(schema, &featurestore.Event{Type: "purchase", Time: testNow}, testNow)
			fake.recs["carter"], fake.recs["vera"] = carter, vera
			h := s.Handler()
			req := decideCtx(`{"customer_id":"` + customer + `","channel":"web","placement":"home","limit":3}`)
			h(req)
			if req.Response.StatusCode() != 200 {
				b.Fatalf("status %d: %s", req.Response.StatusCode(), req.Response.Body())
			}
			b.ReportAllocs()
			for b.Loop() {
				again(h, req)
			}
			if body := req.Response.Body(); strings.Contains(string(body), `"degraded":true`) {
				b.Fatalf("last decision degraded: %s", body)
			}
		})
	}
}
