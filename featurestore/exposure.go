package featurestore

import (
	"math"
	"strconv"
	"time"
)

// Exposure state: what measurement by customer needs to remember of each
// customer. An experiment randomises customers, not decisions, so its
// honest unit of analysis is the assigned customer: how many were
// exposed (took at least one decision in the experiment), how many
// converted, and their conversions and value per customer, with the
// spread of those per-customer figures for a confidence interval.
//
// Each customer's record keeps, per experiment, the variant and time of
// their first exposure and their conversions and value since (Exposure).
// The statistics cells keep, per experiment variant and hour of first
// exposure (a cohort), additive sums over those customers: customers,
// converters, conversions, Σ conversions², value, Σ value². A customer's
// change from x to x+1 conversions adds 2x+1 to Σx², and from value v to
// v+w adds 2vw+w², so every cell is still a plain sum that any node adds
// to and any period of cohorts sums up.

// Exposure is a customer's first exposure to one experiment and their
// conversions since.
type Exposure struct {
	Experiment, Variant string
	At                  int64 // Unix nanoseconds of the first decision in the experiment, server time
	// Conversions and Value are the customer's conversion events, and
	// their summed value, that happened at or after At.
	Conversions int64
	Value       float64
}

// Exposure returns the customer's exposure to experiment; nil when they
// have none.
func (r *Record) Exposure(experiment string) *Exposure {
	for i := range r.Exposures {
		if r.Exposures[i].Experiment == experiment {
			return &r.Exposures[i]
		}
	}
	return nil
}

// Expose records the customer's first exposure to experiment, in variant,
// at at, and reports whether it is new: an exposure already recorded is
// kept as it is (its variant and time are the first decision's).
func (r *Record) Expose(experiment, variant string, at time.Time) bool {
	if r.Exposure(experiment) != nil {
		return false
	}
	r.packed = nil
	r.Exposures = append(r.Exposures, Exposure{Experiment: experiment, Variant: variant, At: at.UnixNano()})
	return true
}

// credits reports whether a conversion at ts counts for e: one that
// happened before the customer's first exposure is no outcome of it.
func (e *Exposure) credits(ts int64) bool { return ts >= e.At }

// creditConversion adds a conversion event of value v to every exposure
// it counts for, and reports whether any changed.
func (r *Record) creditConversion(ev *Event, v float64) bool {
	ts := ev.Time.UnixNano()
	changed := false
	for i := range r.Exposures {
		if e := &r.Exposures[i]; e.credits(ts) {
			e.Conversions++
			e.Value += v
			changed = true
		}
	}
	if changed {
		r.packed = nil
	}
	return changed
}

// ConversionValue is the value a conversion event counts: its
// properties.value when it is a finite number, else its offer's value in
// s.OfferValues, else 0.
func (s *Schema) ConversionValue(ev *Event) float64 {
	if v, ok := ev.Properties["value"].(float64); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
		return v
	}
	return s.OfferValues[ev.OfferID]
}

// ExposureDelta is the increment of a customer's first exposure to an
// experiment: one customer in the cohort cell of its variant and hour.
func ExposureDelta(experiment, variant string, at time.Time) StatDelta {
	return StatDelta{Key: CohortKey(experiment, variant, at.UnixNano()), Counts: Counts{Customers: 1}}
}

// CohortKey is the cell of the customers first exposed to experiment, in
// variant, in the hour of at (Unix nanoseconds): Offer and Channel are
// empty, which no decision or outcome cell of an experiment leaves them.
func CohortKey(experiment, variant string, at int64) StatKey {
	return StatKey{Hour: at / int64(time.Hour), Experiment: experiment, Variant: variant}
}

// RetentionKeyPrefix starts the Key of a retention cell: a cohort cell
// whose Key is RetentionKeyPrefix + d counts, in Converters, the cohort's
// customers whose first conversion came d whole days (of 24 hours) after
// their first exposure.
const RetentionKeyPrefix = "first-conversion-day:"

// MaxRetentionDays bounds the day of a retention cell: a first
// conversion later than that is counted in the cell of MaxRetentionDays.
const MaxRetentionDays = 366

// RetentionDay returns the day a retention cell's key names.
func RetentionDay(k StatKey) (int, bool) {
	if k.Offer != "" || k.Channel != "" || len(k.Key) <= len(RetentionKeyPrefix) || k.Key[:len(RetentionKeyPrefix)] != RetentionKeyPrefix {
		return 0, false
	}
	d, err := strconv.Atoi(k.Key[len(RetentionKeyPrefix):])
	return d, err == nil && d >= 0
}

// AppendConversionDeltas appends the increments of the conversions
// events[i], i in conversions, added to the exposures of rec, the record
// of their customer once they were applied: conversions lists the
// customer's conversion events that took effect. Each exposure's
// increments go to its cohort cell: the conversions k and value w the
// events added, a converter when the customer had none before, and the
// changes of Σx² and Σv² from the customer's figures before (x−k, v−w)
// to after (x, v); and a first conversion to the retention cell of its
// day. The events counted for an exposure are those it credits
// (Exposure.credits), so these are exactly the changes Apply made. The
// day of a first conversion is that of the earliest of the events that
// made the customer a converter: a conversion reported later with an
// earlier time does not move it.
func AppendConversionDeltas(dst []StatDelta, s *Schema, rec *Record, events []Event, conversions []int) []StatDelta {
	if rec == nil || len(conversions) == 0 {
		return dst
	}
	for i := range rec.Exposures {
		e := &rec.Exposures[i]
		var k int64
		var w float64
		first := int64(math.MaxInt64)
		for _, j := range conversions {
			ev := &events[j]
			if ts := ev.Time.UnixNano(); e.credits(ts) {
				k++
				w += s.ConversionValue(ev)
				first = min(first, ts)
			}
		}
		if k == 0 {
			continue
		}
		x0 := e.Conversions - k
		c := Counts{Conversions: k, ConversionsSq: e.Conversions*e.Conversions - x0*x0,
			Value: w, ValueSq: w * (2*e.Value - w)}
		key := CohortKey(e.Experiment, e.Variant, e.At)
		if x0 == 0 {
			c.Converters = 1
			day := min((first-e.At)/int64(24*time.Hour), MaxRetentionDays)
			rk := key
			rk.Key = RetentionKeyPrefix + strconv.FormatInt(day, 10)
			dst = append(dst, StatDelta{Key: rk, Counts: Counts{Converters: 1}})
		}
		dst = append(dst, StatDelta{Key: key, Counts: c})
	}
	return dst
}
