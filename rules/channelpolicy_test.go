package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

const policyCatalog = `channels:
  - web
  - name: sms
    eligible: customer.sms_opt_in && !customer.do_not_disturb
    contact_limit: {max: 2, within: 7d}
    quiet_hours: {from: "21:00", to: "09:00", timezone: customer.timezone, default_timezone: Asia/Tokyo}
    decision_is_impression: true
features:
  sms_opt_in: {type: bool}
  do_not_disturb: {type: bool}
  timezone: {type: string}
offers:
  - id: a
    channels: [web, sms]
    placements: [home]
    eligible: channel != "sms" || placement == "home"
    content: {web: {h: a}, sms: {text: a}}
`

func TestChannelPolicyLoads(t *testing.T) {
	c, err := rules.Load("catalog.yaml", []byte(policyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := c.Channel("web")
	sms, _ := c.Channel("sms")
	if web.Gated() || web.Eligible != nil || web.Quiet != nil || web.ContactLimit.Max != 0 {
		t.Errorf("web has a policy: %+v", web)
	}
	if !sms.Gated() || sms.Eligible == nil || sms.Eligible.Source != "customer.sms_opt_in && !customer.do_not_disturb" {
		t.Errorf("sms eligible = %+v", sms.Eligible)
	}
	if got, want := sms.ContactLimit, (rules.Cap{Max: 2, Within: 7 * 24 * time.Hour, Channel: sms}); got != want {
		t.Errorf("contact limit = %+v, want %+v", got, want)
	}
	if got, want := sms.LimitRule, "contact_limit: 2 impressions within 7d on sms"; got != want {
		t.Errorf("limit rule = %q, want %q", got, want)
	}
	q := sms.Quiet
	tz, _ := c.Schema.Lookup("timezone")
	if q == nil || q.From != 21*3600 || q.To != 9*3600 || q.Zone != tz.Index || q.Default.String() != "Asia/Tokyo" {
		t.Fatalf("quiet hours = %+v", q)
	}
	if got, want := q.Rule, "quiet_hours: 21:00 to 09:00 in customer.timezone, else Asia/Tokyo"; got != want {
		t.Errorf("quiet rule = %q, want %q", got, want)
	}
	if c.Schema.ContactRetention < 7*24*time.Hour {
		t.Errorf("contact retention %v is shorter than the contact limit", c.Schema.ContactRetention)
	}
	// The zone of a customer: theirs, else the default.
	f := c.Schema.Defaults(nil)
	if got := q.Location(f).String(); got != "Asia/Tokyo" {
		t.Errorf("zone of a customer without one = %s, want Asia/Tokyo", got)
	}
	f[tz.Index] = featurestore.String("Europe/Paris")
	if got := q.Location(f).String(); got != "Europe/Paris" {
		t.Errorf("zone = %s, want Europe/Paris", got)
	}
	f[tz.Index] = featurestore.String("Mars/Olympus")
	if got := q.Location(f).String(); got != "Asia/Tokyo" {
		t.Errorf("zone of an unknown name = %s, want the default Asia/Tokyo", got)
	}
}

// TestChannelPolicyErrors checks each mistake in a channel's policy, and
// a channel or placement literal naming nothing declared, is a load error
// at its position.
func TestChannelPolicyErrors(t *testing.T) {
	const feats = "features:\n  opt_in: {type: bool}\n  tz: {type: string}\n  n: {type: number}\n"
	tests := []struct {
		name  string
		src   string
		token string // where the error must point: its first occurrence on a line
		field string
		msg   string
	}{
		{"channel literal", "channels: [web, email]\n" + feats + "offers:\n  - id: a\n    channels: [web]\n    eligible: customer.opt_in && channel != \"emial\"\n    content: {web: {h: a}}\n",
			`"emial"`, "eligible", `channel "emial" is not one of email, web`},
		{"channel literal in a list", "channels: [web, email]\n" + feats + "segments:\n  s: channel in [\"web\", \"emial\"]\n",
			`"emial"`, "rule", `channel "emial" is not one of email, web`},
		{"channel literal, reversed", "channels: [web, email]\n" + feats + "segments:\n  s: '\"mail\" == channel'\n",
			`"mail"`, "rule", `channel "mail" is not one of email, web`},
		{"placement literal", "channels: [web]\n" + feats + "offers:\n  - id: a\n    channels: [web]\n    placements: [home]\n    content: {web: {h: a}}\n  - id: b\n    channels: [web]\n    eligible: placement == \"hom\"\n    content: {web: {h: a}}\n",
			`"hom"`, "eligible", `placement "hom" is not declared by any offer (placements: home)`},
		{"placement literal, none declared", "channels: [web]\n" + feats + "segments:\n  s: 'placement not in [\"cart\"]'\n",
			`"cart"`, "rule", `placement "cart" is not declared by any offer (placements: none)`},
		{"eligible", "channels:\n  - name: sms\n    eligible: customer.opt_inn\n" + feats,
			"opt_inn", "eligible", "unknown field opt_inn"},
		{"contact_limit.max", "channels:\n  - name: sms\n    contact_limit: {max: 0, within: 7d}\n" + feats,
			"0,", "contact_limit.max", "must be a whole number of impressions, at least 1"},
		{"contact_limit.within", "channels:\n  - name: sms\n    contact_limit: {max: 2, within: 7days}\n" + feats,
			"7days", "contact_limit.within", "is not a positive duration"},
		{"quiet_hours.from", "channels:\n  - name: sms\n    quiet_hours: {from: \"25:00\", to: \"09:00\"}\n" + feats,
			`"25:00"`, "quiet_hours.from", `"25:00" is not a time of day`},
		{"quiet_hours.to equal", "channels:\n  - name: sms\n    quiet_hours: {from: \"09:00\", to: \"09:00\"}\n" + feats,
			`"09:00"}`, "quiet_hours.to", "must differ from from"},
		{"quiet_hours.default_timezone", "channels:\n  - name: sms\n    quiet_hours: {from: \"21:00\", to: \"09:00\", default_timezone: Mars/Olympus}\n" + feats,
			"Mars/Olympus", "quiet_hours.default_timezone", `"Mars/Olympus" is not a time zone`},
		{"quiet_hours.timezone unknown", "channels:\n  - name: sms\n    quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: customer.zone}\n" + feats,
			"customer.zone", "quiet_hours.timezone", "unknown feature zone"},
		{"quiet_hours.timezone not a string", "channels:\n  - name: sms\n    quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: customer.n}\n" + feats,
			"customer.n", "quiet_hours.timezone", "feature n is a number, want a string"},
		{"quiet_hours.timezone not a feature", "channels:\n  - name: sms\n    quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: Europe/Paris}\n" + feats,
			"Europe/Paris", "quiet_hours.timezone", "must name a string feature"},
		{"unknown field", "channels:\n  - name: sms\n    quiet: {}\n" + feats,
			"quiet", "quiet", "unknown field (want one of name, decision_is_impression, eligible, contact_limit, quiet_hours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.Load("catalog.yaml", []byte(tt.src))
			var errs rules.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Load = %v, want one error", err)
			}
			e := errs[0]
			wantLine, wantCol := 0, 0
			for i, line := range strings.Split(tt.src, "\n") {
				if k := strings.Index(line, tt.token); k >= 0 {
					wantLine, wantCol = i+1, len([]rune(line[:k]))+1
					break
				}
			}
			if e.Line != wantLine || e.Column != wantCol {
				t.Errorf("error %q at %d:%d, want %d:%d (at %s)", e, e.Line, e.Column, wantLine, wantCol, tt.token)
			}
			if e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q: want field %s, message containing %q", e, tt.field, tt.msg)
			}
		})
	}
}

