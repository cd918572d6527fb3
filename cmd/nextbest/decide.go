package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/httpapi"
	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/rules"
)

type decideCmd struct {
	Catalog    string `default:"examples/retail/catalog.yaml" env:"NEXTBEST_CATALOG" help:"Catalog file."`
	Data       string `help:"Read the customer's record (features, contact history) and the learned statistics from this embedded store directory (not while a server has it open). Without it the customer has the schema's defaults and every offer its prior."`
	Customer   string `required:"" help:"Customer id."`
	Channel    string `required:"" help:"Channel to decide for."`
	Placement  string `help:"Placement on the channel."`
	Context    string `help:"Request context as a JSON object, e.g. '{\"page\":\"checkout\"}'."`
	Limit      int    `default:"1" help:"Offers to return, 1 to 50."`
	Explain    bool   `help:"Explain every offer's eligibility and list the customer's segments."`
	Now        string `help:"Decide as of this RFC 3339 time instead of now (with --decision-id: instead of the id's time)."`
	DecisionID string `name:"decision-id" help:"Replay the decision with this id (a server's decision_id): its id seeds the random draws, and it is decided as of the id's time (to the second) unless --now says otherwise."`
	budgetFlags
}

// Run makes one decision through the service a server decides with,
// reading nothing but what the server would read and writing nothing,
// and prints it, indented, as the HTTP API would answer it.
func (c *decideCmd) Run(ctx context.Context, e *env) error {
	req := nextbest.Request{
		CustomerID: c.Customer,
		Channel:    c.Channel,
		Placement:  c.Placement,
		Limit:      c.Limit,
		Explain:    c.Explain,
		Now:        time.Now(),
	}
	if c.Customer == "" {
		return usagef("--customer must not be empty")
	}
	if c.Limit < 1 || c.Limit > decision.MaxLimit {
		return usagef("--limit must be from 1 to %d, got %d", decision.MaxLimit, c.Limit)
	}
	if c.DecisionID != "" {
		id, err := xid.FromString(c.DecisionID)
		if err != nil {
			return usagef("--decision-id: %q is not a decision id such as d4ofq2bsrnuc73b4jn40", c.DecisionID)
		}
		req.ID, req.Now = id, id.Time()
	}
	if c.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, c.Now)
		if err != nil {
			return usagef("--now: %q is not an RFC 3339 time such as 2026-11-22T10:00:00Z", c.Now)
		}
		req.Now = t
	}
	if c.Context != "" {
		if err := json.Unmarshal([]byte(c.Context), &req.Context); err != nil || req.Context == nil {
			return usagef("--context must be a JSON object: %s", c.Context)
		}
	}

	src, err := os.ReadFile(c.Catalog)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	budget, err := c.budget()
	if err != nil {
		return err
	}
	cat, _, err := budget.Compile(c.Catalog, src, req.Now) // the catalogs serve would accept
	if err != nil {
		return catalogError(c.Catalog, err)
	}
	cat.Version = catalogs.VersionOf(src)
	var current atomic.Pointer[rules.Catalog]
	current.Store(cat)
	opts := nextbest.Options{Catalog: &current, ReadOnly: true}
	if c.Data != "" {
		store, err := c.open()
		if err != nil {
			return err
		}
		defer store.Close()
		opts.Store = store
		// The learned statistics as the store has them: what a server
		// that flushed and reloaded them decides with.
		learned := outcomes.New(store, outcomes.Options{Logger: slog.New(slog.NewTextHandler(e.stderr, nil))})
		if err := learned.Refresh(ctx); err != nil {
			return fmt.Errorf("learned statistics: %w", err)
		}
		opts.Stats = learned
	}
	svc, err := nextbest.New(opts)
	if err != nil {
		return err
	}
	var d nextbest.Decision
	if err := svc.Decide(ctx, &req, &d); err != nil {
		return err
	}
	if d.Degraded != nextbest.NotDegraded {
		return fmt.Errorf("load customer %q: the store failed (%s)", c.Customer, d.Degraded)
	}
	out := httpapi.AppendDecision(nil, &httpapi.Decision{
		ID:         d.ID,
		CustomerID: d.CustomerID,
		Catalog:    d.Catalog,
		Result:     &d.Result,
		Explain:    d.Explain,
	})
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	pretty.WriteByte('\n')
	_, err = pretty.WriteTo(e.stdout)
	return err
}

// open opens the embedded store of --data.
func (c *decideCmd) open() (*embedded.Store, error) {
	if fi, err := os.Stat(c.Data); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("--data %s: not a directory", c.Data)
	}
	store, err := embedded.Open(embedded.Options{Dir: c.Data})
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("open store: %w (is a server using %s? decide needs the store to itself)", err, c.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return store, nil
}
