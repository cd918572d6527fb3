package rules_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// templatesCatalog declares a feature of each type and content templates
// on channels of each escape: by name (web html, sms none) and set
// (app html, email none).
const templatesCatalog = `channels:
  - web
  - sms
  - {name: app, content_escape: html}
  - {name: email, content_escape: none}
features:
  first_name: {type: string}
  tier: {type: string, default: member}
  points: {type: number}
  vip: {type: bool}
  since: {type: time}
  interests: {type: list}
offers:
  - id: hello
    channels: [web, sms, app, email]
    content:
      web:
        headline: 'Hi {{customer.first_name | default "there"}}'
        body: "<b>{{customer.points}} points</b> for {{ customer.tier }}"
        tags: ["{{customer.interests | default \"nothing yet\"}}", 7, true]
        plain: "no template here"
      sms: {text: 'Hi {{customer.first_name | default "there"}}: {{customer.points}} pts, vip {{customer.vip}}, since {{customer.since | default "today"}}'}
      app: {title: "{{customer.first_name}}!"}
      email: {subject: "{{customer.first_name}}!", literal: '{{"{{"}}not a template}}'}
  - id: plain
    channels: [web]
    content:
      web: {headline: "Winter sale"}
defaults:
  web: {headline: "Welcome {{customer.tier}}"}
  sms: {text: "New arrivals are in"}
`

// customer returns the features of a customer of c with the given
// values, the schema's defaults for the rest.
func customer(t *testing.T, c *rules.Catalog, values map[string]featurestore.Value) featurestore.Vector {
	t.Helper()
	f := c.Schema.Defaults(nil)
	for name, v := range values {
		feat, ok := c.Schema.Lookup(name)
		if !ok {
			t.Fatalf("no feature %s", name)
		}
		f[feat.Index] = v
	}
	return f
}

