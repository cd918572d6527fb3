package rules

// Conditions and the offer index: what makes a decision's cost follow the
// offers a customer may get rather than the size of the catalog.
//
// Offers' eligible rules are written from a small vocabulary: a catalog of
// 5,000 generated offers has more than 15,000 top-level conjuncts but fewer
// than a hundred distinct conditions (customer.tier == "gold", "x" in
// segments, days_since(customer.last_purchase_at) < 30, ...). Each rule on
// the specialised evaluator is planned, when it is compiled, as clauses
// (its top-level && operands) of literals (the || operands of a clause,
// each a condition or its negation); equal conditions, by their checked
// source, are one. A decision evaluates each condition at most once,
// remembered in the Env, and a plan reads those answers.
//
// Each channel indexes its offers by their clauses of one literal, the
// commonest shape: a condition's answer rules out at once, a word of
// bits per 64 offers, every offer of the channel that requires the
// opposite. The offers left are checked against their clauses of several
// literals, kept together per channel, and Screen returns them, in
// declaration order, with the offers whose rule is not planned (none, or
// one on expr's VM); the decision visits only those. Conditions are pure
// (the specialised evaluator reads the Env and never fails), so
// evaluating one once, and in any order, answers as the rule's own
// short-circuit evaluation would. The differential tests (fast_test.go,
// generated_test.go, generated_large_test.go) hold plans and Screen to
// expr's VM.
//
// BenchmarkDecideOffers/5000 (web, limit 3, 155 of 2,064 web offers
// eligible): 498 µs → 37.5 µs of CPU per decision, most of it now spent on
// the eligible offers themselves; see docs/benchmarks.md, issue 12.

import (
	"math/bits"
	"slices"

	"github.com/expr-lang/expr/ast"
)

// lit is a condition, by index, or its negation: index<<1 | negated.
// In a plan, each clause is its length followed by its literals.
type lit uint32

func (l lit) cond() int     { return int(l >> 1) }
func (l lit) negated() bool { return l&1 == 1 }

// conditions are the distinct conditions of one catalog's planned rules.
type conditions struct {
	fns []boolFn // by index
	// index finds a condition by its checked source while the catalog
	// compiles; nil after.
	index map[string]int
}

// plan returns tree, a checked tree the specialised evaluator compiles,
// as clauses of literals over c's conditions, or nil when a condition
// does not compile.
func (c *compiler) plan(tree ast.Node) []lit {
	if c.conds == nil {
		c.conds = &conditions{index: map[string]int{}}
	}
	var plan []lit
	for _, clause := range operands(tree, "&&", "and", nil) {
		lits := operands(clause, "||", "or", nil)
		plan = append(plan, lit(len(lits)))
		for _, n := range lits {
			neg := lit(0)
			for {
				u, ok := n.(*ast.UnaryNode)
				if !ok || (u.Operator != "!" && u.Operator != "not") {
					break
				}
				n, neg = u.Node, neg^1
			}
			i, ok := c.condition(n)
			if !ok {
				return nil
			}
			plan = append(plan, lit(i<<1)|neg)
		}
	}
	return plan
}

// operands appends to dst the operands of n's chain of the binary
// operator op (spelt op or alt), left to right; n itself when it is not
// one.
func operands(n ast.Node, op, alt string, dst []ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == op || b.Operator == alt) {
		dst = operands(b.Left, op, alt, dst)
		return operands(b.Right, op, alt, dst)
	}
	return append(dst, n)
}

// condition returns the index of the condition n, a checked boolean tree,
// compiling it when it is new.
func (c *compiler) condition(n ast.Node) (int, bool) {
	// The checked source names the condition: the same text in one catalog
	// reads the same features with the same types.
	key := n.String()
	if i, ok := c.conds.index[key]; ok {
		return i, true
	}
	fn, ok := c.fast.boolean(n)
	if !ok {
		return 0, false
	}
	c.conds.fns = append(c.conds.fns, fn)
	c.conds.index[key] = len(c.conds.fns) - 1
	return len(c.conds.fns) - 1, true
}

