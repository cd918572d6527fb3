package nextbest

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
)

// Measurement by customer (featurestore/exposure.go): a customer's first
// decision in an experiment records their exposure in their record, once,
// and counts them in their variant's cohort; their conversions from then
// on are credited to it by the events' own write (Record.Apply's caller,
// featurestore.EventMutations) and counted by creditOutcomes.

// newExposures reports whether d assigned its customer to an experiment
// their record has no exposure to yet. It reads the record d's decision
// read (d.view) and allocates nothing: a customer already exposed to all
// their experiments costs a decision nothing more.
func (d *Decision) newExposures() bool {
	for _, a := range d.Result.Assignments {
		if !d.view.Exposed(a.Experiment.ID) {
			return true
		}
	}
	return false
}

// recordExposures records the customer's first exposure, at now, to each
// experiment of res they have none of, and counts the customers whose
// exposure the write made in the cohort cells of their variants; with
// segments, in the same write, the segments of res as those of their
// latest decision on its channel (segments.go). It is
// written as a decision's impressions are (recordImpressions): visible to
// the next decision before the answer leaves, not waited for to be
// durable. A store failure is reported and the decision still answered;
// the customer's next decision tries again. Two nodes deciding for the
// same new customer at once both write, and the store's atomic
// read-modify-write lets exactly one of them find the exposure new.
func (s *Service) recordExposures(customer string, res *decision.Result, now time.Time, segments bool) {
	customer = strings.Clone(customer)
	var channel string
	var segs []string // a copy: res is reused by the next decision, a timed-out write may still run
	if segments {
		channel, segs = res.Channel.Name, slices.Clone(res.Segments)
	}
	type assigned struct{ experiment, variant string } // the catalog's strings
	as := make([]assigned, len(res.Assignments))
	for i, a := range res.Assignments {
		as[i] = assigned{a.Experiment.ID, a.Variant.Name}
	}
	fresh := make([]bool, len(as)) // by the last run of Apply, the one committed
	muts := []featurestore.Mutation{{CustomerID: customer, Apply: func(r *featurestore.Record) bool {
		changed := false
		for i, a := range as {
			fresh[i] = r.Expose(a.experiment, a.variant, now)
			changed = fresh[i] || changed
		}
		if segments && r.SetDecidedSegments(channel, segs, now) {
			changed = true
		}
		return changed
	}}}
	start := time.Now()
	c, cancel := context.WithTimeout(context.Background(), s.mutateTimeout)
	var err error
	if s.cache != nil {
		_, _, err = s.cache.MutateVisible(c, muts)
	} else {
		_, err = s.store.Mutate(c, muts)
	}
	cancel()
	s.observeWrite(start, err)
	if err != nil {
		s.logError("record exposures", err)
		return
	}
	if s.stats == nil {
		return
	}
	var deltas []featurestore.StatDelta
	for i, a := range as {
		if fresh[i] {
			deltas = append(deltas, featurestore.ExposureDelta(a.experiment, a.variant, now))
		}
	}
	if len(deltas) > 0 {
		s.stats.Add(deltas...)
	}
}
