package rules

import (
	"encoding/json"
	"html"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseTemplate(t *testing.T) {
	lit := func(text string, at int) tmplPart { return tmplPart{text: text, at: at} }
	feat := func(name string, at int) tmplPart {
		return tmplPart{feature: name, at: at, nameAt: at + len("{{customer.")}
	}
	tests := []struct {
		name string
		in   string
		want []tmplPart
		err  string // a substring of the error; "" for none
		at   int    // the error's byte offset
	}{
		{name: "empty", in: "", want: nil},
		{name: "no action", in: "Winter sale", want: []tmplPart{lit("Winter sale", 0)}},
		{name: "closing braces alone are text", in: "a }} b", want: []tmplPart{lit("a }} b", 0)}},
		{name: "one action", in: "Hi {{customer.first_name}}!", want: []tmplPart{lit("Hi ", 0), {feature: "first_name", at: 3, nameAt: 14}, lit("!", 26)}},
		{name: "blanks inside", in: "{{ customer.first_name\t}}", want: []tmplPart{{feature: "first_name", at: 0, nameAt: 12}}},
		{name: "default", in: `Hi {{customer.first_name | default "there"}}`, want: []tmplPart{lit("Hi ", 0), {feature: "first_name", at: 3, nameAt: 14, text: "there", hasDefault: true}}},
		{name: "default without blanks", in: `{{customer.n|default"x"}}`, want: []tmplPart{{feature: "n", at: 0, nameAt: 11, text: "x", hasDefault: true}}},
		{name: "default with escapes and braces", in: `{{customer.n | default "say \"hi\" }}"}}`, want: []tmplPart{{feature: "n", at: 0, nameAt: 11, text: `say "hi" }}`, hasDefault: true}}},
		{name: "empty default", in: `{{customer.n | default ""}}`, want: []tmplPart{{feature: "n", at: 0, nameAt: 11, hasDefault: true}}},
		{name: "two actions, adjacent", in: "{{customer.a}}{{customer.b}}", want: []tmplPart{feat("a", 0), {feature: "b", at: 14, nameAt: 25}}},
		{name: "a quoted literal is text", in: `a {{ "{{" }} b`, want: []tmplPart{lit("a {{ b", 0)}},
		{name: "quoted literal between actions", in: `{{customer.a}}{{"}}"}}{{customer.b}}`, want: []tmplPart{feat("a", 0), lit("}}", 14), {feature: "b", at: 22, nameAt: 33}}},
		{name: "non-ASCII text", in: "Grüße, {{customer.name}} ✓", want: []tmplPart{lit("Grüße, ", 0), {feature: "name", at: 9, nameAt: 20}, lit(" ✓", 26)}},

		{name: "unclosed", in: "Hi {{customer.first_name", err: "{{ is not closed (want }})", at: 3},
		{name: "unclosed, one brace", in: "Hi {{customer.first_name}", err: `unexpected "}" (want }})`, at: 24},
		{name: "unclosed at the end", in: "Hi {{", err: "{{ is not closed", at: 3},
		{name: "unclosed after blanks", in: "Hi {{  ", err: "{{ is not closed", at: 3},
		{name: "unclosed after default", in: `{{customer.a | default "x"`, err: "{{ is not closed", at: 0},
		{name: "empty action", in: "a {{ }}", err: "{{ }} is empty", at: 2},
		{name: "no customer prefix", in: "{{first_name}}", err: `"first_name": want customer.<feature>`, at: 2},
		{name: "context is not a feature", in: "{{context.page}}", err: `"context.page": want customer.<feature>`, at: 2},
		{name: "a path too deep", in: "{{customer.a.b}}", err: `"customer.a.b": want customer.<feature>`, at: 2},
		{name: "customer alone", in: "{{customer}}", err: `"customer": want customer.<feature>`, at: 2},
		{name: "triple braces", in: "{{{customer.a}}}", err: `"{": want customer.<feature>`, at: 2},
		{name: "a feature name starting with a digit", in: "{{customer.1a}}", err: `"customer.1a"`, at: 2},
		{name: "unknown filter", in: "{{customer.a | upper}}", err: `unknown filter "upper"`, at: 15},
		{name: "bare pipe", in: "{{customer.a | }}", err: "| must be followed by default", at: 15},
		{name: "default without its text", in: "{{customer.a | default}}", err: "default must be followed by a double-quoted string", at: 22},
		{name: "default with single quotes", in: "{{customer.a | default 'x'}}", err: "default must be followed by a double-quoted string", at: 23},
		{name: "default of a literal", in: `{{"x" | default "y"}}`, err: "a quoted string needs no default", at: 8},
		{name: "unclosed quote", in: `{{customer.a | default "x}}`, err: "the quoted string is not closed", at: 23},
		{name: "bad escape", in: `{{"\q"}}`, err: "is not a valid quoted string", at: 2},
		{name: "two features", in: "{{customer.a customer.b}}", err: `unexpected "c" (want }})`, at: 13},
		{name: "non-ASCII garbage", in: "{{customer.a é}}", err: `unexpected "é"`, at: 13},
		{name: "too many", in: strings.Repeat("{{customer.a}}", maxTemplateActions+1), err: "more than 64", at: 14 * maxTemplateActions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTemplate(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.msg, tt.err) || err.at != tt.at {
					t.Fatalf("parseTemplate(%q) = %v, %+v; want an error at %d containing %q", tt.in, got, err, tt.at, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTemplate(%q): %+v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(tmplPart{})); diff != "" {
				t.Errorf("parseTemplate(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// printTemplate writes parts back as a template that parses to the same
// parts: every literal brace as a quoted literal, so that text never
// runs into an action's "{{".
func printTemplate(parts []tmplPart) string {
	var b strings.Builder
	for _, p := range parts {
		if p.feature == "" {
			b.WriteString(strings.ReplaceAll(p.text, "{", `{{"{"}}`))
			continue
		}
		b.WriteString("{{customer." + p.feature)
		if p.hasDefault {
			b.WriteString(" | default " + strconv.Quote(p.text))
		}
		b.WriteString("}}")
	}
	return b.String()
}

// FuzzParseTemplate feeds arbitrary strings to the template parser: it
// must never panic; an error points inside the string; parsed parts are
// in order, inside the string, literal text never empty nor two in a
// row; and printing them back parses to the same parts.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"", "Hi", "Hi {{customer.first_name}}", `{{customer.a | default "there"}}`, `{{"{{"}}`, "{{", "}}", "{{}}",
		"{{customer.a", `{{customer.a | default "x`, `{{ "\u00e9\n" }}`, "{{{customer.a}}}", "a{{customer.b}}c{{customer.d|default\"\"}}",
		"{{customer.a | upper}}", "\xff{{customer.a}}\xfe", strings.Repeat("{{customer.a}}", 70),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := parseTemplate(s)
		if err != nil {
			if err.at < 0 || err.at > len(s) || err.msg == "" {
				t.Fatalf("parseTemplate(%q): error %+v outside the string or without a message", s, err)
			}
			if !utf8.ValidString(s[:err.at]) && utf8.ValidString(s) {
				t.Fatalf("parseTemplate(%q): error at %d, inside a character", s, err.at)
			}
			return
		}
		prevAt, prevLit := -1, false
		for _, p := range parts {
			if p.at <= prevAt || p.at >= len(s) {
				t.Fatalf("parseTemplate(%q): part %+v out of order or outside the string", s, p)
			}
			prevAt = p.at
			if p.feature == "" {
				if p.text == "" || prevLit {
					t.Fatalf("parseTemplate(%q): empty literal or two literals in a row: %+v", s, parts)
				}
			} else if !identRE.MatchString(p.feature) || s[p.nameAt:p.nameAt+len(p.feature)] != p.feature {
				t.Fatalf("parseTemplate(%q): feature %+v not where it was read", s, p)
			}
			prevLit = p.feature == ""
		}
		printed := printTemplate(parts)
		again, err := parseTemplate(printed)
		if err != nil && strings.HasPrefix(err.msg, "more than") {
			return // printing literal braces as actions may pass the bound
		}
		if err != nil {
			t.Fatalf("parseTemplate(%q) = %+v, printed %q: %+v", s, parts, printed, err)
		}
		strip := func(ps []tmplPart) []tmplPart {
			out := make([]tmplPart, len(ps))
			for i, p := range ps {
				out[i] = tmplPart{text: p.text, feature: p.feature, hasDefault: p.hasDefault}
			}
			return out
		}
		if diff := cmp.Diff(strip(parts), strip(again), cmp.AllowUnexported(tmplPart{})); diff != "" {
			t.Fatalf("parseTemplate(%q), printed %q, parses differently (-first +again):\n%s", s, printed, diff)
		}
	})
}

// TestAppendText checks the escaping of values: HTML as
// html.EscapeString does it, then a JSON string that decodes back to it.
func TestAppendText(t *testing.T) {
	for _, s := range []string{
		"", "Ada", "<script>alert('x')</script>", `Tom & "Jerry"`, "line\nbreak\ttab\r\x00\x1f", `back\slash`,
		"Grüße ✓", "\u2028\u2029", "bad \xff utf-8", "é",
	} {
		for _, e := range []Escape{EscapeNone, EscapeHTML} {
			js := `"` + string(appendText(nil, s, e)) + `"`
			var got string
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatalf("appendText(%q, %s) = %s: not a JSON string: %v", s, e, js, err)
			}
			want := strings.ToValidUTF8(s, "\ufffd")
			if e == EscapeHTML {
				want = html.EscapeString(want)
			}
			if got != want {
				t.Errorf("appendText(%q, %s) decodes to %q, want %q", s, e, got, want)
			}
			if strings.ContainsAny(js, "\u2028\u2029") {
				t.Errorf("appendText(%q, %s) = %s: U+2028 and U+2029 must be escaped", s, e, js)
			}
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"first_name", "first_name", 0}, {"first_nam", "first_name", 1}, {"frist_name", "first_name", 2},
		{"tier", "region", 3}, {"", "abc", 3}, {"abcdefgh", "a", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b, 3); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
