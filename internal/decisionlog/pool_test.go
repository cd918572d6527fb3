package decisionlog

import (
	"reflect"
	"testing"
	"time"
)

// TestRecycle: a recycled entry holds nothing of the decision it
// logged (every field zero, so a field added to Entry is covered too),
// only its slices' room.
func TestRecycle(t *testing.T) {
	e := &Entry{ID: "d", Time: time.Unix(1, 0), CustomerID: "c", DecidedFor: "x", Channel: "web", Placement: "p", Limit: 3,
		Catalog: "v", Explore: "thompson", Variants: []Variant{{"e", "v"}}, Holdout: true, Segments: []string{"s"},
		LearnKey: "k", Degraded: "timeout", Offers: []Offer{{ID: "o"}}, PropensitySamples: 32,
		Features: Fields{{Name: "f", Value: 1.0}}, Context: map[string]any{"k": "v"}, features: []byte(`{"f":1}`)}
	recycle(e)
	got := reflect.ValueOf(*e)
	for i := range got.NumField() {
		f := got.Field(i)
		if got.Type().Field(i).Name == "spare" {
			continue // the room kept
		}
		if f.Kind() == reflect.Slice {
			if f.Len() != 0 {
				t.Errorf("%s: %d elements after recycle, want 0", got.Type().Field(i).Name, f.Len())
			}
			continue
		}
		if !f.IsZero() {
			t.Errorf("%s is %v after recycle, want zero", got.Type().Field(i).Name, f)
		}
	}
	if cap(e.Offers) == 0 || cap(e.spare) == 0 {
		t.Error("recycle dropped the room of the offers or the features")
	}
}
