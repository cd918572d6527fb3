package main

import (
	"strings"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

// TestRankingSummary: validate's ranking line names how propensities are
// learned, the learning model included.
func TestRankingSummary(t *testing.T) {
	const base = `channels: [web]
features:
  spend: {type: number}
segments:
  big: customer.spend > 100
offers:
  - {id: a, channels: [web], value: 1, content: {web: {h: a}}}
`
	tests := []struct {
		name, learning, want string
	}{
		{"counts", "learning: {learn_by: segment}\n", "propensities learned (thompson, prior 0.02 over 50 impressions, by segment)"},
		{"model", "learning:\n  model: {features: {spend: 'min(customer.spend, 500)'}, exploration: 0.25}\n",
			"propensities learned (thompson, prior 0.02 over 50 impressions, and a model over the 1 segments, spend: 3 terms, exploration 0.25)"},
		{"model without segments", "learning:\n  model: {segments: false, features: {spend: customer.spend}}\n",
			"and a model over spend: 2 terms, exploration 0.5)"},
		{"static", "arbitration: static\n", "static: value x weight"},
	}
	for _, tt := range tests {
		cat, err := rules.Load(tt.name+".yaml", []byte(base+tt.learning))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := rankingSummary(cat); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want it to contain %q", tt.name, got, tt.want)
		}
	}
}