func TestContentTemplates(t *testing.T) {
	c, err := rules.Load("catalog.yaml", []byte(templatesCatalog))
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := c.Offer("hello")
	plain, _ := c.Offer("plain")
	ch := func(name string) *rules.Channel {
		x, _ := c.Channel(name)
		return x
	}
	since := time.Date(2024, 3, 1, 9, 30, 15, 500, time.FixedZone("CET", 3600))
	ada := customer(t, c, map[string]featurestore.Value{
		"first_name": featurestore.String("Ada"),
		"tier":       featurestore.String("gold"),
		"points":     featurestore.Number(1250.5),
		"vip":        featurestore.Bool(true),
		"since":      featurestore.Time(since),
		"interests":  featurestore.List([]string{"running", "outdoor & camping"}),
	})
	hostile := customer(t, c, map[string]featurestore.Value{
		"first_name": featurestore.String(`<script>alert("x")</script>`),
		"points":     featurestore.Number(3),
	})
	nobody := c.Schema.Defaults(nil)
	tests := []struct {
		name    string
		content *rules.Content
		f       featurestore.Vector
		want    string // the JSON rendered
	}{
		{"web, every type", hello.Content(ch("web")), ada,
			`{"headline":"Hi Ada","body":"\u003cb\u003e1250.5 points\u003c/b\u003e for gold","tags":["running, outdoor &amp; camping",7,true],"plain":"no template here"}`},
		{"sms, every type", hello.Content(ch("sms")), ada,
			`{"text":"Hi Ada: 1250.5 pts, vip true, since 2024-03-01T08:30:15Z"}`},
		{"web escapes the customer's values as HTML", hello.Content(ch("web")), hostile,
			`{"headline":"Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;","body":"\u003cb\u003e3 points\u003c/b\u003e for member","tags":["nothing yet",7,true],"plain":"no template here"}`},
		{"sms puts them in verbatim", hello.Content(ch("sms")), hostile,
			`{"text":"Hi <script>alert(\"x\")</script>: 3 pts, vip false, since today"}`},
		{"app escapes as set", hello.Content(ch("app")), hostile, `{"title":"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;!"}`},
		{"email does not, as set", hello.Content(ch("email")), hostile, `{"subject":"<script>alert(\"x\")</script>!","literal":"{{not a template}}"}`},
		{"a missing value takes the default", hello.Content(ch("sms")), nobody,
			`{"text":"Hi there: 0 pts, vip false, since today"}`},
		{"a missing value without a default is empty", hello.Content(ch("app")), nobody, `{"title":"!"}`},
		{"a fallback", c.Fallback(ch("web")), ada, `{"headline":"Welcome gold"}`},
		{"a fallback for nobody: the feature's default", c.Fallback(ch("web")), nobody, `{"headline":"Welcome member"}`},
		{"no template: the JSON as is", plain.Content(ch("web")), ada, `{"headline":"Winter sale"}`},
		{"no features at all", hello.Content(ch("sms")), nil, `{"text":"Hi there: 0 pts, vip false, since today"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.content.AppendJSON([]byte("x"), tt.f))
			if got != "x"+tt.want {
				t.Errorf("AppendJSON:\n got %s\nwant x%s", got, tt.want)
			}
			if !json.Valid([]byte(got[1:])) {
				t.Errorf("AppendJSON: %s is not JSON", got[1:])
			}
		})
	}
	// The JSON of templated content, for a decision that reads no
	// customer: rendered for the schema's defaults.
	for name, want := range map[string]string{
		"web":   `{"headline":"Hi there","body":"\u003cb\u003e0 points\u003c/b\u003e for member","tags":["nothing yet",7,true],"plain":"no template here"}`,
		"email": `{"subject":"!","literal":"{{not a template}}"}`,
	} {
		ct := hello.Content(ch(name))
		if !ct.Templated() || string(ct.JSON) != want {
			t.Errorf("%s: Templated %v, JSON %s; want true, %s", name, ct.Templated(), ct.JSON, want)
		}
	}
	if plain.Content(ch("web")).Templated() || c.Fallback(ch("sms")).Templated() || (*rules.Content)(nil).Templated() {
		t.Error("content without templates reports Templated")
	}
	for name, want := range map[string]rules.Escape{"web": rules.EscapeHTML, "sms": rules.EscapeNone, "app": rules.EscapeHTML, "email": rules.EscapeNone} {
		if got := ch(name).Escape; got != want {
			t.Errorf("channel %s: escape %s, want %s", name, got, want)
		}
	}
}

// TestContentTemplateErrors checks what an author sees for a template
// that does not parse or names what the schema does not hold: one error,
// at the offending token whatever the YAML style of the string, naming
// the offer and the creative field.
func TestContentTemplateErrors(t *testing.T) {
	const head = "channels: [web, {name: sms, content_escape: none}]\nfeatures:\n  first_name: {type: string}\n  points: {type: number}\n  tier: {type: strng}\noffers:\n  - id: hello\n    channels: [web]\n    content:\n      web:\n"
	tests := []struct {
		name    string
		content string // the web content's fields, from line 11
		token   string // where the error must point: its first occurrence from line 11 on; "" for no error
		field   string
		msg     string
	}{
		{"plain", "        headline: Hi {{customer.first_nam}}\n", "first_nam}", "content.web.headline", "unknown feature first_nam (did you mean first_name?) in `{{customer.first_nam}}`"},
		{"double-quoted with escapes", "        headline: \"\\u00e9\\\"{{customer.nme}}\"\n", "nme", "content.web.headline", "unknown feature nme in `{{customer.nme}}`"},
		{"single-quoted", "        headline: 'it''s {{customer.nme}}'\n", "nme", "content.web.headline", "unknown feature nme"},
		{"literal block, second line", "        body: |\n          Hi,\n          {{customer.nme}}\n", "nme", "content.web.body", "unknown feature nme"},
		{"in a list", "        lines: [a, \"{{customer.nme}}\"]\n", "nme", "content.web.lines[1]", "unknown feature nme"},
		{"nested", "        cta: {label: \"{{customer.nme}}\"}\n", "nme", "content.web.cta.label", "unknown feature nme"},
		{"unclosed", "        headline: \"Hi {{customer.first_name\"\n", "{{", "content.web.headline", "{{ is not closed (want }})"},
		{"a default on a number", "        headline: '{{customer.points | default \"0\"}}'\n", "{{", "content.web.headline", "feature points is a number, which always has a value (the feature's default): it takes no default"},
		{"unknown filter", "        headline: '{{customer.first_name | upper}}'\n", "upper", "content.web.headline", `unknown filter "upper"`},
		{"a feature declared wrongly is reported once", "        headline: '{{customer.tier}}'\n", "", "", ""},
		{"a key is not a template", "        '{{customer.nme}}': x\n", "", "", ""},
		{"merge keys", "        <<: {a: b}\n        headline: '{{customer.first_name}}'\n", "<<", "content.web", "templates ({{ }}) in content that uses YAML merge keys (<<) are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + tt.content
			_, err := rules.Load("catalog.yaml", []byte(src))
			var errs rules.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want rules.Errors", err)
			}
			// The feature tier declared with a bad type is always there.
			if len(errs) == 0 || errs[0].Field != "type" {
				t.Fatalf("errors %v: want the bad type of tier first", err)
			}
			errs = errs[1:]
			if tt.token == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v, want none beyond tier's type", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one beyond tier's type", errs)
			}
			e := errs[0]
			lines := strings.Split(src, "\n")
			wantLine, wantCol := 0, 0
			for i := 10; i < len(lines); i++ {
				if k := strings.Index(lines[i], tt.token); k >= 0 {
					wantLine, wantCol = i+1, len([]rune(lines[i][:k]))+1
					break
				}
			}
			if tt.token == "<<" {
				wantLine, wantCol = 11, 9 // the content mapping
			}
			if e.Line != wantLine || e.Column != wantCol {
				t.Errorf("error %q at %d:%d, want %d:%d (%s in %q)", e, e.Line, e.Column, wantLine, wantCol, tt.token, lines[wantLine-1])
			}
			if e.Object != `offer "hello"` || e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q: want offer \"hello\", field %s, message containing %q", e, tt.field, tt.msg)
			}
		})
	}
	_, err := rules.Load("catalog.yaml", []byte("channels: [{name: web, content_escape: xml}]\n"))
	if err == nil || !strings.Contains(err.Error(), `catalog.yaml:1:40: channel "web": content_escape: "xml" is not html or none`) {
		t.Errorf("content_escape: xml: %v", err)
	}
}
