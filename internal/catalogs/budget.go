package catalogs

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// Budget is what a catalog may cost the decisions made with it: the
// static limits rules checks as it compiles (counts, content, expression
// cost), then the time of a few real decisions. A catalog over budget is
// refused like one with errors, whatever brought it (upload, file,
// rollback, restart), and the one in force keeps serving: a slow catalog
// would slow every decision of the server.
type Budget struct {
	// Rules are the static limits; the zero value is rules' defaults.
	Rules rules.Options
	// Decide bounds the median time of a decision of a new catalog on
	// each of its channels, timed against synthetic customers before the
	// catalog is put in force. Default 1ms (DefaultDecideBudget), some
	// twenty times what the generated 1,000-offer catalog takes; negative:
	// decisions are not timed.
	Decide time.Duration
}

// DefaultDecideBudget is the default of Budget.Decide.
const DefaultDecideBudget = time.Millisecond

// How decisions are timed: on each channel, the median of probeDecisions
// decisions, each for a different synthetic customer; a channel over
// budget is tried again, up to probeRounds times in all, and refused only
// when every median is over (or one is over ten times the budget, which
// no noise explains). Noise from a loaded machine only ever adds time, so
// the best of a few medians is what the catalog costs (and a median needs
// no warm-up: the first decision's one-time costs are one sample). The
// static limits bound a decision (to a few milliseconds at the default
// expression cost), so timing a slow catalog takes a bounded time too.
const (
	probeDecisions = 7
	probeRounds    = 3
)

// Compile compiles src, named name in errors, within b: rules.Compile
// with b.Rules, then a few decisions timed at now. A catalog over budget
// returns rules.Errors whose message names the limit, by how much it is
// over, and the flag of nextbest that raises it. The Timing is zero when
// decisions were not timed.
func (b Budget) Compile(name string, src []byte, now time.Time) (*rules.Catalog, Timing, error) {
	cat, err := rules.Compile(name, src, b.Rules)
	if err != nil {
		return nil, Timing{}, err
	}
	budget := b.Decide
	if budget == 0 {
		budget = DefaultDecideBudget
	}
	if budget < 0 {
		return cat, Timing{}, nil
	}
	t := TimeDecisions(cat, now, budget)
	t.Budget = budget
	if t.Median > budget {
		msg := fmt.Sprintf("a decision takes %v (the median for synthetic customers), %v over the budget of %v (raise with --catalog-decide-budget); the expressions cost %d steps in all",
			t.Median.Round(time.Microsecond), (t.Median - budget).Round(time.Microsecond), budget, cat.ExprCost())
		return nil, t, rules.Errors{&rules.Error{File: name, Object: fmt.Sprintf("channel %q", t.Channel), Msg: msg}}
	}
	return cat, t, nil
}

// Timing is what Budget.Compile measured of a catalog.
type Timing struct {
	Channel string        // the slowest channel
	Median  time.Duration // the median decision on it, best of the rounds
	Budget  time.Duration // what it was timed against
}

// TimeDecisions times decisions of cat at now as Budget.Compile does,
// against budget: a channel whose median is within it is not tried again.
// It returns the slowest channel's median.
func TimeDecisions(cat *rules.Catalog, now time.Time, budget time.Duration) Timing {
	vecs := catalogtest.Population{Now: now}.Vectors(cat.Schema, probeDecisions)
	ids := make([]string, probeDecisions)
	for i := range ids {
		ids[i] = "probe-" + strconv.Itoa(i)
	}
	var eng decision.Engine
	var res decision.Result
	req := decision.Request{Now: now}
	decide := func(ch string, i int) time.Duration {
		req.Channel, req.CustomerID = ch, ids[i]
		start := time.Now()
		_ = eng.Decide(cat, vecs[i], &req, &res) // the channel is the catalog's own
		return time.Since(start)
	}
	var worst Timing
	times := make([]time.Duration, 0, probeDecisions)
	for _, ch := range cat.Channels {
		best := time.Duration(-1)
		for range probeRounds {
			times = times[:0]
			over := 0
			for i := 0; i < probeDecisions && over <= probeDecisions/2; i++ {
				d := decide(ch.Name, i)
				times = append(times, d)
				if d > budget {
					over++
				}
			}
			slices.Sort(times)
			m := times[probeDecisions/2]
			if len(times) < probeDecisions {
				// Stopped once more than half were over: the median is
				// at least the least of those.
				m = times[len(times)-over]
			}
			if best < 0 || m < best {
				best = m
			}
			if best <= budget || best > 10*budget {
				break // within budget, or too far over it for noise to explain
			}
		}
		if best > worst.Median {
			worst = Timing{Channel: ch.Name, Median: best}
		}
	}
	return worst
}

// timedCatalog is a catalog and the median of its decisions.
type timedCatalog struct {
	cat    *rules.Catalog
	median time.Duration
}

// DecideTime returns the median time of a decision of the catalog in
// force on its slowest channel, timed as Budget.Compile times a new
// catalog, once per catalog (when first asked after a change: for
// metrics, so that an operator sees how close the catalog is to its
// budget). It is 0 before the first catalog.
func (r *Registry) DecideTime() time.Duration {
	cat := r.catalog.Load()
	if cat == nil {
		return 0
	}
	if t := r.timed.Load(); t != nil && t.cat == cat {
		return t.median
	}
	budget := r.budget.Decide
	if budget <= 0 {
		budget = DefaultDecideBudget
	}
	t := &timedCatalog{cat: cat, median: TimeDecisions(cat, r.now(), budget).Median}
	r.timed.Store(t)
	return t.median
}
