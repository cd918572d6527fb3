package featurestore_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// TestExposureEncoding: a record without exposures is written as codec
// version 4, byte for byte as before exposures existed, so an older node
// reads it; one with exposures as version 5. A View reports them from
// the packed and the unpacked record alike.
func TestExposureEncoding(t *testing.T) {
	r := &featurestore.Record{}
	r.SetAttr("tier", featurestore.String("gold"))
	if b := featurestore.AppendRecord(nil, r); b[0] != 4 {
		t.Errorf("a record without exposures: version %d, want 4", b[0])
	}
	if !r.Expose("ranking", "learned", now) || r.Expose("ranking", "static", now.Add(time.Hour)) {
		t.Error("Expose: want new on the first call only")
	}
	if e := r.Exposure("ranking"); e == nil || e.Variant != "learned" || e.At != now.UnixNano() {
		t.Errorf("exposure %+v, want the first call's", e)
	}
	if b := featurestore.AppendRecord(nil, r); b[0] != 5 {
		t.Errorf("a record with exposures: version %d, want 5", b[0])
	}
	s := testSchema(t)
	var v featurestore.View
	v.Read(r.Pack(), s, now)
	if !v.Exposed("ranking") || v.Exposed("other") {
		t.Error("View.Read: want ranking exposed, other not")
	}
	v.Read(nil, s, now)
	if v.Exposed("ranking") {
		t.Error("View.Read of no record: want nothing exposed")
	}
	v.ReadRecord(r, s, now)
	if !v.Exposed("ranking") {
		t.Error("View.ReadRecord: want ranking exposed")
	}
	if allocs := testing.AllocsPerRun(100, func() { v.Read(r.Pack(), s, now); v.Exposed("ranking") }); allocs != 0 {
		t.Errorf("View.Read of exposures: %v allocations, want 0", allocs)
	}
}

// TestConversionDeltasMatchDirect: conversions written in random batches
// through the events' mutations credit the customers' exposures (those at
// or after the exposure only, valued by properties.value or the offer's
// value), and the deltas AppendConversionDeltas makes of each batch sum,
// per cohort, to a direct computation of customers, converters, Σx, Σx²,
// Σv, Σv² and the retention days.
func TestConversionDeltasMatchDirect(t *testing.T) {
	s := testSchema(t)
	s.OfferValues = map[string]float64{"promo": 7}
	r := rand.New(rand.NewPCG(5, 14))
	recs := map[string]*featurestore.Record{}
	type truth struct {
		x, v  float64
		first int64
	}
	want := map[string]*truth{}
	var events []featurestore.Event
	for i := range 60 {
		id := string(rune('a'+i%26)) + string(rune('a'+i/26))
		rec := &featurestore.Record{}
		rec.Expose("x", "v", now)
		recs[id] = rec
		want[id] = &truth{first: -1}
		for k := range r.IntN(5) {
			at := now.Add(time.Duration(r.IntN(72)-6) * time.Hour)
			ev := featurestore.Event{CustomerID: id, Type: "conversion", Channel: "web", Time: at, OfferID: "promo"}
			val := 7.0
			if k%2 == 0 {
				val = float64(r.IntN(1000)) / 10
				ev.Properties = map[string]any{"value": val}
			}
			events = append(events, ev)
			if !at.Before(now) {
				w := want[id]
				w.x++
				w.v += val
				if d := int64(at.Sub(now) / (24 * time.Hour)); w.first < 0 || d < w.first {
					w.first = d
				}
			}
		}
	}
	// In time order, in random batches: the first conversion's day is
	// that of the first reported (AppendConversionDeltas).
	slices.SortStableFunc(events, func(a, b featurestore.Event) int { return a.Time.Compare(b.Time) })
	got := map[featurestore.StatKey]featurestore.Counts{}
	for len(events) > 0 {
		n := min(len(events), 1+r.IntN(10))
		batch := events[:n]
		events = events[n:]
		for _, m := range featurestore.EventMutations(s, batch, now) {
			m.Apply(recs[m.CustomerID])
			var conversions []int
			for j := range batch {
				if batch[j].CustomerID == m.CustomerID {
					conversions = append(conversions, j)
				}
			}
			for _, d := range featurestore.AppendConversionDeltas(nil, s, recs[m.CustomerID], batch, conversions) {
				c := got[d.Key]
				c.Add(d.Counts)
				got[d.Key] = c
			}
		}
	}
	var direct featurestore.Counts
	days := map[int]int64{}
	for _, w := range want {
		direct.Conversions += int64(w.x)
		direct.ConversionsSq += int64(w.x * w.x)
		direct.Value += w.v
		direct.ValueSq += w.v * w.v
		if w.x > 0 {
			direct.Converters++
			days[int(w.first)]++
		}
	}
	key := featurestore.CohortKey("x", "v", now.UnixNano())
	c := got[key]
	if c.Conversions != direct.Conversions || c.ConversionsSq != direct.ConversionsSq || c.Converters != direct.Converters ||
		math.Abs(c.Value-direct.Value) > 1e-9 || math.Abs(c.ValueSq-direct.ValueSq) > 1e-6*direct.ValueSq {
		t.Errorf("cohort cell %+v, want %+v", c, direct)
	}
	for k, c := range got {
		if d, ok := featurestore.RetentionDay(k); ok {
			if c.Converters != days[d] {
				t.Errorf("retention day %d: %d converters, want %d", d, c.Converters, days[d])
			}
			delete(days, d)
		}
	}
	if len(days) != 0 {
		t.Errorf("retention days missing: %v", days)
	}
	for id, rec := range recs {
		if e := rec.Exposure("x"); float64(e.Conversions) != want[id].x {
			t.Errorf("customer %s: %d conversions credited, want %v", id, e.Conversions, want[id].x)
		}
	}
}

// TestMergeExposures: a merge keeps the target's exposure to an
// experiment and takes the merged id's to the others.
func TestMergeExposures(t *testing.T) {
	s := testSchema(t)
	r, from := &featurestore.Record{}, &featurestore.Record{}
	r.Expose("a", "x", now)
	from.Expose("a", "y", now.Add(-time.Hour))
	from.Expose("b", "z", now.Add(-time.Hour))
	if !r.Merge(s, from, now) {
		t.Fatal("Merge reported no change")
	}
	if e := r.Exposure("a"); e.Variant != "x" {
		t.Errorf("experiment a: variant %s, want the target's x", e.Variant)
	}
	if e := r.Exposure("b"); e == nil || e.Variant != "z" {
		t.Errorf("experiment b: %+v, want the merged id's z", e)
	}
}
