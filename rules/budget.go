package rules

// The catalog's budget: what a whole catalog may cost, decided when it is
// loaded.
//
// The checks of safety.go hold per expression, and a thousand expressions
// each just inside them make every decision take most of a second (1,500
// offers whose rule loops 5,000 times: 0.84 s a decision). Every segment
// rule runs in every decision, and every eligible rule of the channel's
// offers, so what a decision costs grows with the sum. Options bounds the
// sum: the number of offers, segments and experiments (counted before any
// expression is compiled, so an oversized catalog is refused quickly), the
// bytes of content, and the total cost of the expressions in steps (see
// safety.go), an arbitration expression counted once per offer since it
// scores each. The defaults leave room of several times the largest
// catalogs we know of; an operator raises them with the nextbest flag
// each message names.
//
// These are static bounds; the server also times a few decisions of a new
// catalog before putting it in force (internal/catalogs).

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Options configures Compile. A zero field takes its default; a negative
// one is an error.
type Options struct {
	// MaxOffers bounds the offers of a catalog. Default 1000
	// (DefaultMaxOffers).
	MaxOffers int
	// MaxSegments bounds the segments of a catalog, which are all
	// evaluated in every decision. Default 500 (DefaultMaxSegments).
	MaxSegments int
	// MaxExperiments bounds the experiments of a catalog. Default 50
	// (DefaultMaxExperiments).
	MaxExperiments int
	// MaxContentBytes bounds the content of every offer and default, as
	// the JSON decisions carry. Default 4 MiB (DefaultMaxContentBytes).
	MaxContentBytes int
	// MaxExprCost bounds the summed cost of the catalog's expressions, in
	// steps (safety.go), an arbitration expression counted once per
	// offer. Default 200,000 (DefaultMaxExprCost), about 2 ms of decision
	// on expr's VM at the worst (some 12 ns a step): the example retail
	// catalog costs 529, the generated 1,000-offer, 200-segment one
	// 34,000.
	MaxExprCost int
}

// Option defaults.
const (
	DefaultMaxOffers       = 1000
	DefaultMaxSegments     = 500
	DefaultMaxExperiments  = 50
	DefaultMaxContentBytes = 4 << 20
	DefaultMaxExprCost     = 200_000
)

// withDefaults returns o with every zero field at its default, or the
// error of a negative one.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	for _, f := range []struct {
		v    *int
		def  int
		name string
	}{
		{&o.MaxOffers, DefaultMaxOffers, "MaxOffers"},
		{&o.MaxSegments, DefaultMaxSegments, "MaxSegments"},
		{&o.MaxExperiments, DefaultMaxExperiments, "MaxExperiments"},
		{&o.MaxContentBytes, DefaultMaxContentBytes, "MaxContentBytes"},
		{&o.MaxExprCost, DefaultMaxExprCost, "MaxExprCost"},
	} {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("%s is %d, must not be negative", f.name, *f.v))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("rules: %w", err)
	}
	return o, nil
}

// overCounts reports the offers, segments and experiments of the catalog
// root beyond the limits, before anything is compiled: true when there
// are too many of one (and compiling them would be wasted time).
func (l *loader) overCounts(root map[string]*yaml.Node) bool {
	l.opts, _ = l.opts.withDefaults() // a loader made by a test has none; Compile refused negative ones
	over := false
	for _, f := range []struct {
		field, flag string
		max         int
	}{
		{"segments", "--max-segments", l.opts.MaxSegments},
		{"offers", "--max-offers", l.opts.MaxOffers},
		{"experiments", "--max-experiments", l.opts.MaxExperiments},
	} {
		n := root[f.field]
		if n == nil {
			continue
		}
		count := len(n.Content)
		if n.Kind == yaml.MappingNode {
			count /= 2
		}
		if count > f.max {
			l.errorf(n, "", f.field, "catalog has %d %s, %d over the limit of %d (raise with %s)", count, f.field, count-f.max, f.max, f.flag)
			over = true
		}
	}
	return over
}

// overBudget reports the content and expression cost of c beyond the
// limits.
func (l *loader) overBudget(c *Catalog) {
	size := 0
	for _, o := range c.Offers {
		for _, ct := range o.content {
			if ct != nil {
				size += len(ct.JSON)
			}
		}
	}
	for _, ct := range c.defaults {
		if ct != nil {
			size += len(ct.JSON)
		}
	}
	if size > l.opts.MaxContentBytes {
		l.errorf(nil, "", "content", "content is %d bytes as JSON, %d over the limit of %d (raise with --max-content-bytes)", size, size-l.opts.MaxContentBytes, l.opts.MaxContentBytes)
	}
	costs := exprCosts(c)
	total := 0
	for _, x := range costs {
		total = satAdd(total, x.cost)
	}
	c.cost = total
	if total <= l.opts.MaxExprCost {
		return
	}
	slices.SortStableFunc(costs, func(a, b exprCost) int { return b.cost - a.cost })
	var top []string
	for _, x := range costs[:min(3, len(costs))] {
		top = append(top, fmt.Sprintf("%s (line %d) %d", x.what, x.line, x.cost))
	}
	l.errorf(nil, "", "", "total expression cost %d steps, %d over the budget of %d (raise with --max-expr-cost); costliest: %s",
		total, total-l.opts.MaxExprCost, l.opts.MaxExprCost, strings.Join(top, ", "))
}

// exprCost is what one expression of a catalog costs a decision.
type exprCost struct {
	what string // e.g. `offer "x" eligible`
	line int
	cost int
}

// exprCosts lists what every expression of c costs a decision.
func exprCosts(c *Catalog) []exprCost {
	var out []exprCost
	for _, s := range c.Segments {
		out = append(out, exprCost{fmt.Sprintf("segment %q", s.Name), s.Rule.Line, s.Rule.cost})
	}
	for _, o := range c.Offers {
		if o.Eligible != nil {
			out = append(out, exprCost{fmt.Sprintf("offer %q eligible", o.ID), o.Eligible.Line, o.Eligible.cost})
		}
	}
	score := func(what string, a *Arbitration) {
		if a != nil && a.Score != nil {
			out = append(out, exprCost{what, a.Score.Line, satMul(a.Score.cost, max(len(c.Offers), 1))})
		}
	}
	score("arbitration", &c.Arbitration)
	for _, x := range c.Experiments {
		for _, v := range x.Variants {
			score(fmt.Sprintf("experiment %q variant %q arbitration", x.ID, v.Name), v.Arbitration)
		}
	}
	return out
}

// ExprCost is the summed cost of c's expressions, in steps, as
// Options.MaxExprCost bounds it.
func (c *Catalog) ExprCost() int { return c.cost }
