package featurestore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// benchSchema has 15 features of the shapes a retail catalog declares: 5
// profile attributes and 10 derived from events, 4 of them windowed.
func benchSchema(b *testing.B) *featurestore.Schema {
	b.Helper()
	agg := func(ev string, op featurestore.Op, field string, w time.Duration, reset ...string) *featurestore.Aggregation {
		return &featurestore.Aggregation{Event: ev, Op: op, Field: field, Window: w, ResetOn: reset}
	}
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString, Default: featurestore.String("none")},
		{Name: "lifetime_value", Type: featurestore.TypeNumber},
		{Name: "interests", Type: featurestore.TypeList},
		{Name: "opted_out_sms", Type: featurestore.TypeBool},
		{Name: "signup_at", Type: featurestore.TypeTime},
		{Name: "last_purchase_at", Type: featurestore.TypeTime, From: agg("purchase", featurestore.OpLastTime, "", 0)},
		{Name: "purchases", Type: featurestore.TypeNumber, From: agg("purchase", featurestore.OpCount, "", 0)},
		{Name: "purchases_30d", Type: featurestore.TypeNumber, From: agg("purchase", featurestore.OpCount, "", 30*day)},
		{Name: "spend_90d", Type: featurestore.TypeNumber, From: agg("purchase", featurestore.OpSum, "amount", 90*day)},
		{Name: "cart_items", Type: featurestore.TypeNumber, From: agg("cart_add", featurestore.OpCount, "", 0, "purchase")},
		{Name: "last_category", Type: featurestore.TypeString, From: agg("product_view", featurestore.OpLast, "category", 0)},
		{Name: "views_7d", Type: featurestore.TypeNumber, From: agg("product_view", featurestore.OpCount, "", 7*day)},
		{Name: "views_1d", Type: featurestore.TypeNumber, From: agg("product_view", featurestore.OpCount, "", day)},
		{Name: "support_calls", Type: featurestore.TypeNumber, From: agg("support_call", featurestore.OpCount, "", 0)},
		{Name: "last_channel", Type: featurestore.TypeString, From: agg("support_call", featurestore.OpLast, "channel", 0)},
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchRecord is a customer with a few months of history: every windowed
// feature holds dozens of buckets.
func benchRecord(b *testing.B, s *featurestore.Schema) *featurestore.Record {
	r := &featurestore.Record{}
	r.SetAttr("tier", featurestore.String("gold"))
	r.SetAttr("lifetime_value", featurestore.Number(1830))
	r.SetAttr("interests", featurestore.List([]string{"running", "outdoor"}))
	r.SetAttr("signup_at", featurestore.Time(now.AddDate(-2, 0, 0)))
	for i := range 200 {
		d := -time.Duration(i) * 11 * time.Hour
		apply(b, s, r, now,
			event("product_view", d, category(fmt.Sprintf("cat-%d", i%7))),
			event("cart_add", d, nil),
		)
		if i%5 == 0 {
			apply(b, s, r, now, event("purchase", d, amount(float64(i))))
		}
	}
	return r
}

func BenchmarkFeatures(b *testing.B) {
	s := benchSchema(b)
	r := benchRecord(b, s)
	dst := r.Features(s, now, nil)
	b.ReportAllocs()
	for b.Loop() {
		dst = r.Features(s, now, dst)
	}
}

func BenchmarkApply(b *testing.B) {
	s := benchSchema(b)
	r := benchRecord(b, s)
	ev := event("product_view", 0, category("shoes"))
	b.ReportAllocs()
	for b.Loop() {
		r.Apply(s, &ev, now)
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	r := benchRecord(b, benchSchema(b))
	buf := featurestore.AppendRecord(nil, r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = featurestore.AppendRecord(buf[:0], r)
	}
}

func BenchmarkUnmarshalRecord(b *testing.B) {
	buf := featurestore.AppendRecord(nil, benchRecord(b, benchSchema(b)))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := featurestore.UnmarshalRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
}