// TestChannelPolicyErrorsDoNotCascade: a mistake elsewhere gives its own
// error only, not one more from a channel literal or a policy reading it.
func TestChannelPolicyErrorsDoNotCascade(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // fields of the errors, in order
	}{
		{"a bad channel name", "channels: [web-site, email]\nsegments:\n  s: channel == \"web-site\"\n", []string{"name"}},
		{"a broken zone feature", "channels:\n  - name: sms\n    quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: customer.tz}\nfeatures:\n  tz: {type: strng}\n", []string{"type"}},
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

func TestCheckAttrs(t *testing.T) {
	c, err := rules.Load("catalog.yaml", []byte(policyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		attrs map[string]featurestore.Value
		want  string // "" for accepted
	}{
		{map[string]featurestore.Value{"timezone": featurestore.String("America/New_York")}, ""},
		{map[string]featurestore.Value{"timezone": featurestore.String("")}, ""},
		{map[string]featurestore.Value{"timezone": featurestore.String("UTC")}, ""},
		{map[string]featurestore.Value{"sms_opt_in": featurestore.Bool(true)}, ""},
		{map[string]featurestore.Value{"timezone": featurestore.String("Mars/Olympus")}, `features.timezone: "Mars/Olympus" is not a time zone`},
		{map[string]featurestore.Value{"timezone": featurestore.String("Local")}, `features.timezone: "Local" is not a time zone`},
		{map[string]featurestore.Value{"timezone": featurestore.String("../../etc/passwd")}, `is not a time zone`},
	}
	for _, tt := range tests {
		err := c.CheckAttrs(tt.attrs)
		var ae *rules.AttrError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckAttrs(%v) = %v, want accepted", tt.attrs, err)
		case tt.want != "" && (!errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckAttrs(%v) = %v, want an *AttrError containing %q", tt.attrs, err, tt.want)
		}
	}
}
