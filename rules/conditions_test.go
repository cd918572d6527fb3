package rules

import (
	"slices"
	"testing"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

const conditionsCatalog = `
channels: [web]
features:
  ltv: {type: number}
  tier: {type: string, default: none}
segments:
  big: 'customer.ltv > 100'
offers:
  - {id: a, channels: [web], content: {web: {h: a}}, eligible: 'customer.ltv > 100 && customer.tier == "gold"'}
  - {id: b, channels: [web], content: {web: {h: b}}, eligible: '(customer.tier == "gold" || customer.ltv > 100) && !(customer.ltv > 100)'}
  - {id: c, channels: [web], content: {web: {h: c}}, eligible: 'len(segments) > 0'}
  - {id: d, channels: [web], content: {web: {h: d}}, eligible: 'upper(customer.tier) == "GOLD"'}
  - {id: e, channels: [web], content: {web: {h: e}}}
`

// TestConditions checks what the plans are made of: each distinct
// condition once, whatever the rule that uses it; offers whose rule runs
// on the VM, or have none, are never screened out; and an answer that
// read the segments is forgotten when a segment is added.
func TestConditions(t *testing.T) {
	c, err := Load("conditions.yaml", []byte(conditionsCatalog))
	if err != nil {
		t.Fatal(err)
	}
	// customer.ltv > 100, customer.tier == "gold", len(segments) > 0.
	if got, want := len(c.conds.fns), 3; got != want {
		t.Errorf("%d distinct conditions, want %d", got, want)
	}
	if d, _ := c.Offer("d"); d.Eligible.plan != nil {
		t.Error("offer d, on the VM, has a plan")
	}
	web, _ := c.Channel("web")
	tests := []struct {
		ltv      float64
		tier     string
		segments bool // add the segments the customer is in
		want     []string
	}{
		{0, "none", false, []string{"d", "e"}},
		{200, "gold", false, []string{"a", "d", "e"}},
		{0, "gold", false, []string{"b", "d", "e"}},
		{200, "none", true, []string{"c", "d", "e"}},
	}
	// An Env Reset for another catalog of the same schema shares no
	// conditions: Screen must judge each planned offer by its rule.
	other, err := Load("conditions.yaml", []byte(conditionsCatalog))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		for _, resetFor := range []*Catalog{c, other} {
			for _, small := range []bool{true, false} {
				// One by one, as Screen judges a small channel, and by
				// the index, as it judges a large one.
				for i := range c.screens {
					c.screens[i].small = small
				}
				var env Env
				env.Reset(resetFor)
				env.Customer = c.Schema.Defaults(nil)
				f, _ := c.Schema.Lookup("ltv")
				env.Customer[f.Index].Num = tt.ltv
				f, _ = c.Schema.Lookup("tier")
				env.Customer[f.Index].Str = tt.tier
				o, _ := c.Offer("c")
				// Asked before the segments are known, len(segments) > 0 is
				// false; AddSegment must make it be asked again.
				if ok, _ := o.Eligible.Eval(&env); ok {
					t.Errorf("ltv %v: offer c eligible with no segment", tt.ltv)
				}
				if tt.segments {
					for _, s := range c.Segments {
						if in, _ := s.Rule.Eval(&env); in {
							env.AddSegment(s)
						}
					}
				}
				var got []string
				for _, o := range c.Screen(web, &env) {
					got = append(got, o.ID)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("ltv %v, tier %s, Env of catalog %p, small %v: Screen = %v, want %v", tt.ltv, tt.tier, resetFor, small, got, tt.want)
				}
			}
		}
	}
}

// TestListings: a channel's listings hold, at each position, the hot
// fields of the offer OffersFor lists there, as the offer itself has
// them.
func TestListings(t *testing.T) {
	c, err := Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 200, Segments: 10, Seed: 2}))
	if err != nil {
		t.Fatal(err)
	}
	placed, scheduled := 0, 0
	for _, ch := range c.Channels {
		offers, ls := c.OffersFor(ch), c.Listings(ch)
		if len(ls) != len(offers) {
			t.Fatalf("%s: %d listings, %d offers", ch.Name, len(ls), len(offers))
		}
		for pos, o := range offers {
			l := ls[pos]
			want := Listing{Offer: o, Content: o.Content(ch), Value: o.Value, Weight: o.Weight, Prior: o.Prior,
				Placed: len(o.Placements) > 0, Scheduled: !o.Start.IsZero() || !o.End.IsZero(), Planned: o.Planned()}
			if l != want {
				t.Errorf("%s, position %d: listing %+v, want %+v", ch.Name, pos, l, want)
			}
			if l.Placed {
				placed++
			}
			if l.Scheduled {
				scheduled++
			}
		}
	}
	if placed == 0 || scheduled == 0 {
		t.Errorf("%d listings placed, %d scheduled: the test checks neither flag set", placed, scheduled)
	}
}
