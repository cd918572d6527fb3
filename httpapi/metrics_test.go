package httpapi

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
	"github.com/prometheus/common/model"
)

// scrape sends s traffic that makes every family the server registers
// lazily exist (a decision per channel with offers, an event of an
// unread type, errors), then returns its /metrics.
func scrape(t *testing.T, s *Server) []byte {
	t.Helper()
	for _, body := range []string{
		`{"customer_id":"h-1","channel":"web"}`,
		`{"customer_id":"h-1","channel":"app"}`,
		`{"customer_id":"h-1","channel":"fax"}`, // 400
	} {
		do(s, "POST", "/v1/decide", body)
	}
	if r := do(s, "POST", "/v1/events", `{"events":[{"customer_id":"h-1","type":"cart_add"},{"customer_id":"h-1","type":"cart-add"}]}`); r.status != 202 {
		t.Fatalf("events: got %d %s, want 202", r.status, r.body)
	}
	r := do(s, "GET", "/metrics", "")
	if r.status != 200 {
		t.Fatalf("/metrics: got %d %s", r.status, r.body)
	}
	return []byte(r.body)
}

func parseMetrics(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, text)
	}
	return families
}

// TestMetricsHelp fails for a metric family the server registers without
// a line in metricHelp, naming it: every nextbest_* family exported has
// HELP text, so promtool check metrics finds nothing to say about ours.
func TestMetricsHelp(t *testing.T) {
	set := metrics.NewSet()
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Metrics = set })
	text := scrape(t, s)

	families := parseMetrics(t, text)
	// Registered families, written or not (a histogram without
	// observations writes nothing yet), and families written by a
	// metrics writer (never registered by name).
	names := set.ListMetricNames()
	for name := range families {
		names = append(names, name)
	}
	missing := map[string]bool{}
	for _, name := range names {
		family, _, _ := strings.Cut(name, "{")
		if !strings.HasPrefix(family, "nextbest_") {
			continue
		}
		if metricHelp[family] == "" {
			missing[family] = true
		}
	}
	for family := range missing {
		t.Errorf("metric family %s has no HELP text: add a line for it to metricHelp in httpapi/metrics.go", family)
	}
	for name, f := range families {
		if strings.HasPrefix(name, "nextbest_") && f.GetHelp() != metricHelp[name] {
			t.Errorf("%s: HELP %q, want %q", name, f.GetHelp(), metricHelp[name])
		}
	}
}

// TestMetricHelpCoversSource reads every Go file of the module (tests
// aside) for string literals that start with "nextbest_", the names
// metric families are registered under wherever that happens (this
// package, cmd/nextbest, a store), even when the series is created only
// on first use: each needs a line in metricHelp, and each line of
// metricHelp a family registered somewhere.
func TestMetricHelpCoversSource(t *testing.T) {
	used := map[string]string{} // family → a file registering it
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Base(path) == "metrics.go" && filepath.Base(filepath.Dir(path)) == "httpapi" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil || !strings.HasPrefix(v, "nextbest_") {
				return true
			}
			family, _, _ := strings.Cut(v, "{")
			used[family] = fset.Position(lit.Pos()).String()
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) == 0 {
		t.Fatal("no metric family found in the source: is the walk rooted at the module?")
	}
	for family, where := range used {
		if metricHelp[family] == "" {
			t.Errorf("metric family %s (%s) has no HELP text: add a line for it to metricHelp in httpapi/metrics.go", family, where)
		}
	}
	for family := range metricHelp {
		if _, ok := used[family]; !ok {
			t.Errorf("metricHelp has %s, which nothing registers: remove its line", family)
		}
	}
}

// TestMetricHelpTable: every entry names a valid nextbest_* family and its
// text needs no escaping in the exposition format.
func TestMetricHelpTable(t *testing.T) {
	valid := regexp.MustCompile(`^nextbest_[a-z0-9_]+$`)
	for name, help := range metricHelp {
		if !valid.MatchString(name) {
			t.Errorf("%q: not a nextbest_* metric family name", name)
		}
		if strings.TrimSpace(help) == "" || strings.ContainsAny(help, "\\\n") {
			t.Errorf("%s: HELP %q must be a non-empty line without backslashes", name, help)
		}
	}
}

