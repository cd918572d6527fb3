package httpapi

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// Degradation says why a decision was answered without the customer's
// stored features (from the schema's defaults, marked "degraded" with
// this "reason" in the answer and counted by cause), or NotDegraded.
type Degradation uint8

const (
	NotDegraded Degradation = iota
	// DegradedDeadline: the store read passed its deadline
	// (Options.StoreTimeout).
	DegradedDeadline
	// DegradedError: the store failed before the deadline.
	DegradedError
	// DegradedOverload: the request was not admitted to the store read
	// because the node is over its load bound.
	DegradedOverload

	numDegradations
)

var degradationNames = [numDegradations]string{"", "deadline", "error", "overload"}

// String returns the cause as the answer's "reason" and the metric's
// cause label have it: "deadline", "error", "overload"; "" for
// NotDegraded.
func (d Degradation) String() string {
	if d < numDegradations {
		return degradationNames[d]
	}
	return fmt.Sprintf("Degradation(%d)", d)
}

// degradedCounters counts degraded decisions by cause.
type degradedCounters [numDegradations]*metrics.Counter

func newDegradedCounters(set *metrics.Set) *degradedCounters {
	var c degradedCounters
	for d := DegradedDeadline; d < numDegradations; d++ {
		c[d] = set.GetOrCreateCounter(fmt.Sprintf(`nextbest_decisions_degraded_total{cause=%q}`, d))
	}
	return &c
}

// inc counts a decision degraded for cause d; NotDegraded is not counted.
func (c *degradedCounters) inc(d Degradation) {
	if d != NotDegraded && d < numDegradations {
		c[d].Inc()
	}
}
