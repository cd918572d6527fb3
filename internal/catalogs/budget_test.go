package catalogs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// TestBudgetAcceptsKnownCatalogs checks that the catalogs we ship and
// test with pass the default budget, timed decisions included.
func TestBudgetAcceptsKnownCatalogs(t *testing.T) {
	files, err := filepath.Glob("../../rules/testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../examples/retail/catalog.yaml")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := (Budget{}).Compile(f, src, catalogtest.Epoch); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
	src := catalogtest.Generate(catalogtest.Options{})
	if _, timing, err := (Budget{}).Compile("generated.yaml", src, catalogtest.Epoch); err != nil {
		t.Errorf("generated catalog refused: %v", err)
	} else if timing.Channel == "" || timing.Median <= 0 || timing.Budget != DefaultDecideBudget {
		t.Errorf("generated catalog: timing %+v, want the slowest channel's median against the default budget", timing)
	}
}

// TestBudgetTimesDecisions refuses a catalog whose decisions take longer
// than the budget (a nanosecond here, so that no catalog is fast enough
// and the test does not depend on the machine), and accepts it when
// decisions are not timed.
func TestBudgetTimesDecisions(t *testing.T) {
	src := catalog("A")
	_, timing, err := Budget{Decide: time.Nanosecond}.Compile("c.yaml", src, catalogtest.Epoch)
	var errs rules.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one catalog error", err)
	}
	want := []string{`c.yaml: channel "web": a decision takes `, "over the budget of 1ns (raise with --catalog-decide-budget)", "the expressions cost 0 steps"}
	for _, w := range want {
		if !strings.Contains(errs[0].Error(), w) {
			t.Errorf("error %q does not say %q", errs[0].Error(), w)
		}
	}
	if timing.Channel != "web" || timing.Median <= time.Nanosecond {
		t.Errorf("timing %+v, want web over 1ns", timing)
	}
	if _, timing, err := (Budget{Decide: -1}).Compile("c.yaml", src, catalogtest.Epoch); err != nil || timing != (Timing{}) {
		t.Errorf("untimed: got %+v, %v; want accepted, no timing", timing, err)
	}
}

// TestRegistryRefusesOverBudget checks every way in: an upload, a
// validation and the catalog file, refused for the static limits or the
// time of a decision, leave the catalog in force serving.
func TestRegistryRefusesOverBudget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	r, err := Open(Options{Now: clock(), Budget: Budget{Rules: rules.Options{MaxOffers: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	good, err := r.Load(catalog("A"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	tooMany := catalogtest.Generate(catalogtest.Options{Offers: 4, Segments: 1})
	if err := os.WriteFile(file, tooMany, 0o644); err != nil {
		t.Fatal(err)
	}
	const overOffers = "catalog has 4 offers, 1 over the limit of 3 (raise with --max-offers)"
	steps := []struct {
		name   string
		change func() error
		slow   bool // refused for the time of a decision, not a static limit
		want   string
	}{
		{"upload", func() error { _, err := r.Load(tooMany, "bob"); return err }, false, "upload:"},
		{"validate", func() error { return r.Validate(tooMany) }, false, "upload:"},
		// A server with a good version keeps it and reports the file's
		// problems (the last known good start): Start succeeds.
		{"file", func() error {
			if _, err := r.Start(file); err != nil {
				return fmt.Errorf("Start with a good version in force: %v", err)
			}
			return r.FileRejected()
		}, false, file},
		{"slow upload", func() error { _, err := r.Load(catalog("B"), "bob"); return err }, true, "over the budget of 1ns"},
		{"slow validate", func() error { return r.Validate(catalog("B")) }, true, "over the budget of 1ns"},
	}
	for _, s := range steps {
		if s.slow {
			r.budget.Decide = time.Nanosecond
		}
		err := s.change()
		var errs rules.Errors
		if !errors.As(err, &errs) || len(errs) != 1 {
			t.Fatalf("%s: got %v, want one catalog error", s.name, err)
		}
		msg := errs[0].Error()
		if !strings.Contains(msg, s.want) || !s.slow && !strings.Contains(msg, overOffers) {
			t.Errorf("%s: error %q, want %q and the limit", s.name, msg, s.want)
		}
		if got := r.Active(); got != good {
			t.Errorf("%s: in force %+v, want %+v", s.name, got, good)
		}
		if got := headline(t, r.Catalog().Load()); got != "A" {
			t.Errorf("%s: serving headline %q, want A", s.name, got)
		}
	}
}

// TestDecideTime checks the measure behind nextbest_catalog_decide_seconds:
// none before a catalog, then one per catalog in force.
func TestDecideTime(t *testing.T) {
	r, err := Open(Options{Now: clock()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.DecideTime(); got != 0 {
		t.Errorf("before a catalog: %v, want 0", got)
	}
	for _, h := range []string{"A", "B"} {
		if _, err := r.Load(catalog(h), "alice"); err != nil {
			t.Fatal(err)
		}
		first := r.DecideTime()
		if first <= 0 {
			t.Errorf("catalog %s: %v, want a time", h, first)
		}
		if again := r.DecideTime(); again != first {
			t.Errorf("catalog %s asked again: %v, want %v (timed once per catalog)", h, again, first)
		}
		if tc := r.timed.Load(); tc == nil || tc.cat != r.Catalog().Load() {
			t.Errorf("catalog %s: the time kept is not the catalog in force's", h)
		}
	}
}

// unlimited lifts every static limit, so that a slow catalog compiles.
var unlimited = rules.Options{MaxOffers: 1 << 30, MaxSegments: 1 << 30, MaxExperiments: 1 << 30, MaxContentBytes: 1 << 30, MaxExprCost: 1 << 40}

// BenchmarkDecideSlowCatalog is what a decision cost before catalogs had
// a budget, on the catalogs of 1,500 slow offers and of 1,500 slow
// segments (catalogtest.Slow), each rule legal on its own.
func BenchmarkDecideSlowCatalog(b *testing.B) {
	for _, bc := range []struct {
		name             string
		offers, segments int
	}{{"offers=1500", 1500, 0}, {"segments=1500", 0, 1500}} {
		b.Run(bc.name, func(b *testing.B) {
			cat, err := rules.Compile("slow.yaml", catalogtest.Slow(bc.offers, bc.segments), unlimited)
			if err != nil {
				b.Fatal(err)
			}
			vecs := catalogtest.Population{}.Vectors(cat.Schema, 16)
			var eng decision.Engine
			var res decision.Result
			req := decision.Request{Channel: "web", Now: catalogtest.Epoch}
			i := 0
			for b.Loop() {
				if err := eng.Decide(cat, vecs[i%len(vecs)], &req, &res); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRefuse is how long refusing a catalog over budget takes: the
// generated 1,500-offer catalog (over --max-offers, refused before any
// rule is compiled), and the 1,500 slow offers with the static limits
// lifted (refused by the timed decisions).
func BenchmarkRefuse(b *testing.B) {
	for _, bc := range []struct {
		name   string
		src    []byte
		budget Budget
	}{
		{"generated-offers=1500", catalogtest.Generate(catalogtest.Options{Offers: 1500}), Budget{}},
		{"slow-offers=1500,timed", catalogtest.Slow(1500, 0), Budget{Rules: unlimited}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := bc.budget.Compile("catalog.yaml", bc.src, catalogtest.Epoch); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
