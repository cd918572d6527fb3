package httpapi

import (
	"testing"

	"github.com/nextbest/nextbest/decision"
)

// TestAppendExplanationFlags: sticky and exploring (learning.min_explore
// put the offer first) are written only when true.
func TestAppendExplanationFlags(t *testing.T) {
	tests := []struct {
		x    decision.Explanation
		want string
	}{
		{decision.Explanation{OfferID: "a", Eligible: true, Reason: decision.Chosen, Score: 1, Propensity: 0.5, Value: 2, Weight: 1},
			`{"offer_id":"a","eligible":true,"reason":"chosen","score":1,"propensity":0.5,"value":2,"weight":1}`},
		{decision.Explanation{OfferID: "a", Eligible: true, Reason: decision.Chosen, Score: 1, Propensity: 0.5, Value: 2, Weight: 1, Exploring: true},
			`{"offer_id":"a","eligible":true,"reason":"chosen","score":1,"propensity":0.5,"value":2,"weight":1,"exploring":true}`},
		{decision.Explanation{OfferID: "a", Eligible: true, Reason: decision.RankedOut, Score: 1, Propensity: 0.5, Value: 2, Weight: 1, Sticky: true, Exploring: true},
			`{"offer_id":"a","eligible":true,"reason":"ranked_out","score":1,"propensity":0.5,"value":2,"weight":1,"sticky":true,"exploring":true}`},
	}
	for _, tt := range tests {
		if got := string(appendExplanation(nil, &tt.x)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}
