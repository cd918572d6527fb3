package rules_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

var update = flag.Bool("update", false, "rewrite the .err golden files of testdata/invalid")

func TestLoadValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid catalogs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := rules.LoadFile(file); err != nil {
				t.Errorf("LoadFile(%q):\n%v", file, err)
			}
		})
	}
}

// TestLoadInvalid compares the errors of every catalog under
// testdata/invalid with its golden .err file: the exact text an author
// sees from nextbest validate. Run go test ./rules -update to rewrite the
// goldens, then read the diff.
func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid catalogs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := rules.LoadFile(file)
			if err == nil {
				t.Fatalf("LoadFile(%q) succeeded, want errors", file)
			}
			var errs rules.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("LoadFile(%q) = %T %v, want rules.Errors", file, err, err)
			}
			for _, e := range errs {
				if e.File != file {
					t.Errorf("error %q: File = %q, want %q", e, e.File, file)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./rules -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("errors of %s (-%s +got):\n%s", file, golden, diff)
			}
		})
	}
}

// TestErrorPositions pins, independently of the goldens (which -update
// rewrites wholesale), where each author error points: line, column,
// object and field of the first error of each invalid catalog. A line or
// column of 0 means the error has none.
func TestErrorPositions(t *testing.T) {
	tests := []struct {
		file         string
		line, column int
		object       string
		field        string
		msg          string // a substring of the message
	}{
		{file: "unknown_feature", line: 8, column: 24, object: `offer "big-spender"`, field: "eligible", msg: "unknown field lifetime_valu in `customer.lifetime_valu >= 1000`"},
		{file: "type_mismatch", line: 7, column: 32, object: `segment "vip"`, field: "rule", msg: "mismatched types float64 and string"},
		// Column 70 is just past the expression, where the parser met EOF.
		{file: "syntax_error", line: 8, column: 70, object: `offer "gold-only"`, field: "eligible", msg: "unexpected token EOF"},
		{file: "unknown_channel_offer", line: 5, column: 21, object: `offer "fax-blast"`, field: "channels", msg: `channel "fax" is not one of web, email`},
		{file: "unknown_channel_content", line: 9, column: 7, object: `offer "hello"`, field: "content.pager", msg: `channel "pager" is not one of web, sms`},
		{file: "duplicate_offer_id", line: 8, column: 9, object: `offer "welcome"`, field: "id", msg: "duplicate offer id (first declared at line 4)"},
		{file: "unknown_segment", line: 10, column: 16, object: `offer "vip-lounge"`, field: "eligible", msg: `unknown segment "vpi"`},
		{file: "non_bool_rule", line: 8, column: 15, object: `offer "score"`, field: "eligible", msg: "expected bool, but got float64"},
		{file: "bad_window", line: 4, column: 76, object: `feature "purchases_30d"`, field: "from.window", msg: `"30days" is not a positive duration`},
		{file: "bad_feature_type", line: 4, column: 26, object: `feature "lifetime_value"`, field: "type", msg: `"integer" is not one of number, string, bool, time, list`},
		{file: "missing_content", line: 4, column: 5, object: `offer "cart-reminder"`, field: "content.app", msg: `listed for channel "app" but has no content for it`},
		{file: "unknown_field_offer", line: 8, column: 5, object: `offer "gold-only"`, field: "eligable", msg: "unknown field"},
		{file: "bad_min_explore", line: 2, column: 25, object: "learning", field: "min_explore", msg: "must be a whole number of impressions, 0 to 1000000"},
		// yaml.v3 alone reports the line where the enclosing collection
		// began, counted from 0 (go-yaml/yaml#205), and no column; a syntax
		// error points where the parser met the problem.
		{file: "malformed_yaml", line: 2, column: 17, msg: "did not find expected ',' or ']'"},
		{file: "quoted_rule_start", line: 28, column: 22, msg: `did not find expected key (a value that starts with a quote ends at its closing quote: put the whole rule in quotes, eligible: '"gold" in customer.tags`},
		{file: "tab_indent", line: 7, column: 1, msg: "(YAML does not allow tabs in indentation: indent with spaces)"},
		{file: "segment_forward_reference", line: 6, column: 16, object: `segment "vip_lapsed"`, field: "rule", msg: `unknown segment "vip" (segments must be declared before they are used)`},
		{file: "multiline_rule", line: 12, column: 24, object: `offer "cart-reminder"`, field: "eligible", msg: "unknown field opted_out_mail"},
		{file: "many_errors", line: 2, column: 17, object: `channel "web"`, msg: "declared twice"},
		{file: "content_not_listed", line: 8, column: 7, object: `offer "hello"`, field: "content.sms", msg: `offer is not listed for channel "sms"`},
		{file: "unknown_top_level", line: 3, column: 1, field: "ofers", msg: "unknown field"},
		{file: "empty", msg: "empty catalog"},
		{file: "bad_contact_policy", line: 2, column: 17, object: "contact_policy", field: "max_offers", msg: "is required"},
		{file: "bad_learning", line: 5, column: 26, object: "learning", field: "prior.rate", msg: "must be between 0 and 1"},
		{file: "bad_learning_model", line: 7, column: 45, object: "learning.model", field: "features.tier", msg: "expected float64, but got string"},
		{file: "bad_learning_model_empty", line: 5, column: 10, object: "learning.model", field: "features", msg: "the model has no term but the intercept"},
		{file: "bad_event_types", line: 1, column: 11, field: "channels", msg: "at least one channel is required"},
		{file: "wrong_op_type", line: 4, column: 57, object: `feature "purchases"`, field: "from.op", msg: "count makes a number, but the feature's type is string"},
		{file: "op_field", line: 5, column: 65, object: `feature "visits"`, field: "from.field", msg: "op count reads no property"},
		{file: "hostile_loops", line: 10, column: 40, object: `offer "blocked-items"`, field: "eligible", msg: "`context.blocked` is read in a loop over `context.items`"},
		{file: "hostile_builtins", line: 4, column: 9, object: `segment "wide"`, field: "rule", msg: "repeat is not allowed"},
		{file: "hostile_deep", line: 5, column: 110, object: `segment "deep"`, field: "rule", msg: "nested more than 100 deep"},
		{file: "hostile_score", line: 4, column: 58, field: "arbitration", msg: "loop over `context.items` inside a loop over `context.items`"},
		// Content templates (issue 13): the position of the name, and of
		// the {{ left open, inside a folded string.
		{file: "template_unknown_feature", line: 9, column: 38, object: `offer "cart-reminder"`, field: "content.web.headline", msg: "unknown feature first_nam (did you mean first_name?)"},
		{file: "template_unclosed", line: 11, column: 27, object: "defaults", field: "sms.text", msg: "{{ is not closed (want }})"},
		// Column 95 is just past the where, where the parser met EOF.
		{file: "bad_where", line: 10, column: 95, object: `feature "syntax"`, field: "from.where", msg: "unexpected token EOF in `event.category ==`"},
		{file: "bad_events", line: 4, column: 3, object: `event "ProductView"`, msg: `"ProductView" is not an event type`},
		// Scoped experiments and the global holdout (issue 14).
		{file: "bad_experiment_scope", line: 9, column: 23, object: `experiment "winback"`, field: "channels", msg: `channel "sms" is not one of web, email`},
		{file: "bad_holdout", line: 3, column: 18, object: "holdout", field: "share", msg: "must be a share of customers in (0, 1)"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		file := "testdata/invalid/" + tt.file + ".yaml"
		_, err := rules.LoadFile(file)
		var errs rules.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Errorf("LoadFile(%q) = %v, want rules.Errors", file, err)
			continue
		}
		e := errs[0]
		if e.Line != tt.line || e.Column != tt.column || e.Object != tt.object || e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("%s: first error at %d:%d %s / %s: %q\nwant at %d:%d %s / %s: containing %q",
				tt.file, e.Line, e.Column, e.Object, e.Field, e.Msg, tt.line, tt.column, tt.object, tt.field, tt.msg)
		}
	}
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".yaml"); !seen[name] {
			t.Errorf("%s has no position check in TestErrorPositions", f)
		}
	}
}

