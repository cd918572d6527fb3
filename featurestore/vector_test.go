package featurestore_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// TestVectorMatchesFeatures: the memoised vector equals a fresh
// computation at every instant, across bucket boundaries and expiries of
// windowed last values, for windows that are and are not multiples of
// their bucket width.
func TestVectorMatchesFeatures(t *testing.T) {
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "views_1h", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpCount, Window: time.Hour}},
		{Name: "views_100m", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpCount, Window: 100 * time.Minute}},
		{Name: "spend_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "buy", Op: featurestore.OpSum, Field: "amount", Window: 30 * 24 * time.Hour}},
		{Name: "last_cat_2h", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpLast, Field: "cat", Window: 2 * time.Hour}},
		{Name: "seen_at_90m", Type: featurestore.TypeTime, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpLastTime, Window: 90 * time.Minute}},
		{Name: "views", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpCount}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	r := &featurestore.Record{}
	for i := range 50 {
		at := start.Add(time.Duration(i*97) * time.Second)
		r.Apply(s, &featurestore.Event{Type: "view", Time: at, Properties: map[string]any{"cat": "c"}}, at)
		r.Apply(s, &featurestore.Event{Type: "buy", Time: at, Properties: map[string]any{"amount": 2.5}}, at)
	}
	now := start.Add(80 * time.Minute)
	for i := range 20000 {
		now = now.Add(time.Duration(rng.IntN(int(3 * time.Second))))
		got := r.Vector(s, now)
		want := r.Features(s, now, nil)
		for j := range want {
			if !got[j].Equal(want[j]) {
				t.Fatalf("step %d at %v: %s = %v memoised, %v computed", i, now, s.Features()[j].Name, got[j], want[j])
			}
		}
	}
}
