package nextbest

import "fmt"

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

	// NumDegradations is the number of Degradation values, for tables
	// indexed by them.
	NumDegradations
)

var degradationNames = [NumDegradations]string{"", "deadline", "error", "overload"}

// String returns the cause as the answer's "reason" and the metric's
// cause label have it: "deadline", "error", "overload"; "" for
// NotDegraded.
func (d Degradation) String() string {
	if d < NumDegradations {
		return degradationNames[d]
	}
	return fmt.Sprintf("Degradation(%d)", d)
}
