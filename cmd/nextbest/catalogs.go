package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/rules"
)

// catalogFlags configure how serve keeps its catalogs: the versions kept
// for rollback, the watch on the catalog file, the audit log.
type catalogFlags struct {
	AuditLog       string `name:"audit-log" env:"NEXTBEST_AUDIT_LOG" help:"Audit log, JSON lines: catalog changes (uploads, reloads, rollbacks, rejected pushes) and key management (default: <data>/audit.log)."`
	CatalogHistory int    `name:"catalog-history" default:"50" env:"NEXTBEST_CATALOG_HISTORY" help:"Catalog versions kept under <data>/catalogs for rollback; they survive a restart."`
	WatchCatalog   bool   `name:"watch-catalog" default:"true" negatable:"" env:"NEXTBEST_WATCH_CATALOG" help:"Reload the catalog file when it changes (--no-watch-catalog: only at startup and through POST /v1/admin/catalog)."`
}

// budgetFlags bound what a catalog may cost the decisions made with it
// (catalogs.Budget); serve and validate share them, so that validate
// refuses what the server would. The defaults are rules' and catalogs'
// (a test checks they agree).
type budgetFlags struct {
	MaxOffers           int           `name:"max-offers" default:"1000" env:"NEXTBEST_MAX_OFFERS" help:"Most offers a catalog may have."`
	MaxSegments         int           `name:"max-segments" default:"500" env:"NEXTBEST_MAX_SEGMENTS" help:"Most segments a catalog may have; every one is evaluated in every decision."`
	MaxExperiments      int           `name:"max-experiments" default:"50" env:"NEXTBEST_MAX_EXPERIMENTS" help:"Most experiments a catalog may have."`
	MaxContentBytes     byteSize      `name:"max-content-bytes" default:"4MiB" env:"NEXTBEST_MAX_CONTENT_BYTES" help:"Most bytes of content (as JSON) of all offers and defaults of a catalog."`
	MaxExprCost         int           `name:"max-expr-cost" default:"200000" env:"NEXTBEST_MAX_EXPR_COST" help:"Most steps the expressions of a catalog may cost a decision in all (nextbest validate prints a catalog's cost)."`
	CatalogDecideBudget time.Duration `name:"catalog-decide-budget" default:"1ms" env:"NEXTBEST_CATALOG_DECIDE_BUDGET" help:"Longest median decision time of a new catalog on any channel, timed against synthetic customers before it is put in force; a slower catalog is refused (0: the default, 1ms; negative: not timed)."`
}

// budget returns the catalog budget the flags set.
func (f *budgetFlags) budget() (catalogs.Budget, error) {
	for _, v := range []struct {
		name string
		n    int64
	}{
		{"--max-offers", int64(f.MaxOffers)}, {"--max-segments", int64(f.MaxSegments)},
		{"--max-experiments", int64(f.MaxExperiments)}, {"--max-content-bytes", int64(f.MaxContentBytes)},
		{"--max-expr-cost", int64(f.MaxExprCost)},
	} {
		if v.n < 1 {
			return catalogs.Budget{}, usagef("%s is %d; it must be at least 1", v.name, v.n)
		}
	}
	if f.MaxContentBytes > math.MaxInt32 {
		return catalogs.Budget{}, usagef("--max-content-bytes is %d; it must be at most 2GiB", f.MaxContentBytes)
	}
	return catalogs.Budget{
		Rules: rules.Options{
			MaxOffers:       f.MaxOffers,
			MaxSegments:     f.MaxSegments,
			MaxExperiments:  f.MaxExperiments,
			MaxContentBytes: int(f.MaxContentBytes),
			MaxExprCost:     f.MaxExprCost,
		},
		Decide: f.CatalogDecideBudget,
	}, nil
}

// catalogSetup is the catalog registry serve runs, with the audit log it
// writes to.
type catalogSetup struct {
	registry *catalogs.Registry
	audit    *catalogs.Audit // shared with whatever else is audited
	// watch, when not nil, reloads the catalog file when it changes,
	// until its context ends.
	watch func(context.Context) error
	close func()
}

