package rules_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// lineBreak is a line break as yaml.v3 counts them: \r\n, \r, \n, and
// the Unicode breaks NEL, LS and PS.
var lineBreak = regexp.MustCompile(`\r\n|[\r\n\x{85}\x{2028}\x{2029}]`)

// FuzzLoad feeds arbitrary bytes to Load: it must never panic, must
// return either a catalog or Errors naming the file, and a catalog it
// returns must survive a decision on every channel, with explanations,
// and choose the same offers without them (a decision judges only the
// offers the catalog's index screens in; an explained one, every offer).
// The seed corpus is every catalog in testdata and examples, plus the
// crashers kept under testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	var files []string
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "testdata/fast/*.yaml", "../examples/*/*.yaml"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Shapes of YAML the catalogs above do not use.
	for _, src := range []string{
		"channels: &c [web]\noffers:\n  - &o {id: a, channels: *c, content: {web: *c}}\n  - *o\n",
		"base: &b {headline: x}\nchannels: [web]\noffers:\n  - {<<: *b, id: a, channels: [web], content: {web: {<<: *b, cta_url: y}}}\n",
		"channels: [web]\nfeatures:\n  a: {type: number, default: .nan}\n  b: {type: time, default: 99999999999}\n  c: {type: list, default: [x, 1]}\n",
		"--- !!map\nchannels: !!seq [web]\n...\n---\nchannels: [app]\n",
		"channels: [web]\noffers:\n  - {id: a, channels: [web], eligible: '" + strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300) + "', content: {web: {h: x}}}\n",
		"channels: [web]\nsegments:\n  s: '\"s\" in segments'\noffers:\n  - {id: a, channels: [web], start: 0000-01-01T00:00:00Z, end: 9999-12-31T23:59:59Z, value: 1e308, weight: 1e308, content: {web: {h: !!binary aGVsbG8=}}}\n",
		"channels: [web]\r\nfeatures:\r\n  t: {type: string}\r\noffers:\r\n  - id: a\r\n    channels: [web]\r\n    eligible: >-\r\n      customer.t == \"x\"\r\n\r\n        && customer.u\r\n    content: {web: {h: x}}\r\n",
		"channels: [web]\noffers:\n  - id: a\n    channels: [web]\n    eligible: \"customer.t == \\u00e9\\x41\\\n      && customer.u\"\n    content: {web: {h: x}}\n",
		"channels: [web]\noffers:\n  - id: a\n    channels: [web]\n    eligible: |2-\n        customer.t\n         == 1 &&\n    content: {web: {h: x}}\n",
		// Escaped line breaks and the Unicode line breaks yaml.v3 counts.
		"{arbitration: \"\\\n A\"}\n", "arbitration: \"\u2028 A\"\n", "x: 1\u0085arbitration: A\n",
		"[]", "null", "7", "\"channels\"", "channels: web", "channels: [{name: [web]}]",
		// A channel's policy (issue 13): consent, contact limit, quiet
		// hours over midnight in the customer's zone, literals.
		"channels:\n  - web\n  - name: sms\n    eligible: customer.ok && channel in [\"sms\", \"web\"]\n    contact_limit: {max: 1, within: 1d}\n    quiet_hours: {from: \"23:59\", to: \"00:00\", timezone: customer.tz, default_timezone: America/New_York}\nfeatures:\n  ok: {type: bool, default: true}\n  tz: {type: string, default: Pacific/Chatham}\noffers:\n  - {id: a, channels: [web, sms], placements: [p], eligible: placement == \"p\", content: {web: {h: x}, sms: {t: x}}}\ndefaults: {sms: {t: y}}\n",
		// Event declarations and where filters (issue 13, point 5).
		"channels: [web]\nevents: {v: {properties: {c: string, n: number, b: bool}}}\nfeatures:\n  w: {type: number, from: {event: v, op: count, where: 'event.c == \"x\" && event.n > 1 || !event.b'}}\n  t: {type: string, from: {event: v, op: top, field: c, window: 1h, where: 'channel in [\"web\", \"app\"]'}}\n  d: {type: number, from: {event: v, op: distinct, field: channel, window: 2m}}\n",
		"channels:\n  - {name: sms, quiet_hours: {from: \"00:00\", to: \"23:59\", timezone: customer.tz}, contact_limit: {max: 1e9, within: 36500d}, eligible: '\"s\" in segments'}\nfeatures: {tz: {type: string, default: Local}}\nsegments: {s: channel != \"sms\"}\n",
	} {
		f.Add([]byte(src))
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := rules.Load("fuzz.yaml", data)
		if err != nil {
			var errs rules.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Load error %T %v, want non-empty rules.Errors", err, err)
			}
			lines := lineBreak.Split(string(data), -1)
			for _, e := range errs {
				if e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error %#v: want File fuzz.yaml and a message", e)
				}
				// An error points inside the file: at most just past the
				// end of a line, or at the end of the file.
				atEOF := e.Line == len(lines)+1 && e.Column <= 1
				if !atEOF && (e.Line > len(lines) || e.Line > 0 && e.Column > utf8.RuneCountInString(lines[e.Line-1])+1) {
					t.Fatalf("error %q points outside the %d-line file", e, len(lines))
				}
			}
			if c != nil {
				t.Fatal("Load returned a catalog and an error")
			}
			return
		}
		// Events, absent, typed and mistyped properties alike, fold into
		// every feature, where filters included, without a panic.
		r := &featurestore.Record{}
		for _, f := range c.Schema.Features() {
			if f.From == nil {
				continue
			}
			for _, props := range []map[string]any{nil, {"category": "outdoor", "price": 3.0, "in_stock": true}, {"category": 1.0, "price": "x", "in_stock": nil}} {
				ev := featurestore.Event{CustomerID: "c-1", Type: f.From.Event, Channel: "web", Time: now, Properties: props}
				r.Apply(c.Schema, &ev, now)
			}
		}
		r.Features(c.Schema, now, nil)
		var eng decision.Engine
		var res, plain decision.Result
		// A history touching every offer on every channel, so caps,
		// suppressions, group caps and stickiness run too.
		var history []featurestore.Contact
		for _, o := range c.Offers {
			for _, ch := range o.Channels {
				history = append(history, featurestore.Contact{OfferID: o.ID, Channel: ch.Name, Kind: featurestore.Impression, At: now.Add(-time.Hour).UnixNano()})
			}
		}
		for _, ch := range c.Channels {
			for _, customer := range []string{"", "c-1", "c-2"} {
				req := &decision.Request{CustomerID: customer, Channel: ch.Name, Limit: 3, Now: now, Context: map[string]any{"page": "cart"}, History: history}
				if err := eng.Decide(c, nil, req, &plain); err != nil {
					t.Fatalf("Decide(%s): %v", ch.Name, err)
				}
				req.Explain = true
				if err := eng.Decide(c, nil, req, &res); err != nil {
					t.Fatalf("Decide(%s, explain): %v", ch.Name, err)
				}
				if got, want := chosen(plain.Offers), chosen(res.Offers); got != want {
					t.Fatalf("Decide(%s) chose %s; explained, %s", ch.Name, got, want)
				}
			}
		}
	})
}

// chosen lists the offers of a decision with their scores.
func chosen(cs []decision.Choice) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s=%v ", c.Offer.ID, c.Score)
	}
	return b.String()
}
