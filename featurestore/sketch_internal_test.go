package featurestore

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestKeyedMerge: merging the states two records built from two halves
// of the events reads what one record of all of them reads, for the ops
// whose row has a merge.
func TestKeyedMerge(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s, err := NewSchema([]Feature{
		{Name: "top_30d", Type: TypeString, From: &Aggregation{Event: "view", Op: OpTop, Field: "c", Window: 30 * 24 * time.Hour}},
		{Name: "top", Type: TypeString, From: &Aggregation{Event: "view", Op: OpTop, Field: "c"}},
		{Name: "distinct_7d", Type: TypeNumber, From: &Aggregation{Event: "view", Op: OpDistinct, Field: FieldChannel, Window: 7 * 24 * time.Hour}},
		{Name: "distinct", Type: TypeNumber, From: &Aggregation{Event: "view", Op: OpDistinct, Field: "c"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for round := range 50 {
		all, a, b := &Record{}, &Record{}, &Record{}
		for range rng.IntN(80) {
			ev := Event{Type: "view", Channel: fmt.Sprint("ch", rng.IntN(5)), Time: now.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour)))),
				Properties: map[string]any{"c": fmt.Sprint("c", rng.IntN(TopK/2))}}
			all.Apply(s, &ev, now)
			half := a
			if rng.IntN(2) == 0 {
				half = b
			}
			half.Apply(s, &ev, now)
		}
		a.Merge(s, b, now)
		want, got := all.Features(s, now, nil), a.Features(s, now, nil)
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Fatalf("round %d: merged %s = %v, want %v", round, s.features[i].Name, got[i], want[i])
			}
		}
	}
}