// openCatalogs opens the audit log and the versions kept under
// <data>/catalogs, and puts the catalog file in force, unless it is
// unchanged since the last run and a version uploaded or rolled back to
// since is in force: that one stays. A catalog file with problems is an
// error listing every one.
func openCatalogs(c *serveCmd, log *slog.Logger) (*catalogSetup, error) {
	if c.CatalogHistory < 1 {
		return nil, usagef("--catalog-history is %d; keep at least 1", c.CatalogHistory)
	}
	budget, err := c.budget()
	if err != nil {
		return nil, err
	}
	auditPath := c.AuditLog
	if auditPath == "" {
		auditPath = filepath.Join(c.Data, "audit.log")
	}
	audit, err := catalogs.OpenAudit(auditPath)
	if err != nil {
		return nil, err
	}
	reg, err := catalogs.Open(catalogs.Options{
		Dir:         filepath.Join(c.Data, "catalogs"),
		MaxVersions: c.CatalogHistory,
		Audit:       audit,
		Logger:      log,
		Budget:      budget,
	})
	if err == nil {
		var v catalogs.Version
		if v, err = reg.Start(c.Catalog); err == nil {
			log.Info("catalog in force", "file", c.Catalog, "version", v.ID, "by", v.Actor, "since", v.Time.Format(time.RFC3339))
			if ferr := reg.FileRejected(); ferr != nil {
				log.Error("catalog file rejected; serving the last good version instead, until the file is fixed",
					"file", c.Catalog, "version", v.ID, "err", catalogError(c.Catalog, ferr))
			} else if src, rerr := os.ReadFile(c.Catalog); rerr == nil && catalogs.VersionOf(src) != v.ID {
				log.Warn("the catalog in force is not the catalog file: it was uploaded or rolled back to after the file last changed, and stays until the file changes again or another is pushed",
					"file", c.Catalog, "file_version", catalogs.VersionOf(src), "version", v.ID)
			}
		} else {
			reg.Close()
			err = catalogError(c.Catalog, err)
		}
	}
	if err != nil {
		audit.Close()
		return nil, err
	}
	cs := &catalogSetup{
		registry: reg,
		audit:    audit,
		close: func() {
			if err := reg.Close(); err != nil {
				log.Error("close catalog versions", "err", err)
			}
			if err := audit.Close(); err != nil {
				log.Error("close audit log", "err", err)
			}
		},
	}
	if c.WatchCatalog {
		cs.watch = func(ctx context.Context) error { return reg.Watch(ctx, c.Catalog, log) }
	}
	return cs, nil
}

// observeCatalogs exports the catalog in force as
// nextbest_catalog_info{version="..."} 1 (the versions no longer in force
// at 0) and what a decision of it takes as nextbest_catalog_decide_seconds,
// counts rejected pushes and file reloads in
// nextbest_catalog_reload_failures_total, and sets
// nextbest_catalog_file_stale to 1 while the catalog file on disk was
// rejected and another version serves in its place.
func observeCatalogs(set *metrics.Set, reg *catalogs.Registry) {
	failures := set.NewCounter("nextbest_catalog_reload_failures_total")
	set.NewGauge("nextbest_catalog_decide_seconds", func() float64 { return reg.DecideTime().Seconds() })
	set.NewGauge("nextbest_catalog_file_stale", func() float64 {
		if reg.FileRejected() != nil {
			return 1
		}
		return 0
	})
	info := func(version string) {
		set.GetOrCreateGauge(fmt.Sprintf("nextbest_catalog_info{version=%q}", version), func() float64 {
			if reg.Active().ID == version {
				return 1
			}
			return 0
		})
	}
	info(reg.Active().ID)
	reg.Observe(func(e catalogs.AuditEvent) {
		switch {
		case e.Rejected:
			failures.Inc()
		case e.Version != "":
			info(e.Version)
		}
	})
}

// catalogWarnings lists, for GET /readyz, the catalog file's problems
// while it is not in force: the server is ready, on the last good version.
func catalogWarnings(reg *catalogs.Registry, file string) func() []string {
	return func() []string {
		err := reg.FileRejected()
		if err == nil {
			return nil
		}
		problems := "it cannot be used: " + err.Error()
		var errs rules.Errors
		if errors.As(err, &errs) {
			problems = fmt.Sprintf("it has %d %s (nextbest validate %s)", len(errs), plural(len(errs), "error", "errors"), file)
		}
		return []string{fmt.Sprintf("catalog file %s is not in force: %s; version %s, the last good one, is serving", file, problems, reg.Active().ID)}
	}
}