func TestWriteWithHelp(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"filled", "# HELP nextbest_decisions_total\n# TYPE nextbest_decisions_total counter\nnextbest_decisions_total 3\n",
			"# HELP nextbest_decisions_total " + metricHelp["nextbest_decisions_total"] + "\n# TYPE nextbest_decisions_total counter\nnextbest_decisions_total 3\n"},
		{"unknown family left alone", "# HELP go_goroutines\ngo_goroutines 7\n", "# HELP go_goroutines\ngo_goroutines 7\n"},
		{"text kept", "# HELP nextbest_decisions_total Already said.\n", "# HELP nextbest_decisions_total Already said.\n"},
		{"no final newline", "# HELP nextbest_cache_entries", "# HELP nextbest_cache_entries " + metricHelp["nextbest_cache_entries"] + "\n"},
		{"empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			writeWithHelp(&b, []byte(tt.in))
			if got := b.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEventsIgnoredMetric: events of a type nothing reads are counted per
// type, and the types a client invents cannot grow the series beyond
// maxIgnoredTypes+1.
func TestEventsIgnoredMetric(t *testing.T) {
	set := metrics.NewSet()
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Metrics = set })
	send := func(types ...string) {
		t.Helper()
		var evs []string
		for _, typ := range types {
			evs = append(evs, fmt.Sprintf(`{"customer_id":"i-1","type":%q}`, typ))
		}
		if r := do(s, "POST", "/v1/events", `{"events":[`+strings.Join(evs, ",")+`]}`); r.status != 202 {
			t.Fatalf("events: got %d %s, want 202", r.status, r.body)
		}
	}
	send("cart-add", "cart_add", "cart-add", "purchase", "click_x")
	var invented []string
	for i := range maxIgnoredTypes + 10 {
		invented = append(invented, fmt.Sprintf("t%d", i))
	}
	send(invented...)
	send("t0", "t70", "t71")

	got := map[string]float64{}
	families := parseMetrics(t, scrape(t, s))
	for _, m := range families["nextbest_events_ignored_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "type" {
				got[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	// scrape sends one more cart-add.
	for typ, want := range map[string]float64{"cart-add": 3, "click_x": 1, "t0": 2, "t61": 1, ignoredOther: 12 + 2} {
		if got[typ] != want {
			t.Errorf("nextbest_events_ignored_total{type=%q} = %v, want %v", typ, got[typ], want)
		}
	}
	for _, typ := range []string{"cart_add", "purchase", "t62", "t70"} {
		if _, ok := got[typ]; ok {
			t.Errorf("nextbest_events_ignored_total{type=%q} exists, want none", typ)
		}
	}
	if len(got) != maxIgnoredTypes+1 {
		t.Errorf("%d series of nextbest_events_ignored_total, want %d", len(got), maxIgnoredTypes+1)
	}
}

// TestObserveDecisionAcrossCatalogs records decisions of a catalog, of a
// reload of it and of the first again: each lands in the series of its
// channel and offers by name, counted once, whichever catalog made it.
func TestObserveDecisionAcrossCatalogs(t *testing.T) {
	set := metrics.NewSet()
	o := newObserver(set, 0)
	first := loadCatalog(t, "testdata/catalog.yaml").Load()
	reload := loadCatalog(t, "testdata/catalog.yaml").Load()
	decide := func(cat *rules.Catalog, channel string, offers ...int) {
		ch, ok := cat.Channel(channel)
		if !ok {
			t.Fatalf("no channel %s", channel)
		}
		res := &decision.Result{Channel: ch}
		for _, i := range offers {
			res.Offers = append(res.Offers, decision.Choice{Offer: cat.Offers[i]})
		}
		o.decision(cat, res, time.Now())
	}
	decide(first, "web", 0, 1)
	decide(reload, "web", 0)
	decide(first, "app", 1)
	decide(reload, "app", 1)
	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		fmt.Sprintf(`nextbest_offer_decisions_total{offer=%q,channel="web"} 2`, first.Offers[0].ID),
		fmt.Sprintf(`nextbest_offer_decisions_total{offer=%q,channel="web"} 1`, first.Offers[1].ID),
		fmt.Sprintf(`nextbest_offer_decisions_total{offer=%q,channel="app"} 2`, first.Offers[1].ID),
		`nextbest_request_duration_seconds_count{route="decide",channel="web"} 2`,
		`nextbest_request_duration_seconds_count{route="decide",channel="app"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, fmt.Sprintf(`offer=%q,channel="app"`, first.Offers[0].ID)) {
		t.Errorf("a series for an offer never returned on app:\n%s", out)
	}
}

// BenchmarkObserveDecision measures the metrics of one decision of three
// offers.
func BenchmarkObserveDecision(b *testing.B) {
	o := newObserver(metrics.NewSet(), 0)
	cat := loadCatalog(b, "testdata/catalog.yaml").Load()
	ch, _ := cat.Channel("web")
	res := &decision.Result{Channel: ch}
	for i := range min(3, len(cat.Offers)) {
		res.Offers = append(res.Offers, decision.Choice{Offer: cat.Offers[i]})
	}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		o.decision(cat, res, start)
	}
}
