//go:build !race

package nextbest

import (
	"context"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// TestDecideAllocs pins the allocations of one decision made through the
// service, without a transport (httpapi's TestDecideAllocs pins them
// through the real handler). Raise a number only with a reason; lower it
// when you can.
func TestDecideAllocs(t *testing.T) {
	tests := []struct {
		name     string
		cached   bool
		learning bool
		req      Request
		want     float64
	}{
		{"cache hit", true, false, Request{CustomerID: "carter", Channel: "web", Limit: 1}, 0},
		{"cache hit, limit", true, false, Request{CustomerID: "carter", Channel: "web", Limit: 3}, 0},
		{"cache hit, placement", true, false, Request{CustomerID: "carter", Channel: "web", Placement: "home_hero", Limit: 1}, 0},
		{"cache hit, explain", true, false, Request{CustomerID: "carter", Channel: "web", Limit: 1, Explain: true}, 0},
		{"cache hit, learning and statistics", true, true, Request{CustomerID: "carter", Channel: "web", Limit: 3}, 0},
		// A miss pays for the store deadline (context, timer) and for an id
		// string the store may keep, as through the handler.
		{"store without cache", false, false, Request{CustomerID: "carter", Channel: "web", Limit: 1}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestService(t, tt.cached, func(o *Options) {
				if tt.learning {
					o.Stats = &fakeStats{learned: featurestore.NewLearnTable(map[featurestore.StatKey]featurestore.Counts{
						{Offer: "cart-bundle", Channel: "web", Key: "cart_abandoner"}: {Impressions: 40, Conversions: 3},
					})}
				}
			})
			ctx := context.Background()
			var d Decision
			if err := s.Decide(ctx, &tt.req, &d); err != nil {
				t.Fatal(err)
			}
			got := testing.AllocsPerRun(1000, func() {
				d.Reset()
				if err := s.Decide(ctx, &tt.req, &d); err != nil {
					t.Fatal(err)
				}
			})
			if len(d.Result.Offers) == 0 {
				t.Fatalf("no offer decided: the test measures a fallback")
			}
			if got != tt.want {
				t.Errorf("allocs per decision: got %v, want %v", got, tt.want)
			}
		})
	}
}
