package examples_test

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nextbest/nextbest/rules"
)

// exampleCatalogs returns every catalog under examples/, so that a catalog
// the docs point at cannot rot: each one is compiled by TestExamples.
func exampleCatalogs(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no catalogs under examples/")
	}
	return files
}

func TestExamples(t *testing.T) {
	for _, file := range exampleCatalogs(t) {
		t.Run(file, func(t *testing.T) {
			c, err := rules.LoadFile(file)
			if err != nil {
				t.Fatalf("LoadFile(%q):\n%v", file, err)
			}
			for _, ch := range c.Channels {
				if c.Fallback(ch) == nil {
					t.Errorf("channel %q has no defaults: a customer with no eligible offer would get nothing", ch.Name)
				}
			}
		})
	}
}

// channelForm is the creative each channel's front end renders: the
// fields it requires and the ones it understands.
var channelForm = map[string]struct{ required, allowed []string }{
	"web":         {[]string{"headline", "cta_url"}, []string{"headline", "body", "image", "cta_url"}},
	"app":         {[]string{"title", "deeplink"}, []string{"title", "body", "deeplink"}},
	"call_center": {[]string{"script"}, []string{"script", "talking_points"}},
	"email":       {[]string{"subject", "template"}, []string{"subject", "preheader", "template"}},
	"sms":         {[]string{"text"}, []string{"text"}},
}

// TestRetailCatalogShape holds the example catalog to what issue 2 and the
// README promise: its channels, its size, each channel's content form, SMS
// length, and the legal opt-outs on outbound offers.
func TestRetailCatalogShape(t *testing.T) {
	c, err := rules.LoadFile("retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ChannelNames(), []string{"web", "app", "call_center", "email", "sms"}; !slices.Equal(got, want) {
		t.Errorf("channels = %v, want %v", got, want)
	}
	for _, ch := range c.Channels {
		want := ch.Name == "email" || ch.Name == "sms"
		if ch.DecisionIsImpression != want {
			t.Errorf("channel %q: DecisionIsImpression = %v, want %v", ch.Name, ch.DecisionIsImpression, want)
		}
	}
	if n := len(c.Offers); n < 25 || n > 40 {
		t.Errorf("%d offers, want 25 to 40", n)
	}
	if n := len(c.Segments); n < 5 || n > 10 {
		t.Errorf("%d segments, want 5 to 10", n)
	}
	if n := c.Schema.Len(); n < 12 || n > 30 {
		t.Errorf("%d features, want 12 to 30", n)
	}
	// SMS has a channel policy: consent, a weekly limit, quiet hours.
	if sms, _ := c.Channel("sms"); sms.Eligible == nil || sms.ContactLimit.Max == 0 || sms.Quiet == nil {
		t.Errorf("sms: eligible %v, contact limit %+v, quiet hours %+v; want all three", sms.Eligible, sms.ContactLimit, sms.Quiet)
	}

	check := func(where, channel string, content *rules.Content) {
		form := channelForm[channel]
		for _, k := range form.required {
			if _, ok := content.Value[k]; !ok {
				t.Errorf("%s: content.%s: missing %q", where, channel, k)
			}
		}
		for k := range content.Value {
			if !slices.Contains(form.allowed, k) {
				t.Errorf("%s: content.%s: field %q is not part of the %s form %v", where, channel, k, channel, form.allowed)
			}
		}
		if text, ok := content.Value["text"].(string); ok && utf8.RuneCountInString(text) > 160 {
			t.Errorf("%s: content.sms: text is %d characters, want at most 160 (one SMS)", where, utf8.RuneCountInString(text))
		}
	}
	for _, o := range c.Offers {
		for _, ch := range o.Channels {
			check("offer "+o.ID, ch.Name, o.Content(ch))
			// A marketing message on an outbound channel must honour the
			// customer's opt-out for that channel: the channel's eligible
			// rule (its consent) or the offer's.
			optOut := "customer.opted_out_" + ch.Name
			if (ch.Name == "sms" || ch.Name == "email") && !checks(ch.Eligible, optOut) && !checks(o.Eligible, optOut) {
				t.Errorf("offer %s is sent by %s but neither the channel's nor its eligible rule checks %s", o.ID, ch.Name, optOut)
			}
		}
	}
	for _, ch := range c.Channels {
		if d := c.Fallback(ch); d != nil {
			check("defaults", ch.Name, d)
		}
	}
}

// checks reports whether r reads the feature name (customer.<feature>).
func checks(r *rules.Rule, name string) bool {
	return r != nil && strings.Contains(r.Source, name)
}
