package rules_test

import (
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// TestWhere runs the compiled where filters of testdata/valid/events.yaml
// on events, through the feature schema as a store applies them.
func TestWhere(t *testing.T) {
	c, err := rules.LoadFile("testdata/valid/events.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Schema
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ev := func(typ, ch string, ago time.Duration, props map[string]any) featurestore.Event {
		return featurestore.Event{CustomerID: "c", Type: typ, Channel: ch, Time: now.Add(-ago), Properties: props}
	}
	tests := []struct {
		name   string
		events []featurestore.Event
		want   map[string]featurestore.Value
	}{
		{
			name: "category and stock",
			events: []featurestore.Event{
				ev("product_view", "web", time.Hour, map[string]any{"category": "outdoor", "in_stock": true, "sku": "tent", "price": 120.0}),
				ev("product_view", "web", time.Hour, map[string]any{"category": "camping", "in_stock": true, "sku": "stove", "price": 5.0}),
				ev("product_view", "app", time.Minute, map[string]any{"category": "outdoor", "in_stock": false, "sku": "boots", "price": 80.0}),
				ev("product_view", "web", 40*24*time.Hour, map[string]any{"category": "outdoor", "in_stock": true, "sku": "old"}),
			},
			want: map[string]featurestore.Value{
				"outdoor_views_30d": featurestore.Number(2), "outdoor_views": featurestore.Number(3),
				"last_outdoor_sku": featurestore.String("boots"), "last_app_view_at": featurestore.Time(now.Add(-time.Minute)),
				"favorite_category": featurestore.String("outdoor"), "favorite_sku_app": featurestore.String("boots"),
				"channels_used_30d": featurestore.Number(2), "categories_seen": featurestore.Number(1),
			},
		},
		{
			// A property absent or null fails a comparison that needs
			// it, as a missing value fails a rule: the event is not
			// counted, and nothing panics.
			name: "absent and null properties",
			events: []featurestore.Event{
				ev("product_view", "web", time.Hour, nil),
				ev("product_view", "web", time.Hour, map[string]any{"category": nil, "price": nil, "in_stock": nil}),
				ev("purchase", "web", time.Hour, map[string]any{"amount": 500.0}),
				ev("purchase", "web", time.Hour, map[string]any{"amount": 50.0}),
				ev("purchase", "web", time.Hour, nil),
			},
			want: map[string]featurestore.Value{
				"outdoor_views_30d": featurestore.Number(0), "outdoor_views": featurestore.Number(0), "categories_seen": featurestore.Number(0),
				"channels_used_30d": featurestore.Number(1), "pricey_spend": featurestore.Number(500),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &featurestore.Record{}
			for i := range tt.events {
				if err := s.CheckEvent(&tt.events[i]); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				r.Apply(s, &tt.events[i], now)
			}
			got := r.Features(s, now, nil)
			for name, want := range tt.want {
				f, _ := s.Lookup(name)
				if !got[f.Index].Equal(want) {
					t.Errorf("%s = %v, want %v", name, got[f.Index], want)
				}
			}
		})
	}
	// The declared types are checked at the door.
	bad := ev("product_view", "web", 0, map[string]any{"in_stock": "yes"})
	if err := s.CheckEvent(&bad); err == nil || err.Error() != `property "in_stock" (declared a bool for product_view events): got a string, want bool` {
		t.Errorf("CheckEvent of a mistyped declared property: %v", err)
	}
}

// BenchmarkWhere is the cost of one where filter on one event.
func BenchmarkWhere(b *testing.B) {
	c, err := rules.LoadFile("testdata/valid/events.yaml")
	if err != nil {
		b.Fatal(err)
	}
	f, _ := c.Schema.Lookup("outdoor_views")
	ev := featurestore.Event{Type: "product_view", Channel: "web", Properties: map[string]any{"category": "outdoor", "in_stock": true}}
	b.ReportAllocs()
	for b.Loop() {
		if !f.From.Where.Match(&ev) {
			b.Fatal("no match")
		}
	}
}
