package decision_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkDecideChannelPolicy measures what a channel's policy costs an
// SMS decision over the retail catalog, limit 2 (consent, a contact
// limit of 2 a week over a week of history, quiet hours in the
// customer's zone): policy=off is the
// catalog without the SMS policy, policy=on with it, for customers who
// pass it; withheld=... are decisions the policy ends. Compare with
// benchstat -col /policy.
func BenchmarkDecideChannelPolicy(b *testing.B) {
	data, err := os.ReadFile("../examples/retail/catalog.yaml")
	if err != nil {
		b.Fatal(err)
	}
	src := string(data)
	const policy = `  - name: sms
    decision_is_impression: true
    eligible: '!customer.opted_out_sms'
    contact_limit: {max: 2, within: 7d}
    quiet_hours: {from: "21:00", to: "09:00", timezone: customer.timezone, default_timezone: Europe/London}
`
	if !strings.Contains(src, policy) {
		b.Fatal("the retail catalog's SMS policy is not as this benchmark expects")
	}
	on, err := rules.Load("retail.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	off, err := rules.Load("retail.yaml", []byte(strings.Replace(src, policy, "  - {name: sms, decision_is_impression: true}\n", 1)))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []*rules.Catalog{on, off} {
		c.Arbitration = rules.Arbitration{Static: true}
	}
	now := catalogtest.Epoch // 12:00 in London and Paris
	// A week of contact history: web and app impressions, which the SMS
	// limit scans and does not count.
	var history []featurestore.Contact
	for i, ch := range []string{"web", "app", "web", "web", "web", "app"} {
		history = append(history, featurestore.Contact{OfferID: "black-friday-doorbusters", Channel: ch, Kind: featurestore.Impression, At: now.Add(-time.Duration(6-i) * 24 * time.Hour).UnixNano()})
	}
	twoSMS := append([]featurestore.Contact(nil), history...)
	for _, ago := range []time.Duration{3 * time.Hour, time.Hour} {
		twoSMS = append(twoSMS, featurestore.Contact{OfferID: "app-download", Channel: "sms", Kind: featurestore.Impression, At: now.Add(-ago).UnixNano()})
	}
	zoned := func(c *rules.Catalog, zone string, optedOut bool) []featurestore.Vector {
		vecs := catalogtest.Population{}.Vectors(c.Schema, customers)
		tz, _ := c.Schema.Lookup("timezone")
		out, _ := c.Schema.Lookup("opted_out_sms")
		for _, v := range vecs {
			if tz != nil {
				v[tz.Index] = featurestore.String(zone)
			}
			v[out.Index] = featurestore.Bool(optedOut)
		}
		return vecs
	}
	run := func(b *testing.B, c *rules.Catalog, vecs []featurestore.Vector, h []featurestore.Contact) {
		var eng decision.Engine
		var res decision.Result
		req := decision.Request{CustomerID: "c", Channel: "sms", Limit: 2, Now: now, History: h} // 2: what the limit leaves
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := eng.Decide(c, vecs[i%customers], &req, &res); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("policy=off", func(b *testing.B) { run(b, off, zoned(off, "Europe/Paris", false), history) })
	b.Run("policy=on", func(b *testing.B) { run(b, on, zoned(on, "Europe/Paris", false), history) })
	b.Run("withheld=consent", func(b *testing.B) { run(b, on, zoned(on, "Europe/Paris", true), history) })
	b.Run("withheld=quiet_hours", func(b *testing.B) { run(b, on, zoned(on, "Pacific/Auckland", false), history) }) // 01:00
	b.Run("withheld=contact_limit", func(b *testing.B) { run(b, on, zoned(on, "Europe/Paris", false), twoSMS) })
}
