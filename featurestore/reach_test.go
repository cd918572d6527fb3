package featurestore_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

func TestSketchEstimate(t *testing.T) {
	for _, n := range []int{0, 1, 10, 100, 1000, 5000, 20000, 200000} {
		var s featurestore.Sketch
		for i := range n {
			id := "customer-" + strconv.Itoa(i)
			s.Add(featurestore.HashCustomer(id))
			s.Add(featurestore.HashCustomer(id)) // a customer counts once
		}
		got := s.Estimate()
		// Four standard errors, and exact for small counts.
		tol := math.Max(4*featurestore.ReachRelativeError*float64(n), 0)
		if n <= 100 {
			tol = 2 // linear counting: within a customer or two
		}
		if math.Abs(float64(got-int64(n))) > tol {
			t.Errorf("%d customers: estimate %d, want within %.0f", n, got, tol)
		}
	}
}

func TestSketchMerge(t *testing.T) {
	var a, b, all featurestore.Sketch
	for i := range 30000 {
		h := featurestore.HashCustomer(strconv.Itoa(i))
		all.Add(h)
		if i < 20000 {
			a.Add(h)
		}
		if i >= 10000 {
			b.Add(h)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Errorf("merge of overlapping sketches differs from the sketch of the union")
	}
	p, err := featurestore.ParseSketch(all[:])
	if err != nil || *p != all {
		t.Errorf("ParseSketch(registers) = %v, want the sketch", err)
	}
	if _, err := featurestore.ParseSketch(all[:10]); err == nil {
		t.Errorf("ParseSketch of 10 bytes: no error")
	}
}

func TestReachKeyRoundTrip(t *testing.T) {
	for _, k := range []featurestore.ReachKey{
		{Hour: 7, Channel: "email", Experiment: "x", Variant: "v"},
		{Hour: 7, Channel: "email"},
		{Hour: 7, Channel: "email", Segment: "lapsed"},
		{Hour: 7, Channel: "email", Experiment: "x", Variant: "v", Segment: "lapsed"},
	} {
		got, ok := featurestore.DecodeReachKey(featurestore.EncodeReachKey(k), 7)
		if !ok || got != k {
			t.Errorf("round trip = %+v, %v; want %+v", got, ok, k)
		}
	}
	// Cells stored before segments were counted: three fields.
	for enc, want := range map[string]featurestore.ReachKey{
		"email\x1f\x1f":   {Hour: 7, Channel: "email"},
		"email\x1fx\x1fv": {Hour: 7, Channel: "email", Experiment: "x", Variant: "v"},
	} {
		if got, ok := featurestore.DecodeReachKey(enc, 7); !ok || got != want {
			t.Errorf("DecodeReachKey(%q) = %+v, %v; want %+v", enc, got, ok, want)
		}
		if got := featurestore.EncodeReachKey(want); got != enc {
			t.Errorf("EncodeReachKey(%+v) = %q, want %q", want, got, enc)
		}
	}
	for _, bad := range []string{"email\x1f\x1f\x1f", "email\x1f", "a\x1fb\x1fc\x1fd\x1fe"} {
		if got, ok := featurestore.DecodeReachKey(bad, 7); ok {
			t.Errorf("DecodeReachKey(%q) = %+v, want malformed", bad, got)
		}
	}
}

func BenchmarkSketchAdd(b *testing.B) {
	var s featurestore.Sketch
	b.ReportAllocs()
	for b.Loop() {
		s.Add(featurestore.HashCustomer("customer-123456"))
	}
}