// TestLoadFullSyntax checks what each form of testdata/valid/full_syntax.yaml
// compiles to.
func TestLoadFullSyntax(t *testing.T) {
	c, err := rules.LoadFile("testdata/valid/full_syntax.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type channel struct {
		Name       string
		Impression bool
	}
	var channels []channel
	for i, ch := range c.Channels {
		if ch.Index != i {
			t.Errorf("channel %s: Index = %d, want %d", ch.Name, ch.Index, i)
		}
		channels = append(channels, channel{ch.Name, ch.DecisionIsImpression})
	}
	if diff := cmp.Diff([]channel{{"web", false}, {"email", true}, {"sms", true}}, channels); diff != "" {
		t.Errorf("channels (-want +got):\n%s", diff)
	}

	features := map[string]string{}
	for _, f := range c.Schema.Features() {
		desc := f.Type.String() + " default " + f.Default.String()
		if a := f.From; a != nil {
			desc += fmt.Sprintf(" from %s %s %q window %v reset_on %v", a.Event, a.Op, a.Field, a.Window, a.ResetOn)
		}
		features[f.Name] = desc
	}
	wantFeatures := map[string]string{
		"lifetime_value": "number default 12.5",
		"tier":           `string default "none"`,
		"interests":      `list default ["news"]`,
		"opted_out_sms":  "bool default true",
		"signup_at":      "time default 2020-01-01T00:00:00Z",
		"visits_12h":     `number default 0 from visit count "" window 12h0m0s reset_on []`,
		"spend_2w":       `number default 0 from purchase sum "amount" window 336h0m0s reset_on []`,
		"clicks_90m":     `number default 0 from click count "" window 1h30m0s reset_on []`,
		"cart_items":     `number default 0 from cart_add count "" window 0s reset_on [purchase cart_clear]`,
		"last_category":  `string default "" from product_view last "category" window 0s reset_on []`,
		"last_visit_at":  `time default never from visit last_time "" window 720h0m0s reset_on []`,
	}
	if diff := cmp.Diff(wantFeatures, features); diff != "" {
		t.Errorf("features (-want +got):\n%s", diff)
	}

	var segments []string
	for i, s := range c.Segments {
		if s.Index != i {
			t.Errorf("segment %s: Index = %d, want %d", s.Name, s.Index, i)
		}
		segments = append(segments, s.Name+": "+s.Description)
	}
	wantSegments := []string{"vip: ", "engaged: Visited three times in half a day.", "vip_engaged: ", "recent: "}
	if diff := cmp.Diff(wantSegments, segments); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}

	o, ok := c.Offer("everything")
	if !ok {
		t.Fatal(`no offer "everything"`)
	}
	web, _ := c.Channel("web")
	email, _ := c.Channel("email")
	sms, _ := c.Channel("sms")
	type offer struct {
		Name, Description       string
		Channels                []string
		Placements, Tags        []string
		Value, Weight           float64
		Start, End              string
		Eligible                string
		EligibleLine, EligibleC int
		WebContent, SMSContent  string
	}
	got := offer{
		Name: o.Name, Description: o.Description, Placements: o.Placements, Tags: o.Tags,
		Value: o.Value, Weight: o.Weight, Start: o.Start.Format(time.RFC3339), End: o.End.Format(time.RFC3339),
		Eligible: o.Eligible.Source, EligibleLine: o.Eligible.Line, EligibleC: o.Eligible.Column,
		WebContent: string(o.Content(web).JSON), SMSContent: string(o.Content(sms).JSON),
	}
	for _, ch := range o.Channels {
		got.Channels = append(got.Channels, ch.Name)
	}
	want := offer{
		Name: "An offer using every field", Description: "Checks that each field is read.",
		Channels: []string{"web", "email", "sms"}, Placements: []string{"home_hero", "cart_page"}, Tags: []string{"cart", "test"},
		Value: 20, Weight: 0.5, Start: "2026-01-01T00:00:00Z", End: "2027-01-01T00:00:00+01:00",
		Eligible:     "customer.cart_items > 0\n&& (\"vip\" in segments || \"running\" in customer.interests)\n&& (channel != \"sms\" || !customer.opted_out_sms)\n",
		EligibleLine: 36, EligibleC: 15,
		WebContent: `{"headline":"Ünïcödé — ok","items":[1,2.5,"three",true,null],"nested":{"a":{"b":["x","y"]}}}`,
		SMSContent: `{"text":"Text"}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offer everything (-want +got):\n%s", diff)
	}
	if !o.OfferedOn(email) || o.Content(email) == nil {
		t.Error("everything: not offered on email")
	}

	always, _ := c.Offer("always")
	if always.Value != 1 || always.Weight != 1 || always.Eligible != nil || always.Name != "always" || len(always.Placements) != 0 {
		t.Errorf("always: value %v weight %v eligible %v name %q placements %v; want the defaults 1, 1, nil, its id, none",
			always.Value, always.Weight, always.Eligible, always.Name, always.Placements)
	}
	if always.OfferedOn(email) || always.Content(email) != nil {
		t.Error("always: offered on email, which it does not list")
	}
	if got, want := offerIDs(c.OffersFor(sms)), []string{"everything", "always"}; !slices.Equal(got, want) {
		t.Errorf("OffersFor(sms) = %v, want %v", got, want)
	}
	if got, want := offerIDs(c.OffersFor(web)), []string{"everything", "folded.rule:v2", "always"}; !slices.Equal(got, want) {
		t.Errorf("OffersFor(web) = %v, want %v", got, want)
	}
	if c.Fallback(email) != nil {
		t.Errorf("Fallback(email) = %s, want nil (no defaults given)", c.Fallback(email).JSON)
	}
	if got, want := string(c.Fallback(sms).JSON), `{"text":"Hi"}`; got != want {
		t.Errorf("Fallback(sms) = %s, want %s", got, want)
	}
}

func offerIDs(offers []*rules.Offer) []string {
	ids := make([]string, len(offers))
	for i, o := range offers {
		ids[i] = o.ID
	}
	return ids
}

func TestOfferSchedule(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		start, end time.Time
		now        time.Time
		want       bool
	}{
		{time.Time{}, time.Time{}, start, true},
		{start, end, start, true}, // start is inclusive
		{start, end, start.Add(-time.Nanosecond), false},
		{start, end, end.Add(-time.Nanosecond), true},
		{start, end, end, false}, // end is exclusive
		{start, time.Time{}, end.AddDate(10, 0, 0), true},
		{time.Time{}, end, start.AddDate(-10, 0, 0), true},
		{time.Time{}, end, end, false},
	}
	for _, tt := range tests {
		o := &rules.Offer{Start: tt.start, End: tt.end}
		if got := o.Active(tt.now); got != tt.want {
			t.Errorf("Offer{Start: %v, End: %v}.Active(%v) = %v, want %v", tt.start, tt.end, tt.now, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"12h", 12 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{" 7d ", 7 * 24 * time.Hour, false},
		{"36500d", 36500 * 24 * time.Hour, false},
		{"", 0, true},
		{"d", 0, true},
		{"30", 0, true},
		{"30days", 0, true},
		{"-5d", 0, true},
		{"1.5d", 0, true},
		{"0h", 0, true},
		{"-1h", 0, true},
		{"36501d", 0, true},
		{"0d", 0, true},
		{"0w", 0, true},
		{"5214w", 5214 * 7 * 24 * time.Hour, false},
		{"5215w", 0, true},
		{"20000w", 0, true}, // would overflow time.Duration
		{"36500w", 0, true},
	}
	for _, tt := range tests {
		got, err := rules.ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestLoadDecisioning checks what the arbitration, learning, stickiness
// and experiment settings compile to.
func TestLoadDecisioning(t *testing.T) {
	c, err := rules.LoadFile("testdata/valid/decisioning.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lr := c.Learning
	if lr.Prior != (rules.Prior{Rate: 0.05, Strength: 20}) || lr.Explore != rules.Greedy || lr.Success != featurestore.Click || !lr.LearnBy.Segment {
		t.Errorf("learning = %+v", lr)
	}
	if a := c.Arbitration; a.Static || a.Score == nil || !a.Score.Fast() {
		t.Errorf("arbitration = %+v, want a score on the specialised evaluator", a)
	}
	card, _ := c.Offer("card")
	loan, _ := c.Offer("loan")
	if card.Prior != (rules.Prior{Rate: 0.1, Strength: 10}) || loan.Prior != (rules.Prior{Rate: 0.05, Strength: 5}) {
		t.Errorf("priors: card %+v, loan %+v", card.Prior, loan.Prior)
	}
	if card.Sticky != 2*time.Hour || loan.Sticky != 0 {
		t.Errorf("sticky: card %v, loan %v", card.Sticky, loan.Sticky)
	}
	x, ok := c.Experiment("hero-test")
	if !ok || x.Salt != "2026-11" || x.Traffic != 0.5 || len(x.Variants) != 4 {
		t.Fatalf("experiment = %+v", x)
	}
	v := x.Variants
	if !v[1].Holdout || v[2].Arbitration == nil || !v[2].Arbitration.Static || !v[3].Allows(card) || v[3].Allows(loan) || !v[0].Allows(loan) {
		t.Errorf("variants = %+v %+v %+v %+v", v[0], v[1], v[2], v[3])
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "1d"}, {30 * 24 * time.Hour, "30d"}, {12 * time.Hour, "12h"}, {90 * time.Minute, "1h30m"},
		{45 * time.Minute, "45m"}, {36 * time.Hour, "36h"}, {1500 * time.Millisecond, "1.5s"},
	} {
		if got := rules.FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if d, err := rules.ParseDuration(rules.FormatDuration(tt.d)); err != nil || d != tt.d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tt.d, d, err)
		}
	}
}

// TestReadsEvent: the event types a catalog reads are those its features
// are fed or reset by and the outcome types; any other is accepted and
// ignored, and POST /v1/events reports it.
func TestReadsEvent(t *testing.T) {
	c, err := rules.LoadFile("testdata/valid/full_syntax.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		typ  string
		want bool
	}{
		{"visit", true},        // feeds a count and a last_time
		{"purchase", true},     // feeds a sum, resets cart_items
		{"cart_clear", true},   // only resets cart_items
		{"click", true},        // an outcome that also feeds a feature
		{"impression", true},   // outcomes: contact history and statistics
		{"conversion", true},   //
		{"dismiss", true},      //
		{"cart-add", false},    // a misspelling of cart_add
		{"page_view", false},   // nothing reads it
		{"amount", false},      // a property, not an event type
		{"visits_12h", false},  // a feature, not an event type
		{"", false},            //
		{"Impression", false},  // types are case-sensitive
		{"impression ", false}, //
	} {
		if got := c.ReadsEvent(tt.typ); got != tt.want {
			t.Errorf("ReadsEvent(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}
