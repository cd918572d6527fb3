package rules

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// Model is learning.model: a per-offer linear model of the success
// probability over terms of the customer, learned online alongside the
// counts. Its terms are an intercept, one 0/1 term per catalog segment
// (when Segments) and the numeric features the author lists; an
// impression adds x·xᵀ of its customer's terms x to its offer ×
// channel's sums and a success adds x, so the sums are additive and
// every node shares them through the statistics cells like counts
// (decision/model.go has the method).
type Model struct {
	Terms    []Term // the listed features, in the order written
	Segments bool   // every segment a 0/1 term; default true
	// Exploration scales the posterior variance Thompson sampling draws
	// from: 1 is the posterior itself; below 1 explores less (Chapelle and
	// Li, "An Empirical Evaluation of Thompson Sampling", 2011, found 0.5
	// better than 1 on display advertising). Default DefaultModelExploration.
	Exploration float64

	// Sig names the model's terms: the statistics cells of a model are
	// keyed by it, so a catalog that changes its terms starts a new
	// model rather than reading sums of other terms.
	Sig string
	// AKeys and BKeys are the learn keys of the model's cells (see
	// featurestore.ModelKey): AKeys[k] the k-th entry of the upper
	// triangle of Σx·xᵀ, row by row, BKeys[i] of Σ(success)·x.
	AKeys, BKeys []string
	// TotalKey is the learn key of the cell counting the offer's outcomes
	// under the model, whatever the learn key (featurestore.ModelTotalKey):
	// the exploration floor reads it.
	TotalKey string
	dim      int
	nseg     int
}

// Term is a numeric expression over the customer, one term of the model.
type Term struct {
	Name  string
	Score *Score // compiled as a number; propensity, value and weight are 0
}

// DefaultModelExploration is learning.model.exploration when unset.
const DefaultModelExploration = 0.5

// MaxModelTerms bounds the model's terms, intercept and segments
// included: its state grows with their square.
const MaxModelTerms = 24

// Dim is the number of terms, the intercept included.
func (m *Model) Dim() int { return m.dim }

// Eval writes the customer's terms into x (len Dim): 1, the segments
// env is in (when Segments), then each listed feature. A term whose
// expression fails or is not finite is 0.
func (m *Model) Eval(env *Env, x []float64) {
	x[0] = 1
	i := 1
	if m.Segments {
		for k := range m.nseg {
			x[i] = 0
			if k < len(env.inSegment) && env.inSegment[k] {
				x[i] = 1
			}
			i++
		}
	}
	for _, t := range m.Terms {
		v, err := t.Score.Eval(env)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		x[i] = v
		i++
	}
}

var modelFields = []string{"features", "segments", "exploration"}

// model reads learning.model once the segments are compiled.
func (l *loader) model(c *Catalog, comp *compiler, n *yaml.Node) *Model {
	if n == nil {
		return nil
	}
	const obj = "learning.model"
	f := l.fields(n, obj, modelFields...)
	m := &Model{Segments: true, Exploration: DefaultModelExploration}
	if f["segments"] != nil {
		m.Segments = l.boolean(f["segments"], obj, "segments")
	}
	if f["exploration"] != nil {
		m.Exploration = l.number(f["exploration"], obj, "exploration", m.Exploration)
		if !(m.Exploration >= 0 && m.Exploration <= 10) {
			l.errorf(f["exploration"], obj, "exploration", "must be between 0 (greedy on the model's mean) and 10")
			m.Exploration = DefaultModelExploration
		}
	}
	if fn := f["features"]; fn != nil {
		if fn.Kind != yaml.MappingNode {
			l.errorf(fn, obj, "features", "must be a mapping of a term's name to a numeric expression over the customer")
		} else {
			for _, kv := range l.pairs(fn, obj, "features") {
				name, src := kv[0].Value, kv[1].Value
				if kv[1].Kind != yaml.ScalarNode {
					l.errorf(kv[1], obj, "features."+name, "must be a numeric expression")
					continue
				}
				s, eerr := comp.compileScore(src)
				if eerr != nil {
					l.exprError(kv[1], obj, "features."+name, src, eerr)
					continue
				}
				s.Line, s.Column = kv[1].Line, kv[1].Column
				m.Terms = append(m.Terms, Term{Name: name, Score: s})
			}
		}
	}
	if m.Segments {
		m.nseg = len(c.Segments)
	}
	m.dim = 1 + m.nseg + len(m.Terms)
	if m.dim > MaxModelTerms {
		l.errorf(n, obj, "features", "%d terms (the intercept, %d segments and %d features) are more than %d", m.dim, m.nseg, len(m.Terms), MaxModelTerms)
		return nil
	}
	if m.dim == 1 {
		l.errorf(n, obj, "features", "the model has no term but the intercept: list features or keep segments: true in a catalog with segments")
		return nil
	}
	// The signature: the terms' names and sources, and the segments'.
	h := fnv.New64a()
	fmt.Fprintf(h, "%v|%d|", m.Segments, len(c.Segments))
	if m.Segments {
		for _, s := range c.Segments {
			fmt.Fprintf(h, "%s=%s|", s.Name, s.Rule.Source)
		}
	}
	for _, t := range m.Terms {
		fmt.Fprintf(h, "%s=%s|", t.Name, strings.TrimSpace(t.Score.Source))
	}
	m.Sig = strconv.FormatUint(h.Sum64(), 36)
	m.TotalKey = featurestore.ModelTotalKey(m.Sig)
	for i := range m.dim {
		for j := i; j < m.dim; j++ {
			m.AKeys = append(m.AKeys, featurestore.ModelKey(m.Sig, 'a', i, j))
		}
		m.BKeys = append(m.BKeys, featurestore.ModelKey(m.Sig, 'b', i, 0))
	}
	return m
}
