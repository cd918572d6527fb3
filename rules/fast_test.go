package rules

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// TestFastMatchesVM is the differential test of the specialised
// evaluator: on every catalog in the repository, every rule must give the
// same answer on the fast path as on expr's VM, for many random customers.
func TestFastMatchesVM(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	examples, _ := filepath.Glob("../examples/*/*.yaml")
	files = append(files, examples...)
	files = append(files, "testdata/fast/shapes.yaml")
	if len(files) == 0 {
		t.Fatal("no catalogs found")
	}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file))+"/"+filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fast, err := Load(file, data)
			if err != nil {
				t.Fatal(err)
			}
			l := &loader{file: file, noFast: true}
			slow := l.load(data)
			if len(l.errs) > 0 {
				t.Fatal(l.errs)
			}
			rulesFast, rulesSlow := allRules(fast), allRules(slow)
			nFast := 0
			for _, r := range rulesFast {
				if r.Fast() {
					nFast++
				}
			}
			t.Logf("%d of %d rules on the fast path", nFast, len(rulesFast))
			if m := fast.Learning.Model; m != nil && filepath.Base(file) == "shapes.yaml" {
				for _, term := range m.Terms {
					if want := term.Name != "vm"; term.Score.Fast() != want {
						t.Errorf("model term %s (%s): on the fast path %v, want %v", term.Name, term.Score.Source, term.Score.Fast(), want)
					}
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
			var ef, es Env
			for i := range 2000 {
				vec := randomVector(rng, fast.Schema, now)
				ef.Reset(fast)
				es.Reset(slow)
				for _, e := range []*Env{&ef, &es} {
					e.Customer, e.Channel, e.Placement, e.Now = vec, fast.Channels[i%len(fast.Channels)].Name, "home_hero", now
					e.Context = contexts[i%len(contexts)]
				}
				for j := range fast.Segments {
					in, _ := fast.Segments[j].Rule.Eval(&ef)
					if in {
						ef.AddSegment(fast.Segments[j])
						es.AddSegment(slow.Segments[j])
					}
				}
				if m := fast.Learning.Model; m != nil {
					// The model's terms, compiled as scores.
					for j, term := range m.Terms {
						got, gerr := term.Score.Eval(&ef)
						want, werr := slow.Learning.Model.Terms[j].Score.Eval(&es)
						if got != want || (gerr == nil) != (werr == nil) {
							t.Fatalf("term %q on %v: fast = %v, %v; vm = %v, %v", term.Score.Source, vec, got, gerr, want, werr)
						}
					}
				}
				for j, r := range rulesFast {
					got, gerr := r.Eval(&ef)
					want, werr := rulesSlow[j].Eval(&es)
					if got != want || (gerr == nil) != (werr == nil) {
						t.Fatalf("rule %q on %v: fast = %v, %v; vm = %v, %v", r.Source, vec, got, gerr, want, werr)
					}
				}
			}
		})
	}
}

func allRules(c *Catalog) []*Rule {
	var rs []*Rule
	for _, s := range c.Segments {
		rs = append(rs, s.Rule)
		rs = append(rs, s.Rule.conjuncts...)
	}
	for _, o := range c.Offers {
		if o.Eligible != nil {
			rs = append(rs, o.Eligible)
			rs = append(rs, o.Eligible.conjuncts...)
		}
	}
	return rs
}

var contexts = []map[string]any{
	{"page": "cart"}, {"page": "home", "urgent": true}, {}, nil, {"page": 3.0, "urgent": "yes"}, {"page": nil},
}

var words = []string{"", "gold", "silver", "none", "running", "shoes", "outdoor", "kids", "electronics", "home"}

// randomVector makes feature values that hit rule boundaries often: small
// integers, the zero time, times around now.
func randomVector(rng *rand.Rand, s *featurestore.Schema, now time.Time) featurestore.Vector {
	v := make(featurestore.Vector, s.Len())
	for i, f := range s.Features() {
		switch f.Type {
		case featurestore.TypeNumber:
			choices := []float64{0, 1, 2, 3, 5, 10, 30, 60, 100, 500, 999, 1000, 1500, 5000, -1, 0.5}
			v[i] = featurestore.Number(choices[rng.IntN(len(choices))])
		case featurestore.TypeString:
			v[i] = featurestore.String(words[rng.IntN(len(words))])
		case featurestore.TypeBool:
			v[i] = featurestore.Bool(rng.IntN(2) == 0)
		case featurestore.TypeTime:
			if rng.IntN(4) == 0 {
				v[i] = featurestore.Zero(featurestore.TypeTime)
			} else {
				v[i] = featurestore.Time(now.Add(-time.Duration(rng.IntN(200*24)) * time.Hour))
			}
		case featurestore.TypeList:
			var l []string
			for range rng.IntN(4) {
				l = append(l, words[rng.IntN(len(words))])
			}
			v[i] = featurestore.List(l)
		default:
			panic(fmt.Sprint("type ", f.Type))
		}
	}
	return v
}
