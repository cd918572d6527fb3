package httpapi

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/nextbest/nextbest"
)

// Degradation says why a decision was answered without the customer's
// stored features; the service owns it (nextbest.Degradation).
type Degradation = nextbest.Degradation

const (
	NotDegraded      = nextbest.NotDegraded
	DegradedDeadline = nextbest.DegradedDeadline
	DegradedError    = nextbest.DegradedError
	DegradedOverload = nextbest.DegradedOverload

	numDegradations = nextbest.NumDegradations
)

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
