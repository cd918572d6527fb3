package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// Issue 10, point 4: a catalog whose rules are each legal can make every
// decision slow; the server refuses one over its budget, and the catalog
// in force keeps serving.

// TestServeRefusesCatalogOverBudget pushes catalogs of 1,500 offers and of
// 1,500 segments to the real binary: each is refused with 422 and a
// message naming the limit and by how much, and the catalog in force
// keeps serving.
func TestServeRefusesCatalogOverBudget(t *testing.T) {
	s := startServer(t, t.TempDir())
	before := s.versions().Active
	want := s.decide(`{"customer_id":"b-1","channel":"web"}`)

	tests := []struct {
		name string
		src  []byte
		want string
	}{
		{"1,500 offers", catalogtest.Generate(catalogtest.Options{Offers: 1500}), "catalog has 1500 offers, 500 over the limit of 1000 (raise with --max-offers)"},
		{"1,500 segments", catalogtest.Generate(catalogtest.Options{Segments: 1500}), "catalog has 1500 segments, 1000 over the limit of 500 (raise with --max-segments)"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/v1/admin/catalog/validate", "/v1/admin/catalog"} {
			start := time.Now()
			status, body := s.call("POST", path, string(tt.src), "Content-Type", "application/yaml")
			took := time.Since(start)
			var e struct {
				Error struct {
					Code    string
					Message string
					Errors  []struct{ Field, Message string }
				}
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || status != 422 {
				t.Fatalf("%s: POST %s: got %d %s (%v), want 422", tt.name, path, status, body, err)
			}
			if e.Error.Code != "invalid_catalog" || len(e.Error.Errors) != 1 || e.Error.Errors[0].Message != tt.want {
				t.Errorf("%s: POST %s: got %+v, want the one error %q", tt.name, path, e.Error, tt.want)
			}
			t.Logf("%s: POST %s (%d KiB) refused in %v", tt.name, path, len(tt.src)>>10, took.Round(time.Millisecond))
		}
	}
	if got := s.versions().Active; got != before {
		t.Errorf("in force after the refusals: %s, want %s", got, before)
	}
	got := s.decide(`{"customer_id":"b-1","channel":"web"}`)
	if strings.Join(got.offerIDs(), ",") != strings.Join(want.offerIDs(), ",") {
		t.Errorf("decision after the refusals: offers %v, want %v", got.offerIDs(), want.offerIDs())
	}

	// How close the catalog in force is to its decision budget.
	_, metrics := s.call("GET", "/metrics", "")
	var seconds float64
	for line := range strings.Lines(metrics) {
		if rest, ok := strings.CutPrefix(line, "nextbest_catalog_decide_seconds "); ok {
			if _, err := fmt.Sscan(rest, &seconds); err != nil {
				t.Errorf("%q: %v", line, err)
			}
		}
	}
	if seconds <= 0 {
		t.Errorf("nextbest_catalog_decide_seconds is %v, want the time of a decision of the catalog in force", seconds)
	}
}

// TestCatalogBudgetFlags checks that validate and serve apply the budget
// flags: a limit lowered below the test catalog refuses it, naming the
// flag; a decision budget of a nanosecond refuses it for its timing (no
// catalog is that fast, whatever the machine).
func TestCatalogBudgetFlags(t *testing.T) {
	code, out, errs := runBinary(t, "validate", testCatalog)
	if code != 0 || !strings.Contains(out, "budget:") || !strings.Contains(out, "budget 1ms") {
		t.Errorf("validate: exit %d, stdout %s, stderr %s; want a budget line", code, out, errs)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"validate", "--max-offers", "2", testCatalog}, testCatalog + ":"},
		{[]string{"validate", "--catalog-decide-budget", "1ns", testCatalog}, "over the budget of 1ns (raise with --catalog-decide-budget)"},
		{[]string{"validate", "--max-expr-cost", "1", testCatalog}, "over the budget of 1 (raise with --max-expr-cost)"},
		{[]string{"serve", "--insecure-no-auth", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog, "--max-offers", "2"},
			"catalog has 3 offers, 1 over the limit of 2 (raise with --max-offers)"},
		{[]string{"serve", "--insecure-no-auth", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog, "--catalog-decide-budget", "1ns"},
			"(raise with --catalog-decide-budget)"},
	}
	for _, tt := range tests {
		code, _, errs := runBinary(t, tt.args...)
		if code != 1 || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stderr %s; want 1 and %q", tt.args, code, errs, tt.want)
		}
	}
	if code, _, errs := runBinary(t, "validate", "--max-segments=-1", testCatalog); code != 2 || !strings.Contains(errs, "--max-segments is -1") {
		t.Errorf("negative limit: exit %d, stderr %s; want a usage error", code, errs)
	}
}

// TestBudgetFlagDefaults checks that the flags' defaults are the budget's.
func TestBudgetFlagDefaults(t *testing.T) {
	var c cli
	parser, err := kong.New(&c, kong.Exit(func(int) { t.Fatal("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse([]string{"validate", "x.yaml"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Validate.budget()
	if err != nil {
		t.Fatal(err)
	}
	want := catalogs.Budget{
		Rules: rules.Options{
			MaxOffers:       rules.DefaultMaxOffers,
			MaxSegments:     rules.DefaultMaxSegments,
			MaxExperiments:  rules.DefaultMaxExperiments,
			MaxContentBytes: rules.DefaultMaxContentBytes,
			MaxExprCost:     rules.DefaultMaxExprCost,
		},
		Decide: catalogs.DefaultDecideBudget,
	}
	if got != want {
		t.Errorf("flag defaults %+v, want %+v", got, want)
	}
}
