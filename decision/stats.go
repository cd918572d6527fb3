package decision

import (
	"math"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// Outcome statistics: every node turns decisions and outcomes into the
// same increments of the same cells, so learning and measurement agree
// whichever node, or simulation, produced them.

// Outcome is one outcome to credit.
type Outcome struct {
	Kind        featurestore.Outcome
	OfferID     string // "" for an organic conversion (experiment measurement only)
	Channel     string
	LearnKey    string       // the customer's learn key (Engine.LearnKeyFor or Result.LearnKey)
	Assignments []Assignment // the customer's experiment variants
	// Segments are the catalog segments the customer was in when the
	// decision the outcome follows was made (Result.Segments): the
	// outcome counts, besides its cells of all traffic, in the same cells
	// of each of them.
	Segments []string
	Value    float64 // a conversion's value
	Time     time.Time
	// Model is the catalog's learning model, nil when it has none; Terms
	// the customer's terms under it (Engine.ModelTerms) and Success the
	// outcome that counts as a success (rules.Learning.Success). An
	// impression then adds Terms·Termsᵀ to the model's sums of the offer
	// and channel, a success adds Terms.
	Model   *rules.Model
	Terms   []float64
	Success featurestore.Outcome
}

// AppendOutcomeDeltas appends the increments of o: to the learning cell
// of the offer, channel and learn key, and to the hourly cells of the
// offer overall and per experiment variant (for an offer's outcome, of
// the experiments that decide on its channel), the hourly ones once for
// all traffic and once for each of o's segments.
func AppendOutcomeDeltas(dst []featurestore.StatDelta, o *Outcome) []featurestore.StatDelta {
	var n featurestore.Counts
	switch o.Kind {
	case featurestore.Impression:
		n.Impressions = 1
	case featurestore.Click:
		n.Clicks = 1
	case featurestore.Conversion:
		n.Conversions = 1
		n.Value = o.Value
	case featurestore.Dismiss:
		n.Dismisses = 1
	default:
		return dst
	}
	if o.OfferID != "" && o.Model != nil && len(o.Terms) == o.Model.Dim() {
		dst = append(dst, featurestore.StatDelta{Key: featurestore.StatKey{Offer: o.OfferID, Channel: o.Channel, Key: o.Model.TotalKey}, Counts: n})
		dst = appendModelDeltas(dst, o)
	}
	if o.OfferID != "" {
		dst = append(dst, featurestore.StatDelta{Key: featurestore.StatKey{Offer: o.OfferID, Channel: o.Channel, Key: o.LearnKey}, Counts: n})
	}
	dst = appendOutcomeCells(dst, o, n, "")
	for _, seg := range o.Segments {
		dst = appendOutcomeCells(dst, o, n, seg)
	}
	return dst
}

// appendOutcomeCells appends the increments n of o's hourly cells of
// segment ("": all traffic).
func appendOutcomeCells(dst []featurestore.StatDelta, o *Outcome, n featurestore.Counts, segment string) []featurestore.StatDelta {
	hour := featurestore.Hour(o.Time)
	if o.OfferID != "" {
		dst = append(dst, featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Offer: o.OfferID, Channel: o.Channel, Segment: segment}, Counts: n})
	}
	for _, a := range o.Assignments {
		if o.OfferID != "" && !a.Experiment.OnChannel(o.Channel) {
			// An offer's outcome belongs to the channel it was decided
			// on: an experiment scoped to others did not decide it. An
			// organic conversion is the customer's, on whatever channel:
			// it counts for every experiment they are in. (A scoped
			// experiment's segment is judged when deciding only: the
			// conversion that brings a lapsed customer back also takes
			// them out of the segment.)
			continue
		}
		dst = append(dst, featurestore.StatDelta{
			Key:    featurestore.StatKey{Hour: hour, Offer: o.OfferID, Channel: o.Channel, Experiment: a.Experiment.ID, Variant: a.Variant.Name, Segment: segment},
			Counts: n,
		})
	}
	return dst
}

// AppendDecisionDeltas appends the increments of a decision: one decision
// for its channel, and one for each of the customer's experiment
// variants — the denominators of measurement — once for all traffic and
// once for each segment the customer is in (res.Segments). A decision of
// a catalog without segments appends what it did before they were
// counted.
func AppendDecisionDeltas(dst []featurestore.StatDelta, res *Result, now time.Time) []featurestore.StatDelta {
	dst = appendDecisionCells(dst, res, now, "")
	for _, seg := range res.Segments {
		dst = appendDecisionCells(dst, res, now, seg)
	}
	return dst
}

// appendDecisionCells appends a decision's increments of segment ("":
// all traffic).
func appendDecisionCells(dst []featurestore.StatDelta, res *Result, now time.Time, segment string) []featurestore.StatDelta {
	hour := featurestore.Hour(now)
	ch := res.Channel.Name
	one := featurestore.Counts{Decisions: 1}
	dst = append(dst, featurestore.StatDelta{Key: featurestore.StatKey{Hour: hour, Channel: ch, Segment: segment}, Counts: one})
	for _, a := range res.Assignments {
		dst = append(dst, featurestore.StatDelta{
			Key:    featurestore.StatKey{Hour: hour, Channel: ch, Experiment: a.Experiment.ID, Variant: a.Variant.Name, Segment: segment},
			Counts: one,
		})
	}
	return dst
}

// appendModelDeltas appends the increments of o to its offer's model
// sums (model.go): Σx·xᵀ for an impression, Σx for a success. An entry
// the outcome leaves unchanged (a term of 0) gets no delta.
func appendModelDeltas(dst []featurestore.StatDelta, o *Outcome) []featurestore.StatDelta {
	m, x := o.Model, o.Terms
	add := func(key string, v float64) {
		if v != 0 && !math.IsNaN(v) && !math.IsInf(v, 0) {
			dst = append(dst, featurestore.StatDelta{Key: featurestore.StatKey{Offer: o.OfferID, Channel: o.Channel, Key: key}, Counts: featurestore.Counts{Value: v}})
		}
	}
	switch o.Kind {
	case featurestore.Impression:
		k := 0
		for i := range x {
			for j := i; j < len(x); j++ {
				add(m.AKeys[k], x[i]*x[j])
				k++
			}
		}
	case o.Success:
		for i := range x {
			add(m.BKeys[i], x[i])
		}
	}
	return dst
}
