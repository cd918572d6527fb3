package decision_test

import (
	"slices"
	"testing"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// TestScreenedDecisionsMatchExplained: a decision judges only the offers
// the catalog's index screens in (rules.Catalog.Screen) and ranks them by
// a heap, while an explained one judges every offer of the catalog and
// each failing conjunct. On a generated catalog of 1,000 offers, for
// every channel and placement and a spread of customers and seeds, both
// must choose the same offers with the same scores, and the explanation
// must count as eligible exactly the candidates a decision ranked.
func TestScreenedDecisionsMatchExplained(t *testing.T) {
	c, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 1000, Segments: 40, Seed: 9}))
	if err != nil {
		t.Fatal(err)
	}
	var eng decision.Engine
	var plain, explained decision.Result
	eligible := 0
	for i, vec := range (catalogtest.Population{Seed: 9}).Vectors(c.Schema, 30) {
		for j, ch := range c.Channels {
			req := decision.Request{Channel: ch.Name, Placement: catalogtest.Placements[(i+j)%len(catalogtest.Placements)],
				Limit: []int{1, 3, decision.MaxLimit}[(i+j)%3], Now: catalogtest.Epoch, Seed: uint64(i*7 + j)}
			if err := eng.Decide(c, vec, &req, &plain); err != nil {
				t.Fatal(err)
			}
			req.Explain = true
			if err := eng.Decide(c, vec, &req, &explained); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(plain.Offers, explained.Offers) {
				t.Fatalf("customer %d, %s: decided %v, explained %v", i, ch.Name, ids(plain.Offers), ids(explained.Offers))
			}
			n := 0
			for _, x := range explained.Explain {
				if x.Eligible {
					n++
				}
			}
			if n < len(plain.Offers) {
				t.Fatalf("customer %d, %s: %d offers eligible in the explanation, %d chosen", i, ch.Name, n, len(plain.Offers))
			}
			eligible += n
		}
	}
	if eligible == 0 {
		t.Fatal("no offer eligible for anyone: the test compares nothing")
	}
}

func ids(cs []decision.Choice) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Offer.ID)
	}
	return s
}
