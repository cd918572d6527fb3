package rules_test

import (
	"slices"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

const scopedCatalog = `
channels: [web, email, sms]
features:
  spend: {type: number}
segments:
  vip: customer.spend > 1000
  lapsed: customer.spend > 0
experiments:
  - id: winback
    channels: [email, sms]
    segment: lapsed
    variants: [{name: control}, {name: bigger}]
  - id: web-only
    channels: [web]
    variants: [{name: control}, {name: static, arbitration: static}]
  - id: everywhere
    variants: [{name: a}, {name: b}]
holdout: {share: 0.05, salt: "2026"}
offers:
  - id: promo
    channels: [web, email, sms]
    content: {web: {h: promo}, email: {subject: promo}, sms: {text: promo}}
`

// TestLoadExperimentScope checks what scoped experiments and the global
// holdout compile to.
func TestLoadExperimentScope(t *testing.T) {
	c, err := rules.Load("x.yaml", []byte(scopedCatalog))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, x := range c.Experiments {
		ids = append(ids, x.ID)
		if x.Index != i {
			t.Errorf("%s: index %d, want %d", x.ID, x.Index, i)
		}
	}
	if got, want := ids, []string{"global_holdout", "winback", "web-only", "everywhere"}; !slices.Equal(got, want) {
		t.Fatalf("experiments %v, want %v (the global holdout first)", got, want)
	}
	g := c.Experiments[0]
	if !g.Global || g.Salt != "2026" || g.Traffic != 1 || g.Scoped() || len(g.Variants) != 2 {
		t.Fatalf("global holdout = %+v", g)
	}
	if h, tr := g.Variants[0], g.Variants[1]; h.Name != "holdout" || !h.Holdout || h.Weight != 0.05 || tr.Name != "treated" || tr.Holdout || tr.Weight != 0.95 {
		t.Errorf("global holdout variants %+v %+v, want holdout (0.05, holdout) then treated (0.95)", h, tr)
	}
	if got := g.Variants[0].Label(); got != "global_holdout/holdout" {
		t.Errorf("label %q", got)
	}
	winback, _ := c.Experiment("winback")
	if !winback.Scoped() || len(winback.Channels) != 2 || winback.Channels[0].Name != "email" || winback.Segment == nil || winback.Segment.Name != "lapsed" {
		t.Errorf("winback scope: channels %v segment %v", winback.Channels, winback.Segment)
	}
	everywhere, _ := c.Experiment("everywhere")
	tests := []struct {
		x       *rules.Experiment
		channel string
		want    bool
	}{
		{winback, "email", true}, {winback, "sms", true}, {winback, "web", false}, {winback, "fax", false},
		{everywhere, "web", true}, {everywhere, "fax", true}, {g, "sms", true},
	}
	for _, tt := range tests {
		if got := tt.x.OnChannel(tt.channel); got != tt.want {
			t.Errorf("%s.OnChannel(%q) = %v, want %v", tt.x.ID, tt.channel, got, tt.want)
		}
	}
	if everywhere.Scoped() {
		t.Errorf("everywhere is scoped: %+v", everywhere)
	}
}
