package featurestore_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// viewSchema has a feature of every type and op, windowed or not, with
// defaults that differ from the zero values.
func viewSchema(t testing.TB) *featurestore.Schema {
	t.Helper()
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString, Default: featurestore.String("none")},
		{Name: "ltv", Type: featurestore.TypeNumber, Default: featurestore.Number(-1)},
		{Name: "interests", Type: featurestore.TypeList},
		{Name: "opted_out", Type: featurestore.TypeBool},
		{Name: "signup_at", Type: featurestore.TypeTime},
		{Name: "views_1h", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpCount, Window: time.Hour}},
		{Name: "views_100m", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpCount, Window: 100 * time.Minute}},
		{Name: "spend_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "buy", Op: featurestore.OpSum, Field: "amount", Window: 30 * 24 * time.Hour}},
		{Name: "last_cat_2h", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpLast, Field: "cat", Window: 2 * time.Hour}},
		{Name: "last_tags", Type: featurestore.TypeList, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpLast, Field: "tags"}},
		{Name: "seen_at_90m", Type: featurestore.TypeTime, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpLastTime, Window: 90 * time.Minute}},
		{Name: "views", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpCount}},
		{Name: "cart", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "cart_add", Op: featurestore.OpCount, ResetOn: []string{"buy"}}},
		{Name: "top_cat_1h", Type: featurestore.TypeString, Default: featurestore.String("none"), From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpTop, Field: "cat", Window: time.Hour}},
		{Name: "top_cat", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpTop, Field: "cat"}},
		{Name: "cats_2h", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpDistinct, Field: "cat", Window: 2 * time.Hour}},
		{Name: "channels", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "view", Op: featurestore.OpDistinct, Field: featurestore.FieldChannel}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomRecord is a customer with a random history under s, starting at
// start, plus an attribute and a feature s does not declare.
func randomRecord(s *featurestore.Schema, rng *rand.Rand, start time.Time) *featurestore.Record {
	r := &featurestore.Record{}
	if rng.IntN(2) == 0 {
		r.SetAttr("tier", featurestore.String(fmt.Sprint("t", rng.IntN(9))))
	}
	if rng.IntN(2) == 0 {
		r.SetAttr("ltv", featurestore.Number(rng.Float64()*100))
	}
	if rng.IntN(2) == 0 {
		r.SetAttr("interests", featurestore.List([]string{"a", fmt.Sprint("b", rng.IntN(9))}[:rng.IntN(3)]))
	}
	r.SetAttr("opted_out", featurestore.Bool(rng.IntN(2) == 0))
	r.SetAttr("signup_at", featurestore.String("a string where a time is declared"))
	r.SetAttr("undeclared", featurestore.Number(7))
	for i := range rng.IntN(60) {
		at := start.Add(time.Duration(i*97) * time.Second)
		typ := []string{"view", "buy", "cart_add"}[rng.IntN(3)]
		ev := featurestore.Event{Type: typ, Time: at, Channel: fmt.Sprint("ch", rng.IntN(4)), Properties: map[string]any{"cat": fmt.Sprint("c", i%(1+rng.IntN(12))), "amount": 2.5, "tags": []any{"x", fmt.Sprint("y", i)}}}
		r.Apply(s, &ev, at)
		if rng.IntN(4) == 0 {
			r.AddContact(featurestore.Contact{OfferID: fmt.Sprint("o", i), Channel: "web", Kind: featurestore.Click, At: at.UnixNano()}, 0, at)
		}
	}
	return r
}

// TestViewMatchesFeatures: a View of a packed record reads what
// Record.Features computes from the record, and its contact history, at
// every instant (across bucket boundaries and expiries of windowed last
// values), whatever the View read before.
func TestViewMatchesFeatures(t *testing.T) {
	s := viewSchema(t)
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var v featurestore.View
	for i := range 300 {
		r := randomRecord(s, rng, start)
		p := r.Pack()
		now := start.Add(time.Duration(rng.IntN(int(4 * time.Hour))))
		got, contacts := v.Read(p, s, now)
		want := r.Features(s, now, nil)
		for j := range want {
			if !got[j].Equal(want[j]) {
				t.Fatalf("record %d at %v: %s = %v from the view, %v from the record", i, now, s.Features()[j].Name, got[j], want[j])
			}
		}
		if !slices.Equal(contacts, r.Contacts) {
			t.Fatalf("record %d: contacts %v from the view, want %v", i, contacts, r.Contacts)
		}
	}
	if got, contacts := v.Read(nil, s, start); !slices.EqualFunc(got, s.Defaults(nil), featurestore.Value.Equal) || contacts != nil {
		t.Errorf("Read(nil) = %v, %v; want the defaults and no contacts", got, contacts)
	}
}

