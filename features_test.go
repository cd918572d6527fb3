package nextbest

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// featuresCatalog has a where count, a top and a distinct feature, and
// an offer whose rule reads them.
const featuresCatalog = `
channels: [web, app]
events:
  product_view: {properties: {category: string}}
features:
  outdoor_views_30d: {type: number, from: {event: product_view, op: count, window: 30d, where: 'event.category == "outdoor"'}}
  favorite_category: {type: string, default: "none", from: {event: product_view, op: top, field: category, window: 30d}}
  channels_used_30d: {type: number, from: {event: product_view, op: distinct, field: channel, window: 30d}}
offers:
  - id: tent-sale
    channels: [web]
    eligible: customer.favorite_category == "outdoor" && customer.outdoor_views_30d >= 2 && customer.channels_used_30d >= 2
    content: {web: {headline: "Tents"}}
`

// TestDecideOnEventFeatures: events posted to the service feed the where
// count, the top and the distinct features, and a decision reads them, on
// a store read and on the cache's packed form alike.
func TestDecideOnEventFeatures(t *testing.T) {
	cat, err := rules.Load("features.yaml", []byte(featuresCatalog))
	if err != nil {
		t.Fatal(err)
	}
	for _, cached := range []bool{false, true} {
		var p atomic.Pointer[rules.Catalog]
		p.Store(cat)
		store := &fakeStore{recs: map[string]*featurestore.Record{}, schema: cat.Schema}
		opts := Options{Catalog: &p, Store: store, Now: func() time.Time { return testNow }}
		if cached {
			opts.Store, opts.Cache = cachingStore{store}, cachingStore{store}
		}
		s, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		view := func(id, ch, cat string, ago time.Duration) featurestore.Event {
			return featurestore.Event{CustomerID: id, Type: "product_view", Channel: ch, Time: testNow.Add(-ago), Properties: map[string]any{"category": cat}}
		}
		events := []featurestore.Event{
			view("hiker", "web", "outdoor", 3*24*time.Hour), view("hiker", "app", "outdoor", time.Hour), view("hiker", "web", "shoes", time.Minute),
			// Outdoor views, but long ago, and shoes since: no tents.
			view("runner", "web", "outdoor", 40*24*time.Hour), view("runner", "app", "outdoor", 35*24*time.Hour),
			view("runner", "web", "shoes", time.Hour), view("runner", "app", "shoes", time.Minute),
		}
		if _, err := s.ApplyEvents(cat, events, testNow, true); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			customer string
			want     []string
			features map[string]featurestore.Value
		}{
			{"hiker", []string{"tent-sale"}, map[string]featurestore.Value{
				"outdoor_views_30d": featurestore.Number(2), "favorite_category": featurestore.String("outdoor"), "channels_used_30d": featurestore.Number(2)}},
			{"runner", nil, map[string]featurestore.Value{
				"outdoor_views_30d": featurestore.Number(0), "favorite_category": featurestore.String("shoes"), "channels_used_30d": featurestore.Number(2)}},
			{"stranger", nil, map[string]featurestore.Value{
				"outdoor_views_30d": featurestore.Number(0), "favorite_category": featurestore.String("none"), "channels_used_30d": featurestore.Number(0)}},
		} {
			var d Decision
			if err := s.Decide(context.Background(), &Request{CustomerID: tt.customer, Channel: "web", Limit: 1}, &d); err != nil {
				t.Fatal(err)
			}
			if got := offerIDs(&d); !slices.Equal(got, tt.want) {
				t.Errorf("cached %v, %s: offers %v, want %v", cached, tt.customer, got, tt.want)
			}
			var f featurestore.Vector
			if r := store.recs[tt.customer]; r != nil {
				f = r.Features(cat.Schema, testNow, nil)
			} else {
				f = cat.Schema.Defaults(nil)
			}
			for name, want := range tt.features {
				ft, _ := cat.Schema.Lookup(name)
				if !f[ft.Index].Equal(want) {
					t.Errorf("%s: %s = %v, want %v", tt.customer, name, f[ft.Index], want)
				}
			}
		}
	}
}
