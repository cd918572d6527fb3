package decision

import "github.com/nextbest/nextbest/rules"

// Propensities: the probability that a decision chooses each offer it
// chose, which off-policy evaluation divides by (inverse propensity
// scoring) and a decision log records.
//
// Under Thompson sampling the choice is random: each candidate's
// propensity is drawn from its Beta posterior, and the set chosen is
// that of the best scores (up to the limit, one per group, the sticky
// offer first). The probability that an offer lands in that set has no
// closed form once there are scores by expression, groups and limits
// above one, so it is estimated by Monte Carlo, in the same pass: the
// candidates, judged once, are scored again from K fresh draws of their
// posteriors and chosen again, and an offer's estimate is the share of
// the K re-draws that choose it. The estimate is unbiased, with a
// binomial error sqrt(p(1-p)/K): at K = 32 at most 0.088 (p = 0.5),
// 0.053 at p = 0.1 or 0.9. An offer the decision chose may be chosen by
// none of the re-draws (its probability is below about 1/K): its
// estimate is then 0, and an evaluation must clip it (to 1/(K+1), say)
// rather than divide by it.
//
// The re-draws come from the scratch's own generator reseeded from
// redrawSeed(Request.Seed, k), never from the decision's stream, so
// asking for propensities changes nothing in the decision, and they are
// themselves replayable from the decision's seed. A decision that does
// not explore (greedy, static arbitration) chooses the same offers
// every time: each chosen offer's propensity is 1.

// selections sets Selection on each offer of res, the decision's choice
// under limit, from k re-draws.
func (s *scratch) selections(res *Result, limit, k int) {
	// A decision that took every candidate takes them all on any draw
	// (none lost to the limit or to a group).
	if s.arb.Static || s.c.Learning.Explore != rules.Thompson || len(res.Offers) == len(s.cands) {
		for i := range res.Offers {
			res.Offers[i].Selection = 1
		}
		return
	}
	for i := range res.Offers {
		res.Offers[i].Selection = 0
	}
	s.rng = s.own
	for j := range k {
		s.seed(redrawSeed(s.req.Seed, j))
		for i := range s.cands {
			cand := &s.cands[i]
			l := cand.Offer.Listing(s.ch)
			if err := s.score(res.LearnKey, &l, cand); err != nil {
				// It scored once: a score expression that fails on
				// another draw leaves the candidate last.
				cand.Score = -1e308
			}
		}
		s.sorted = false
		s.rank(limit)
		s.redrawn = s.pick(s.redrawn[:0], limit)
		for _, ch := range s.redrawn {
			for i := range res.Offers {
				if res.Offers[i].Offer == ch.Offer {
					res.Offers[i].Selection++
					break
				}
			}
		}
	}
	for i := range res.Offers {
		res.Offers[i].Selection /= float64(k)
	}
}

// redrawSeed is the seed of re-draw k of the decision seeded with seed:
// splitmix64 expands it again, so neighbouring seeds are unrelated.
func redrawSeed(seed uint64, k int) uint64 {
	x := seed ^ (uint64(k+1) * 0x9e3779b97f4a7c15)
	return splitmix64(&x)
}

// Explores reports whether a decision of catalog c for a customer with
// the experiment variants as chooses at random: under Thompson sampling,
// unless the arbitration in force (the catalog's, or the first variant
// that sets one, as the engine takes it) is static.
func Explores(c *rules.Catalog, as []Assignment) bool {
	arb := &c.Arbitration
	for _, a := range as {
		if a.Variant.Arbitration != nil {
			arb = a.Variant.Arbitration
			break
		}
	}
	return !arb.Static && c.Learning.Explore == rules.Thompson
}
