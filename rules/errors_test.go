package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

// TestErrorPlacement checks that an error inside a rule points at the
// offending token in the file, whatever the YAML style of the rule, and
// that each error is one line naming its object.
func TestErrorPlacement(t *testing.T) {
	const head = "channels: [web, email]\nfeatures:\n  tier: {type: string}\n  opted_out_email: {type: bool}\nsegments:\n  lapsed: 'false'\noffers:\n  - id: gold-only\n    channels: [web]\n    content: {web: {h: x}}\n"
	tests := []struct {
		name  string
		rule  string // the eligible field, from line 11
		token string // where the error must point: its first occurrence from line 11 on
		msg   string
	}{
		{"plain", "    eligible: customer.tierr == \"gold\"\n", "tierr", "unknown field tierr"},
		{"plain, after non-ASCII text", "    eligible: customer.tier == \"café—ü\" && customer.tierr == \"x\"\n", "tierr", "unknown field tierr"},
		{"single-quoted", "    eligible: 'customer.tier == \"gold\" && customer.tierr == \"x\"'\n", "tierr", "unknown field tierr"},
		{"double-quoted with escapes", "    eligible: \"customer.tier == \\\"gold\\\" && customer.tierr == \\\"x\\\"\"\n", "tierr", "unknown field tierr"},
		{"folded", "    eligible: >-\n      customer.tier == \"gold\"\n      && !(\"lapsd\" in segments)\n", `"lapsd"`, `unknown segment "lapsd"`},
		{"folded, more indented", "    eligible: >-\n      customer.tier == \"gold\"\n      && (channel != \"email\"\n          || !customer.opted_out_mail)\n", "opted_out_mail", "unknown field opted_out_mail"},
		{"literal", "    eligible: |\n      customer.tier == \"gold\"\n      && customer.tierr == \"x\"\n", "tierr", "unknown field tierr"},
		{"plain, two lines", "    eligible: customer.tier == \"gold\"\n      && customer.tierr == \"x\"\n", "tierr", "unknown field tierr"},
		{"plain, trailing blanks, then a line", "    eligible: customer.tier == \"gold\"  \t\n      && customer.tierr == \"x\"\n", "tierr", "unknown field tierr"},
		{"plain, an empty line inside", "    eligible: customer.tier == \"gold\"\n\n\n      && customer.tierr == \"x\"\n", "tierr", "unknown field tierr"},
		{"single-quoted, doubled quotes", "    eligible: 'customer.tier == ''gold'' && customer.tierr == ''x'''\n", "tierr", "unknown field tierr"},
		{"single-quoted, two lines", "    eligible: 'customer.tier == ''gold''\n      && customer.tierr == ''x'''\n", "tierr", "unknown field tierr"},
		{"double-quoted, two lines after non-ASCII text", "    eligible: \"customer.tier == \\\"é—ü\\\"\n      && customer.tierr == \\\"x\\\"\"\n", "tierr", "unknown field tierr"},
		{"double-quoted, escaped line break", "    eligible: \"customer.tier == \\\"gold\\\" && \\\n      customer.tierr == \\\"x\\\"\"\n", "tierr", "unknown field tierr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + tt.rule
			_, err := rules.Load("catalog.yaml", []byte(src))
			var errs rules.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Load = %v, want one error", err)
			}
			e := errs[0]
			lines := strings.Split(src, "\n")
			wantLine, wantCol := 0, 0
			for i := 10; i < len(lines); i++ {
				if k := strings.Index(lines[i], tt.token); k >= 0 {
					wantLine, wantCol = i+1, len([]rune(lines[i][:k]))+1 // columns count characters
					break
				}
			}
			if e.Line != wantLine || e.Column != wantCol {
				t.Errorf("error %q at %d:%d, want %d:%d (%s in %q)", e, e.Line, e.Column, wantLine, wantCol, tt.token, lines[wantLine-1])
			}
			if e.Object != `offer "gold-only"` || e.Field != "eligible" || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q: want offer \"gold-only\", field eligible, message containing %q", e, tt.msg)
			}
			if strings.Contains(e.Error(), "\n") {
				t.Errorf("error spans lines, but nextbest validate prints one per line:\n%s", e)
			}
		})
	}
}

// TestErrorsDoNotCascade checks that one mistake gives one error: a
// feature declared wrongly does not also make every rule using it an
// "unknown field", and a bad window does not hide the other errors.
func TestErrorsDoNotCascade(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // fields of the errors, in order
	}{
		{"bad type", `channels: [web]
features:
  lifetime_value: {type: integer, default: 0}
segments:
  vip: customer.lifetime_value >= 1000
`, []string{"type"}},
		{"bad aggregation", `channels: [web]
features:
  visits: {type: string, from: {event: visit, op: count}}
segments:
  busy: customer.visits > 3
`, []string{"from.op"}},
		{"overflowing window", `channels: [web]
features:
  views: {type: number, from: {event: view, op: count, window: 20000w}}
  tier: {type: strng}
`, []string{"from.window", "type"}},
	}
	for _, tt := range tests {
		_, err := rules.Load("catalog.yaml", []byte(tt.src))
		var errs rules.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("%s: Load = %v, want rules.Errors", tt.name, err)
		}
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: errors\n%v\nwant fields %v", tt.name, err, tt.want)
		}
	}
}
