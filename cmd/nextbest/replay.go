package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/httpapi"
	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// replayCmd is `nextbest replay` (issue 14): logged decisions of a
// stopped node decided again, from its decision log and the catalog
// versions it keeps, and compared with what they answered.
type replayCmd struct {
	Data    string   `required:"" help:"The data directory of a node (stopped, or running: the log and the versions are only read): its decision log under decisions/ and its catalog versions under catalogs/."`
	IDs     []string `arg:"" optional:"" name:"decision-id" help:"Decisions to replay (their decision_id)."`
	All     bool     `help:"Replay every decision of the log: one line for each that does not replay identically, and a summary."`
	Catalog string   `help:"Also decide each one on this catalog file and show, beside the logged version's, what it would have answered and why."`
	JSON    bool     `name:"json" help:"Print one JSON object per decision (as POST /v1/admin/replay answers) instead of text."`
	budgetFlags
}

// Run replays the decisions asked for. It fails (exit status 1) when a
// decision asked for is not in the log, or any decision does not replay
// identically on its catalog version (a difference, or the version not
// kept); the differences of a --catalog are what it is for, not
// failures.
func (c *replayCmd) Run(ctx context.Context, e *env) error {
	if c.All == (len(c.IDs) > 0) {
		return usagef("name the decisions to replay, or --all (not both)")
	}
	want := make(map[string]bool, len(c.IDs))
	for _, id := range c.IDs {
		if _, err := xid.FromString(id); err != nil {
			return usagef("%q is not a decision id such as d4ofq2bsrnuc73b4jn40", id)
		}
		want[id] = false
	}
	if fi, err := os.Stat(c.Data); err != nil || !fi.IsDir() {
		return fmt.Errorf("--data %s: not a directory", c.Data)
	}
	logDir := filepath.Join(c.Data, "decisions")
	if _, err := os.Stat(logDir); err != nil {
		return fmt.Errorf("%s: no decision log (was the node run with --decision-log-sample above 0?)", logDir)
	}
	budget, err := c.budget()
	if err != nil {
		return err
	}
	versions := &versionCache{dir: filepath.Join(c.Data, "catalogs"), opts: budget.Rules, cats: map[string]versionOrErr{}}
	var proposed *rules.Catalog
	if c.Catalog != "" {
		src, err := os.ReadFile(c.Catalog)
		if err != nil {
			return fmt.Errorf("--catalog: %w", err)
		}
		if proposed, err = rules.Compile(c.Catalog, src, budget.Rules); err != nil {
			return catalogError(c.Catalog, err)
		}
		proposed.Version = catalogs.VersionOf(src)
	}

	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	var n, identical, failed int
	// The decisions asked for are found by their ids, not decoded one
	// by one (decisionlog.Find).
	entries := decisionlog.Read(logDir)
	if !c.All {
		entries = decisionlog.Find(logDir, c.IDs)
	}
	for entry, err := range entries {
		if err != nil {
			fmt.Fprintf(e.stderr, "replay: %v\n", err)
			continue
		}
		if !c.All {
			if done, asked := want[entry.ID]; !asked || done {
				continue
			}
			want[entry.ID] = true
		}
		n++
		logged, missing := versions.compiled(entry.Catalog)
		if logged == nil && proposed == nil {
			failed++
			c.printFailure(out, entry.ID, fmt.Errorf("%s: cannot replay; --catalog FILE shows what FILE would answer", missing))
			continue
		}
		r, err := nextbest.ReplayEntry(entry, logged, missing, proposed)
		if err != nil {
			failed++
			c.printFailure(out, entry.ID, err)
			continue
		}
		if r.Identical() {
			identical++
		} else {
			failed++
		}
		if err := c.print(out, r); err != nil {
			return err
		}
		if !c.All && n == len(want) {
			break // every decision asked for is found
		}
	}
	var unknown []string
	for _, id := range c.IDs {
		if !want[id] {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		failed += len(unknown)
		fmt.Fprintf(e.stderr, "replay: %s not in the decision log under %s (not sampled, dropped, or past retention)\n",
			strings.Join(unknown, ", "), logDir)
	}
	if !c.JSON && (c.All || len(c.IDs) > 1) {
		fmt.Fprintf(out, "%d replayed: %d identical, %d not\n", n, identical, n-identical)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return reportedError{fmt.Errorf("%d of %d decisions did not replay identically", failed, n+len(unknown))}
	}
	return ctx.Err()
}

// versionCache compiles each catalog version of a log once.
type versionCache struct {
	dir  string
	opts rules.Options
	cats map[string]versionOrErr
}

type versionOrErr struct {
	cat     *rules.Catalog
	missing string
}

// compiled returns the catalog of version id, or nil and why not.
func (v *versionCache) compiled(id string) (*rules.Catalog, string) {
	if c, ok := v.cats[id]; ok {
		return c.cat, c.missing
	}
	var c versionOrErr
	src, err := catalogs.ReadVersion(v.dir, id)
	if err == nil {
		if c.cat, err = rules.Compile(filepath.Join(v.dir, id+".yaml"), src, v.opts); err == nil {
			c.cat.Version = id
		} else {
			err = fmt.Errorf("catalog version %s no longer compiles: %w", id, err)
		}
	}
	if err != nil {
		c.missing = err.Error()
	}
	v.cats[id] = c
	return c.cat, c.missing
}

func (c *replayCmd) printFailure(out io.Writer, id string, err error) {
	if c.JSON {
		fmt.Fprintf(out, "{\"decision_id\":%s,\"error\":%s}\n", strconv.Quote(id), strconv.Quote(err.Error()))
		return
	}
	fmt.Fprintf(out, "%s: %v\n", id, err)
}

// print prints one replay: with --json its JSON; with --all a line if
// it is not identical; else the logged answer, the replayed one and the
// proposed one, explained side by side.
func (c *replayCmd) print(out io.Writer, r *nextbest.Replay) error {
	if c.JSON {
		b, err := httpapi.AppendReplay(nil, r)
		if err != nil {
			return err
		}
		_, err = out.Write(append(b, '\n'))
		return err
	}
	e := r.Entry
	if c.All {
		if !r.Identical() {
			fmt.Fprintf(out, "%s: %s\n", e.ID, verdict(r))
		}
		return nil
	}
	who := e.CustomerID
	if who == "" {
		who = "(anonymous)"
	}
	fmt.Fprintf(out, "decision %s at %s: customer %s, channel %s", e.ID, e.Time.Format("2006-01-02T15:04:05.000Z07:00"), who, e.Channel)
	if e.Placement != "" {
		fmt.Fprintf(out, ", placement %s", e.Placement)
	}
	fmt.Fprintf(out, ", limit %d, catalog %s\n", e.Limit, e.Catalog)
	fmt.Fprintf(out, "  logged:   %s\n", loggedOffers(e))
	if r.Replayed != nil {
		fmt.Fprintf(out, "  replayed: %s\n", replayedOffers(r.Replayed))
	}
	fmt.Fprintf(out, "  %s\n", verdict(r))
	if r.Proposed != nil {
		fmt.Fprintf(out, "  proposed catalog %s: %s\n", r.Proposed.Catalog, replayedOffers(r.Proposed))
		if len(r.ProposedDifferences) == 0 {
			fmt.Fprintf(out, "    the logged answer\n")
		}
		for _, d := range r.ProposedDifferences {
			fmt.Fprintf(out, "    %s\n", d)
		}
		for _, f := range r.Proposed.Defaulted {
			fmt.Fprintf(out, "    feature %s at its default: %s\n", f.Name, f.Reason)
		}
		if len(r.Proposed.Unlearned) > 0 {
			fmt.Fprintf(out, "    at their prior (the log has no learned counts for them): %s\n", strings.Join(r.Proposed.Unlearned, ", "))
		}
		if n := r.Proposed.OmittedContacts; n > 0 {
			fmt.Fprintf(out, "    reads further back than the log holds: %d older contacts were not logged, its caps and suppressions counted without them\n", n)
		}
	}
	printExplains(out, r)
	return nil
}

// verdict is "identical", or the differences, or why it was not replayed.
func verdict(r *nextbest.Replay) string {
	switch {
	case r.Replayed == nil:
		return "not replayed: " + r.Missing
	case len(r.Differences) == 0:
		return "identical"
	}
	ds := make([]string, len(r.Differences))
	for i, d := range r.Differences {
		ds[i] = d.String()
	}
	return "differs: " + strings.Join(ds, "; ")
}

func loggedOffers(e *decisionlog.Entry) string {
	if len(e.Offers) == 0 {
		return "no offers"
	}
	s := make([]string, len(e.Offers))
	for i, o := range e.Offers {
		s[i] = fmt.Sprintf("%s (score %s, p %s)", o.ID, short(o.Score), short(o.Propensity))
	}
	return strings.Join(s, ", ")
}

func replayedOffers(re *nextbest.Reenactment) string {
	res := &re.Result
	if len(res.Offers) == 0 {
		if res.Suppressed.Reason != decision.Chosen {
			return "no offers (" + string(res.Suppressed.Reason) + ")"
		}
		return "no offers"
	}
	s := make([]string, len(res.Offers))
	for i, o := range res.Offers {
		s[i] = fmt.Sprintf("%s (score %s, p %s)", o.Offer.ID, short(o.Score), short(o.Selection))
	}
	return strings.Join(s, ", ")
}

func short(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// printExplains prints why each offer was or was not chosen, the
// logged version's beside the proposed catalog's.
func printExplains(out io.Writer, r *nextbest.Replay) {
	var runs []*nextbest.Reenactment
	var heads []string
	if r.Replayed != nil {
		runs, heads = append(runs, r.Replayed), append(heads, "catalog "+r.Replayed.Catalog+" (logged)")
	}
	if r.Proposed != nil {
		runs, heads = append(runs, r.Proposed), append(heads, "catalog "+r.Proposed.Catalog+" (proposed)")
	}
	if len(runs) == 0 {
		return
	}
	// Every offer either catalog explains, in the order they declare
	// them, but those no catalog offers on the channel.
	var offers []string
	seen := map[string]bool{}
	why := make([]map[string]string, len(runs))
	for i, re := range runs {
		why[i] = map[string]string{}
		for _, x := range re.Result.Explain {
			if x.Reason == decision.WrongChannel {
				continue
			}
			if !seen[x.OfferID] {
				seen[x.OfferID] = true
				offers = append(offers, x.OfferID)
			}
			why[i][x.OfferID] = explainLine(&x, &re.Result)
		}
	}
	width := len("offer")
	for _, o := range offers {
		width = max(width, len(o))
	}
	colw := 44
	row := func(first string, cols []string) {
		line := fmt.Sprintf("  %-*s", width, first)
		for i, c := range cols {
			if i < len(cols)-1 {
				c = fmt.Sprintf("%-*s", colw, c)
			}
			line += "  " + c
		}
		fmt.Fprintln(out, line)
	}
	row("offer", heads)
	for _, o := range offers {
		cols := make([]string, len(runs))
		for i := range runs {
			w, ok := why[i][o]
			if !ok {
				w = "(not offered here)"
			}
			cols[i] = w
		}
		row(o, cols)
	}
}

// explainLine says in a few words why x was or was not chosen.
func explainLine(x *decision.Explanation, res *decision.Result) string {
	if x.Eligible && x.Reason == decision.Chosen {
		rank := 0
		for i, o := range res.Offers {
			if o.Offer.ID == x.OfferID {
				rank = i + 1
			}
		}
		s := fmt.Sprintf("chosen #%d, score %s", rank, short(x.Score))
		if x.Sticky {
			s += ", sticky"
		}
		if x.Exploring {
			s += ", exploring"
		}
		return s
	}
	s := string(x.Reason)
	switch {
	case x.Eligible:
		s += ", score " + short(x.Score)
	case x.Error != "":
		s += " (" + x.Error + ")"
	case x.Rule != "":
		s += " (" + x.Rule + ")"
	}
	return s
}
