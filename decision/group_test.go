package decision_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

const groupCatalog = `
channels: [web]
arbitration: static
offers:
  - {id: card-gold,   channels: [web], group: credit, value: 30, content: {web: {h: gold}}}
  - {id: card-silver, channels: [web], group: credit, value: 20, content: {web: {h: silver}}}
  - {id: newsletter,  channels: [web], value: 10, content: {web: {h: news}}}
  - {id: loan-a,      channels: [web], group: loans, value: 5, content: {web: {h: a}}}
  - {id: loan-b,      channels: [web], group: loans, value: 5, content: {web: {h: b}}}
`

// TestGroups: at most one offer per group in a response, the best of the
// group, with ties broken by declaration order; the limit counts after
// groups; explain says why a group member was left out.
func TestGroups(t *testing.T) {
	c, err := rules.Load("groups.yaml", []byte(groupCatalog))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{1, []string{"card-gold"}},
		{2, []string{"card-gold", "newsletter"}},
		{3, []string{"card-gold", "newsletter", "loan-a"}},
		{10, []string{"card-gold", "newsletter", "loan-a"}},
	}
	var e decision.Engine
	for _, tt := range tests {
		var res decision.Result
		req := decision.Request{Channel: "web", Limit: tt.limit, Explain: true, Now: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
		if err := e.Decide(c, nil, &req, &res); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range res.Offers {
			got = append(got, o.Offer.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("limit %d: offers %v, want %v", tt.limit, got, tt.want)
		}
		reasons := map[string]decision.Reason{}
		for _, x := range res.Explain {
			reasons[x.OfferID] = x.Reason
		}
		if reasons["card-silver"] != decision.GroupTaken {
			t.Errorf("limit %d: card-silver reason %q, want %q", tt.limit, reasons["card-silver"], decision.GroupTaken)
		}
		if tt.limit >= 3 && reasons["loan-b"] != decision.GroupTaken {
			t.Errorf("limit %d: loan-b reason %q, want %q (loan-a ties and is declared first)", tt.limit, reasons["loan-b"], decision.GroupTaken)
		}
	}
}
