package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/nextbest/nextbest/decision"
)

// TestAppendDecisionDegraded: a degraded answer says why, and only a
// degraded one has a reason.
func TestAppendDecisionDegraded(t *testing.T) {
	tests := []struct {
		d          Degradation
		degraded   bool
		wantReason any // nil: no reason field
	}{
		{NotDegraded, false, nil},
		{DegradedDeadline, true, "deadline"},
		{DegradedError, true, "error"},
		{DegradedOverload, true, "overload"},
	}
	for _, tt := range tests {
		b := AppendDecision(nil, &Decision{CustomerID: "c-1", Result: &decision.Result{}, Degraded: tt.d})
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%v: %v in %s", tt.d, err, b)
		}
		reason, hasReason := got["reason"]
		if got["degraded"] != tt.degraded || hasReason != (tt.wantReason != nil) || reason != tt.wantReason {
			t.Errorf("%v: degraded %v, reason %v (present %v); want %v, %v in %s", tt.d, got["degraded"], reason, hasReason, tt.degraded, tt.wantReason, b)
		}
	}
}
