package nextbest

import "github.com/nextbest/nextbest/rules"

// Statistics by segment (GET /v1/stats?segment=): a decision counts in
// the cells of every catalog segment its customer is in
// (decision.AppendDecisionDeltas), and an outcome in those of the
// decision it follows. An event does not carry its decision's segments
// and they cannot be evaluated again when it arrives (a segment may read
// the request's context, and the features have moved on: the purchase
// that a win-back offer led to takes the customer out of "lapsed"), so
// the customer's record keeps the segments of their latest decision on
// each channel (featurestore.DecisionSegments), written with the
// decision's exposures only when they change, and creditOutcomes counts
// an outcome on a channel in the segments recorded for it. A decision on
// a decision_is_impression channel credits its impressions with its own
// segments.

// newSegments reports whether the segments of d's customer differ from
// those recorded for their latest decision on d's channel. It reads the
// record d's decision read and allocates nothing; a catalog without
// segments never records any.
func (d *Decision) newSegments(cat *rules.Catalog) bool {
	return len(cat.Segments) > 0 && !d.view.DecidedSegmentsAre(d.Result.Channel.Name, d.Result.Segments)
}