// holds evaluates a plan: every clause has a lit that holds.
func (e *Env) holds(plan []lit) bool {
	for i := 0; i < len(plan); {
		k := int(plan[i])
		i++
		ok := false
		for _, l := range plan[i : i+k] {
			if e.lit(l) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
		i += k
	}
	return true
}

// answerAll answers each of conds and returns the answers by literal:
// at l, 1 when l holds and 0 when it does not, for the literals of conds.
func (e *Env) answerAll(conds []int) []uint8 {
	if n := 2 * len(e.condState); cap(e.lits) < n {
		e.lits = make([]uint8, n)
	}
	lits := e.lits[:2*len(e.condState)]
	for _, c := range conds {
		t := uint8(0)
		if e.lit(lit(c << 1)) {
			t = 1
		}
		lits[c<<1], lits[c<<1|1] = t, t^1
	}
	return lits
}

// holdsKnown is holds for a plan whose literals lits answers: it reads
// every literal of a clause rather than branching on each, which costs
// less than the mispredicted branches of answers that are as good as
// random (BenchmarkDecideOffers/5000: see docs/benchmarks.md, issue 12,
// the engine, second pass).
func holdsKnown(plan []lit, lits []uint8) bool {
	for i := 0; i < len(plan); {
		k := int(plan[i])
		any := uint8(0)
		for _, l := range plan[i+1 : i+1+k] {
			any |= lits[l]
		}
		if any == 0 {
			return false
		}
		i += 1 + k
	}
	return true
}

// Condition states in Env.conditions.
const (
	unknown uint8 = iota
	isFalse
	isTrue
)

// lit evaluates l, its condition at most once per decision.
func (e *Env) lit(l lit) bool {
	i := l.cond()
	s := e.condState[i]
	if s == unknown {
		s = isFalse
		if e.conds.fns[i](e) {
			s = isTrue
		}
		e.condState[i] = s
		e.condsUsed = true
	}
	return (s == isTrue) != l.negated()
}

// screen is one channel's offer index: for each condition some of the
// channel's offers require, as a clause of their own, to hold (or not to),
// the offers its answer rules out.
type screen struct {
	n int // offers of the channel
	// listings are the hot fields of the channel's offers, by position
	// (listings.go).
	listings []Listing
	// small: the channel's offers are few enough that judging each plan in
	// turn, its conditions answered as its clauses ask for them, costs
	// less than answering every condition the index holds up front.
	small bool
	conds []screenCond
	// ors holds the clauses of several literals of the offers' plans,
	// those of the offer at position p at ors[orsAt[p]:orsAt[p+1]]: an
	// offer the conditions do not rule out is checked against them here,
	// where they lie together, rather than by visiting the offer
	// (BenchmarkDecideOffers/5000: 298 offers visited for 155 eligible
	// without).
	ors   []lit
	orsAt []int32
	// orsConds are the conditions ors names, each once: Screen answers
	// them all before checking the offers left, so that each check reads
	// its literals' answers with no test for an unknown one (holdsKnown).
	orsConds []int
}

type screenCond struct {
	cond int
	// ifTrue are the offers with a clause !cond, ruled out when cond
	// holds; ifFalse those with a clause cond; all, both.
	ifTrue, ifFalse, all offerSet
}

// offerSet is a set of positions among a channel's offers: a list when
// it is short, a bitmap (a bit per offer) when the list would hold more
// entries than the bitmap words, so ruling a set out costs at most one
// word operation per 64 offers of the channel.
type offerSet struct {
	list []int32
	bits []uint64
}

func (s *offerSet) add(pos int) { s.list = append(s.list, int32(pos)) }

// seal picks the set's form for a channel of n offers.
func (s *offerSet) seal(n int) {
	words := (n + 63) / 64
	if len(s.list) <= words {
		return
	}
	s.bits = make([]uint64, words)
	for _, p := range s.list {
		s.bits[p>>6] |= 1 << (p & 63)
	}
	s.list = nil
}

// anyAlive reports whether one of the offers of the set, a list, is in
// alive.
func (s *offerSet) anyAlive(alive []uint64) bool {
	for _, p := range s.list {
		if alive[p>>6]&(1<<(p&63)) != 0 {
			return true
		}
	}
	return false
}

// ruleOut clears the set's offers from alive.
func (s *offerSet) ruleOut(alive []uint64) {
	if s.bits != nil {
		for i, w := range s.bits {
			alive[i] &^= w
		}
		return
	}
	for _, p := range s.list {
		alive[p>>6] &^= 1 << (p & 63)
	}
}

// index builds c's per-channel offer index, once its offers are compiled.
func (c *Catalog) index(conds *conditions) {
	c.conds = conds
	if conds != nil {
		conds.index = nil // compiled: only the functions are kept
	}
	c.screens = make([]screen, len(c.Channels))
	for chi, offers := range c.byChannel {
		sc := &c.screens[chi]
		sc.n = len(offers)
		sc.small = len(offers) <= smallChannel
		sc.orsAt = make([]int32, len(offers)+1)
		byCond := map[int]int{} // condition → index in sc.conds
		orsCond := map[int]bool{}
		for pos, o := range offers {
			sc.orsAt[pos] = int32(len(sc.ors))
			if o.Eligible == nil || o.Eligible.plan == nil {
				continue
			}
			o.planned = true
			plan := o.Eligible.plan
			for i := 0; i < len(plan); i += 1 + int(plan[i]) {
				if plan[i] != 1 {
					sc.ors = append(sc.ors, plan[i:i+1+int(plan[i])]...)
					for _, l := range plan[i+1 : i+1+int(plan[i])] {
						if !orsCond[l.cond()] {
							orsCond[l.cond()] = true
							sc.orsConds = append(sc.orsConds, l.cond())
						}
					}
					continue
				}
				l := plan[i+1]
				ci, ok := byCond[l.cond()]
				if !ok {
					ci = len(sc.conds)
					byCond[l.cond()] = ci
					sc.conds = append(sc.conds, screenCond{cond: l.cond()})
				}
				if l.negated() {
					sc.conds[ci].ifTrue.add(pos)
				} else {
					sc.conds[ci].ifFalse.add(pos)
				}
				sc.conds[ci].all.add(pos)
			}
		}
		sc.orsAt[len(offers)] = int32(len(sc.ors))
		sc.listings = listings(c.Channels[chi], offers)
		// The conditions most offers need come first: once they have
		// ruled out what they rule out, a condition none of whose offers
		// is left is not asked, as a rule's first false clause ends it.
		slices.SortStableFunc(sc.conds, func(a, b screenCond) int { return len(b.all.list) - len(a.all.list) })
		for i := range sc.conds {
			sc.conds[i].ifTrue.seal(sc.n)
			sc.conds[i].ifFalse.seal(sc.n)
			sc.conds[i].all.seal(sc.n)
		}
	}
}

// Screen returns the offers listed for ch, in declaration order, that may
// be eligible for env: it leaves out exactly the offers whose planned
// eligible rule is false, so an offer it returns that is Planned is
// eligible, and keeps every offer whose rule is not planned, for
// Rule.Eval to judge. It evaluates each condition the channel's offers
// need at most once and costs, beyond that, at most one word operation
// per 64 offers per condition and a check of the remaining offers'
// clauses of several literals. Call it once every segment is added to
// env, which must be Reset for c; the slice is env's, valid until its
// next Screen or Reset.
func (c *Catalog) Screen(ch *Channel, env *Env) []*Offer {
	offers := c.byChannel[ch.Index]
	out := env.screened[:0]
	for _, pos := range c.ScreenPositions(ch, env) {
		out = append(out, offers[pos])
	}
	env.screened = out
	return out
}

// smallChannel is the most offers a channel may list for Screen to judge
// them one by one, each rule stopping at its first false conjunct, rather
// than answer up front the conditions the index holds. CPU of the
// segments and Screen of a web decision, generated catalogs (20
// segments), index vs one by one: 4 web offers 799 vs 675 ns, 15: 897 vs
// 742 ns, 20: 803 vs 857 ns, 31: 1.10 vs 1.12 µs, 45: 1.35 vs 1.97 µs.
const smallChannel = 16

// ScreenPositions is Screen answering with the offers' positions among
// Listings(ch), in increasing order, so that a decision reads the hot
// fields of the offers it judges from one array. The slice is env's,
// valid until its next Screen, ScreenPositions or Reset.
func (c *Catalog) ScreenPositions(ch *Channel, env *Env) []int32 {
	offers := c.byChannel[ch.Index]
	out := env.positions[:0]
	if c.conds == nil {
		for pos := range offers {
			out = append(out, int32(pos)) // nothing planned
		}
		env.positions = out
		return out
	}
	sc := &c.screens[ch.Index]
	if env.conds != c.conds || sc.small {
		// env is not Reset for c, or the channel lists few offers: each
		// planned rule judges its offer, on the specialised evaluator
		// that planned rules run on, stopping at its first false
		// conjunct.
		for pos, o := range offers {
			if !o.planned || o.Eligible.fast(env) {
				out = append(out, int32(pos))
			}
		}
		env.positions = out
		return out
	}
	words := (sc.n + 63) / 64
	if cap(env.seen) < words {
		env.seen = make([]uint64, words)
	}
	alive := env.seen[:words]
	for i := range alive {
		alive[i] = ^uint64(0)
	}
	if tail := sc.n & 63; tail != 0 {
		alive[words-1] = 1<<tail - 1
	}
	for i := range sc.conds {
		sco := &sc.conds[i]
		if sco.all.bits == nil && !sco.all.anyAlive(alive) {
			continue // checking a bitmap costs what ruling out does
		}
		if env.lit(lit(sco.cond << 1)) {
			sco.ifTrue.ruleOut(alive)
		} else {
			sco.ifFalse.ruleOut(alive)
		}
	}
	// With more offers left than conditions their clauses of several
	// literals name, answering those conditions up front costs less than
	// each check branching on an unknown answer (BenchmarkDecideOffers/5000:
	// 297 offers left, 68 such conditions; Screen 11.6 → 10.1 µs of CPU).
	left := 0
	for _, w := range alive {
		left += bits.OnesCount64(w)
	}
	var lits []uint8
	if left >= len(sc.orsConds) {
		lits = env.answerAll(sc.orsConds)
	}
	for w, word := range alive {
		for word != 0 {
			pos := w<<6 | bits.TrailingZeros64(word)
			word &= word - 1
			ors := sc.ors[sc.orsAt[pos]:sc.orsAt[pos+1]]
			if len(ors) == 0 || (lits != nil && holdsKnown(ors, lits)) || (lits == nil && env.holds(ors)) {
				out = append(out, int32(pos))
			}
		}
	}
	env.positions = out
	return out
}

// Planned reports whether o's eligible rule is planned over the catalog's
// conditions, so that Screen judges it: an offer Screen returns that is
// Planned is eligible.
func (o *Offer) Planned() bool { return o.planned }
