package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nextbest/nextbest/rules"
)

type validateCmd struct {
	File string `arg:"" help:"Catalog file to check."`
	budgetFlags
}

// Run prints a summary of a good catalog, or every error of a bad one,
// one per line as file:line:col: object: field: message. It checks the
// catalog within the budget serve would, timed decisions included.
func (c *validateCmd) Run(_ context.Context, e *env) error {
	budget, err := c.budget()
	if err != nil {
		return err
	}
	src, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	cat, timing, err := budget.Compile(c.File, src, time.Now())
	if err != nil {
		var errs rules.Errors
		if !errors.As(err, &errs) {
			return err
		}
		for _, ce := range errs {
			fmt.Fprintln(e.stderr, ce.Error())
		}
		fmt.Fprintf(e.stderr, "%s: %d %s\n", c.File, len(errs), plural(len(errs), "error", "errors"))
		return reportedError{err}
	}

	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%s: ok\n", c.File)
	fmt.Fprintf(w, "channels:\t%d\t%s\n", len(cat.Channels), strings.Join(cat.ChannelNames(), ", "))
	var attrs, derived int
	for _, f := range cat.Schema.Features() {
		if f.From != nil {
			derived++
		} else {
			attrs++
		}
	}
	fmt.Fprintf(w, "features:\t%d\t%d profile attributes, %d from events\n", cat.Schema.Len(), attrs, derived)
	segs := make([]string, len(cat.Segments))
	for i, s := range cat.Segments {
		segs[i] = s.Name
	}
	fmt.Fprintf(w, "segments:\t%d\t%s\n", len(cat.Segments), strings.Join(segs, ", "))
	fmt.Fprintf(w, "offers:\t%d\tby channel:\n", len(cat.Offers))
	for _, ch := range cat.Channels {
		fallback := "no fallback"
		if cat.Fallback(ch) != nil {
			fallback = "fallback"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", ch.Name, strconv.Itoa(len(cat.OffersFor(ch))), fallback)
	}
	fmt.Fprintf(w, "ranking:\t%s\n", rankingSummary(cat))
	if p := cat.Policy; p.MaxOffers > 0 {
		fmt.Fprintf(w, "contact policy:\t%d offers within %s\n", p.MaxOffers, rules.FormatDuration(p.Within))
	}
	for _, x := range cat.Experiments {
		vs := make([]string, len(x.Variants))
		for i, v := range x.Variants {
			vs[i] = fmt.Sprintf("%s (%g)", v.Name, v.Weight)
			if v.Holdout {
				vs[i] += " [holdout]"
			}
		}
		fmt.Fprintf(w, "experiment %s:\t%.0f%% of customers%s\t%s\n", x.ID, 100*x.Traffic, scopeOf(x), strings.Join(vs, ", "))
	}
	fmt.Fprintf(w, "budget:\texpressions cost %d of %d steps", cat.ExprCost(), budget.Rules.MaxExprCost)
	if timing.Channel != "" {
		fmt.Fprintf(w, "; a decision takes %v on %s (median, the slowest channel), budget %v", timing.Median.Round(time.Microsecond), timing.Channel, timing.Budget)
	}
	fmt.Fprintln(w)
	return w.Flush()
}

// catalogError explains a catalog that does not load, listing every error.
func catalogError(path string, err error) error {
	var errs rules.Errors
	if errors.As(err, &errs) {
		return fmt.Errorf("catalog %s has %d %s:\n%w", path, len(errs), plural(len(errs), "error", "errors"), err)
	}
	return fmt.Errorf("catalog: %w", err)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// rankingSummary says how the catalog ranks eligible offers.
func rankingSummary(cat *rules.Catalog) string {
	a := cat.Arbitration
	var how string
	switch {
	case a.Static:
		return "static: value x weight"
	case a.Score != nil:
		how = "arbitration " + strings.Join(strings.Fields(a.Score.Source), " ")
	default:
		how = "propensity x value x weight"
	}
	lr := cat.Learning
	how += fmt.Sprintf("; propensities learned (%s, prior %g over %g impressions", lr.Explore, lr.Prior.Rate, lr.Prior.Strength)
	if !lr.LearnBy.IsZero() {
		how += ", by " + lr.LearnBy.String()
	}
	if m := lr.Model; m != nil {
		names := make([]string, len(m.Terms))
		for i, t := range m.Terms {
			names[i] = t.Name
		}
		what := strings.Join(names, ", ")
		if m.Segments && len(cat.Segments) > 0 {
			what = strings.TrimSuffix(fmt.Sprintf("the %d segments, %s", len(cat.Segments), what), ", ")
		}
		how += fmt.Sprintf(", and a model over %s: %d terms, exploration %g", what, m.Dim(), m.Exploration)
	}
	how += ")"
	if cat.Sticky > 0 {
		how += "; sticky " + rules.FormatDuration(cat.Sticky)
	}
	return how
}

// scopeOf says which decisions a scoped experiment assigns, "" for every
// decision.
func scopeOf(x *rules.Experiment) string {
	var scope []string
	if x.Channels != nil {
		names := make([]string, len(x.Channels))
		for i, ch := range x.Channels {
			names[i] = ch.Name
		}
		scope = append(scope, "on "+strings.Join(names, ", "))
	}
	if x.Segment != nil {
		scope = append(scope, "in segment "+x.Segment.Name)
	}
	if x.Global {
		scope = append(scope, "every channel, every experiment")
	}
	if len(scope) == 0 {
		return ""
	}
	return " (" + strings.Join(scope, "; ") + ")"
}
