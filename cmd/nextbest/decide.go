package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/httpapi"
	"github.com/nextbest/nextbest/internal/catalogs"
)

type decideCmd struct {
	Catalog   string `default:"examples/retail/catalog.yaml" env:"NEXTBEST_CATALOG" help:"Catalog file."`
	Data      string `help:"Read the customer's features from this embedded store directory (not while a server has it open). Without it the customer has the schema's defaults."`
	Customer  string `required:"" help:"Customer id."`
	Channel   string `required:"" help:"Channel to decide for."`
	Placement string `help:"Placement on the channel."`
	Context   string `help:"Request context as a JSON object, e.g. '{\"page\":\"checkout\"}'."`
	Limit     int    `default:"1" help:"Offers to return, 1 to 50."`
	Explain   bool   `help:"Explain every offer's eligibility and list the customer's segments."`
	Now       string `help:"Decide as of this RFC 3339 time instead of now."`
	budgetFlags
}

// Run makes one decision and prints it, indented, as the HTTP API would
// answer it.
func (c *decideCmd) Run(ctx context.Context, e *env) error {
	req := decision.Request{
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
	var rec *featurestore.Record
	if c.Data != "" {
		if rec, err = c.load(ctx); err != nil {
			return err
		}
	}
	id := xid.NewWithTime(req.Now)
	req.Seed = decision.SeedOf(id[:]) // as the server seeds a decision
	var res decision.Result
	var engine decision.Engine
	if err := engine.Decide(cat, rec.Features(cat.Schema, req.Now, nil), &req, &res); err != nil {
		return err
	}
	out := httpapi.AppendDecision(nil, &httpapi.Decision{
		ID:         id,
		CustomerID: req.CustomerID,
		Result:     &res,
		Explain:    req.Explain,
		Catalog:    cat.Version,
	})
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	pretty.WriteByte('\n')
	_, err = pretty.WriteTo(e.stdout)
	return err
}

// load reads the customer's record from the embedded store; nil when the
// store does not know them.
func (c *decideCmd) load(ctx context.Context) (*featurestore.Record, error) {
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
	defer store.Close()
	rec, err := store.Load(ctx, c.Customer)
	if errors.Is(err, featurestore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load customer %q: %w", c.Customer, err)
	}
	return rec, nil
}
