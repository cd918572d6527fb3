package decision

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

// TestRankHeapMatchesSort holds the scans and the heap rank and choose use
// to the sort they replaced: on random candidates with tied scores, groups
// and a sticky offer, for every limit (scans up to selectLimit, a heap
// above it, and a heap after twice the limit in scans when offers of
// chosen groups come first), the chosen offers and the verdicts of
// explainLosers must be those of sorting every candidate.
func TestRankHeapMatchesSort(t *testing.T) {
	c, err := rules.Load("rank.yaml", []byte("channels: [web]\noffers:\n  - {id: a, channels: [web], content: {web: {h: a}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := c.Channel("web")
	rng := rand.New(rand.NewPCG(12, 5000))
	groups := []string{"", "", "", "a", "b", "c"}
	fewGroups := []string{"a", "a", "a", "b", "c"}
	for round := range 500 {
		n := rng.IntN(40)
		gs := groups
		if round%2 == 1 {
			gs = fewGroups // most candidates collide: choose gives up its scans for the heap
		}
		offers := make([]*rules.Offer, n)
		for i := range offers {
			offers[i] = &rules.Offer{ID: fmt.Sprint("o", i), Index: i, Group: gs[rng.IntN(len(gs))]}
		}
		cands := make([]Choice, n)
		sticky := -1
		if n > 0 && rng.IntN(2) == 0 {
			sticky = rng.IntN(n)
		}
		for i, o := range offers {
			cands[i] = Choice{Offer: o, Score: float64(rng.IntN(8)) / 4, Sticky: i == sticky}
		}
		rng.Shuffle(n, func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		limit := 1 + rng.IntN(2*selectLimit)
		run := func(sorted bool) (chosen []string, why []Reason) {
			s := &scratch{c: c, ch: web, cands: slices.Clone(cands)}
			if sticky >= 0 {
				s.sticky = offers[sticky]
			}
			res := &Result{}
			for _, c := range cands {
				res.Explain = append(res.Explain, Explanation{OfferID: c.Offer.ID, Eligible: true})
			}
			if sorted {
				s.sortCands()
			} else {
				s.rank(limit)
			}
			s.choose(res, limit)
			s.explainLosers(res)
			for _, c := range res.Offers {
				chosen = append(chosen, c.Offer.ID)
			}
			for _, x := range res.Explain {
				why = append(why, x.Reason)
			}
			return chosen, why
		}
		gotChosen, gotWhy := run(false)
		wantChosen, wantWhy := run(true)
		if !slices.Equal(gotChosen, wantChosen) || !slices.Equal(gotWhy, wantWhy) {
			t.Fatalf("round %d, limit %d: heap chose %v (%v), sorting %v (%v)", round, limit, gotChosen, gotWhy, wantChosen, wantWhy)
		}
	}
}

// TestRankNaNSorts: a NaN score orders nothing, so rank falls back to the
// sort decisions always made.
func TestRankNaNSorts(t *testing.T) {
	s := &scratch{cands: []Choice{{Offer: &rules.Offer{Index: 0}, Score: 1}, {Offer: &rules.Offer{Index: 1}, Score: math.NaN()}}}
	s.rank(1)
	if !s.sorted {
		t.Error("rank made a heap of candidates with a NaN score, want them sorted")
	}
}