// TestViewCorrupt: a View of bytes that are not a record reads defaults
// where it could not read, and never panics.
func TestViewCorrupt(t *testing.T) {
	s := viewSchema(t)
	r := randomRecord(s, rand.New(rand.NewPCG(1, 1)), time.Now())
	p := r.Pack()
	var v featurestore.View
	for n := range len(p) {
		vec, _ := v.Read(p[:n:n], s, time.Now())
		if len(vec) != s.Len() {
			t.Fatalf("prefix %d: %d features, want %d", n, len(vec), s.Len())
		}
	}
	if vec, contacts := v.Read(featurestore.Packed{99}, s, time.Now()); !slices.EqualFunc(vec, s.Defaults(nil), featurestore.Value.Equal) || contacts != nil {
		t.Errorf("unknown version: %v, %v; want the defaults", vec, contacts)
	}
}

// TestPack: Pack is kept until the record changes through a method, and a
// packed record decodes to an equal record.
func TestPack(t *testing.T) {
	s := viewSchema(t)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	r := randomRecord(s, rand.New(rand.NewPCG(5, 6)), now)
	p := r.Pack()
	if q := r.Pack(); &q[0] != &p[0] {
		t.Error("Pack made a new encoding of an unchanged record")
	}
	changes := []struct {
		name   string
		change func(r *featurestore.Record)
	}{
		{"SetAttr", func(r *featurestore.Record) { r.SetAttr("tier", featurestore.String("gold")) }},
		{"Apply", func(r *featurestore.Record) {
			r.Apply(s, &featurestore.Event{Type: "view", Time: now, Properties: map[string]any{"cat": "z"}}, now)
		}},
		{"AddContact", func(r *featurestore.Record) {
			r.AddContact(featurestore.Contact{OfferID: "o", Channel: "web", Kind: featurestore.Impression, At: now.UnixNano()}, 0, now)
		}},
		{"TakeLegacySeen", func(r *featurestore.Record) { r.TakeLegacySeen(time.Hour, now) }},
	}
	for _, c := range changes {
		before := r.Pack()
		c.change(r)
		after := r.Pack()
		if c.name != "TakeLegacySeen" && string(after) == string(before) {
			t.Errorf("%s: the encoding did not change", c.name)
		}
		got, err := after.Record()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.EqualFunc(got.Features(s, now, nil), r.Features(s, now, nil), featurestore.Value.Equal) {
			t.Errorf("%s: the packed record decodes to other features", c.name)
		}
	}
	if r, err := featurestore.Packed(nil).Record(); r != nil || err != nil {
		t.Errorf("Packed(nil).Record() = %v, %v; want nil, nil", r, err)
	}
}

// TestViewAllocs: reading a packed record allocates nothing once the
// View's buffers have grown.
func TestViewAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a plain build")
	}
	s := viewSchema(t)
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	recs := make([]featurestore.Packed, 50)
	for i := range recs {
		recs[i] = randomRecord(s, rng, now.Add(-time.Hour)).Pack()
	}
	var v featurestore.View
	for _, p := range recs {
		v.Read(p, s, now)
	}
	i := 0
	if got := testing.AllocsPerRun(1000, func() {
		v.Read(recs[i%len(recs)], s, now)
		i++
	}); got != 0 {
		t.Errorf("allocs per Read: %v, want 0", got)
	}
}

// BenchmarkViewRead reads the features and contacts of a cached
// customer, as a decision on a cache hit does.
func BenchmarkViewRead(b *testing.B) {
	s := benchSchema(b)
	p := benchRecord(b, s).Pack()
	var v featurestore.View
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		v.Read(p, s, now)
	}
}

// TestViewNamesInAnyOrder: a View finds the features of a record whatever
// the order of its names, and skips the names the schema does not declare.
func TestViewNamesInAnyOrder(t *testing.T) {
	s := viewSchema(t)
	str := func(x string) []byte { return append([]byte{byte(len(x))}, x...) }
	p := featurestore.Packed{3, 4} // codec version, attributes
	p = append(append(p, str("tier")...), append([]byte{byte(featurestore.TypeString)}, str("g")...)...)
	p = append(append(p, str("ltv")...), byte(featurestore.TypeNumber), 0, 0, 0, 0, 0, 0, 0x45, 0x40) // 42
	p = append(append(p, str("opted_out")...), byte(featurestore.TypeBool), 2)                        // varint 1
	p = append(append(p, str("aaa")...), byte(featurestore.TypeBool), 2)
	p = append(p, 0, 0) // no aggregations, no contacts
	if _, err := p.Record(); err != nil {
		t.Fatalf("the test's record does not decode: %v", err)
	}
	var v featurestore.View
	got, _ := v.Read(p, s, time.Now())
	for _, c := range []struct {
		name string
		want featurestore.Value
	}{{"tier", featurestore.String("g")}, {"ltv", featurestore.Number(42)}, {"opted_out", featurestore.Bool(true)}} {
		f, _ := s.Lookup(c.name)
		if !got[f.Index].Equal(c.want) {
			t.Errorf("%s = %v, want %v", c.name, got[f.Index], c.want)
		}
	}
}
