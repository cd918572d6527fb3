package rules

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// Learning configures how propensities are learned and used.
type Learning struct {
	Prior   Prior   // the catalog's prior; an offer may set its own
	Explore Explore // thompson (default) or greedy
	// Success is the outcome that counts as a success of an impression:
	// Conversion (default) or Click.
	Success featurestore.Outcome
	// LearnBy splits the statistics of each offer × channel by a key:
	// by the first segment the customer is in (in declaration order), or
	// by the value of a string or bool feature. Zero: no split.
	LearnBy LearnBy
	// MinExplore is the exploration floor: an offer whose cell (offer ×
	// channel × learn key) has fewer impressions ranks above every offer
	// whose cell has reached it, so no offer is starved before its own
	// outcomes have had a say. Under Thompson sampling only (greedy
	// and static arbitration do not explore). 0 turns the floor off.
	// Default DefaultMinExplore.
	MinExplore int
	// Model, when set (learning.model), learns each offer's success
	// probability from the customer's terms too, and the propensity is
	// drawn from it rather than from the learn key's counts (model.go).
	Model *Model
}

// DefaultMinExplore is learning.min_explore when a catalog sets none.
const DefaultMinExplore = 50

// maxMinExplore bounds learning.min_explore.
const maxMinExplore = 1_000_000

// Prior is a Beta prior on an offer's success rate: as if Strength
// impressions had been seen with a success rate of Rate.
type Prior struct {
	Rate     float64
	Strength float64
}

// Alpha and Beta are the parameters of the prior's Beta distribution.
func (p Prior) Alpha() float64 { return p.Rate * p.Strength }

// Beta is the prior's second parameter; see Alpha.
func (p Prior) Beta() float64 { return (1 - p.Rate) * p.Strength }

// DefaultPrior is the prior when a catalog sets none: a 2% success rate,
// worth 50 impressions.
var DefaultPrior = Prior{Rate: 0.02, Strength: 50}

// Explore is how a decision uses the learned posteriors.
type Explore uint8

// Exploration strategies.
const (
	Thompson Explore = iota // sample each offer's propensity from its posterior
	Greedy                  // use the posterior mean
)

func (x Explore) String() string {
	if x == Greedy {
		return "greedy"
	}
	return "thompson"
}

// LearnBy names the key that splits the learning statistics.
type LearnBy struct {
	Segment bool                  // the first segment the customer is in
	Feature *featurestore.Feature // a string or bool feature; nil for none
}

// IsZero reports whether statistics are not split.
func (b LearnBy) IsZero() bool { return !b.Segment && b.Feature == nil }

func (b LearnBy) String() string {
	switch {
	case b.Segment:
		return "segment"
	case b.Feature != nil:
		return b.Feature.Name
	}
	return ""
}

// Arbitration is how eligible offers are ranked.
type Arbitration struct {
	// Static ranks by value × weight alone, ignoring propensities.
	Static bool
	// Score, when set, replaces the default score propensity × value ×
	// weight.
	Score *Score
}

// Score is a compiled numeric expression over the rule environment plus
// propensity, value and weight.
type Score struct {
	Source       string
	Line, Column int

	program *vm.Program
	fast    numFn
	cost    int // steps of one evaluation (safety.go)
}

// Eval evaluates s against env, whose Propensity, Value and Weight are the
// scored offer's.
func (s *Score) Eval(env *Env) (float64, error) {
	if s.fast != nil {
		return s.fast(env), nil
	}
	out, err := env.vm.Run(s.program, env.vmEnvironment())
	if err != nil {
		return 0, err
	}
	switch x := out.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	}
	return 0, fmt.Errorf("arbitration returned %T, not a number", out)
}

// Fast reports whether s runs on the specialised evaluator.
func (s *Score) Fast() bool { return s != nil && s.fast != nil }

var learningFields = []string{"prior", "explore", "success", "learn_by", "min_explore", "model"}

// learning reads learning: {prior: {rate, strength}, explore, success, learn_by}.
func (l *loader) learning(c *Catalog, n *yaml.Node) Learning {
	lr := Learning{Prior: DefaultPrior, Explore: Thompson, Success: featurestore.Conversion, MinExplore: DefaultMinExplore}
	if n == nil {
		return lr
	}
	const obj = "learning"
	f := l.fields(n, obj, learningFields...)
	if f["prior"] != nil {
		lr.Prior = l.prior(f["prior"], DefaultPrior, obj, "prior")
	}
	if s, ok := l.str(f["explore"], obj, "explore"); ok {
		switch s {
		case "thompson":
			lr.Explore = Thompson
		case "greedy":
			lr.Explore = Greedy
		default:
			l.errorf(f["explore"], obj, "explore", "%q is not one of thompson, greedy", s)
		}
	}
	if s, ok := l.str(f["success"], obj, "success"); ok {
		switch s {
		case "conversion":
			lr.Success = featurestore.Conversion
		case "click":
			lr.Success = featurestore.Click
		default:
			l.errorf(f["success"], obj, "success", "%q is not one of conversion, click", s)
		}
	}
	if s, ok := l.str(f["learn_by"], obj, "learn_by"); ok {
		if s == "segment" {
			lr.LearnBy.Segment = true
		} else if ft, known := c.Schema.Lookup(s); !known {
			l.errorf(f["learn_by"], obj, "learn_by", "%q is neither segment nor a feature", s)
		} else if ft.Type != featurestore.TypeString && ft.Type != featurestore.TypeBool {
			l.errorf(f["learn_by"], obj, "learn_by", "feature %q is a %s; learn_by takes a string or bool feature (or segment)", s, ft.Type)
		} else {
			lr.LearnBy.Feature = ft
		}
	}
	if f["min_explore"] != nil {
		v := l.number(f["min_explore"], obj, "min_explore", float64(lr.MinExplore))
		if v != math.Trunc(v) || v < 0 || v > maxMinExplore {
			l.errorf(f["min_explore"], obj, "min_explore", "must be a whole number of impressions, 0 to %d", maxMinExplore)
		} else {
			lr.MinExplore = int(v)
		}
	}
	return lr
}

// prior reads {rate: 0.02, strength: 50}; a half left out is base's.
func (l *loader) prior(n *yaml.Node, base Prior, obj, field string) Prior {
	p := base
	f := l.fields(n, obj, "rate", "strength")
	if f["rate"] != nil {
		p.Rate = l.number(f["rate"], obj, field+".rate", p.Rate)
		if !(p.Rate > 0 && p.Rate < 1) {
			l.errorf(f["rate"], obj, field+".rate", "must be between 0 and 1 (exclusive)")
			p.Rate = base.Rate
		}
	}
	if f["strength"] != nil {
		p.Strength = l.number(f["strength"], obj, field+".strength", p.Strength)
		if !(p.Strength > 0) || p.Strength > 1e9 {
			l.errorf(f["strength"], obj, field+".strength", "must be a positive number of impressions")
			p.Strength = base.Strength
		}
	}
	return p
}

// arbitration reads an arbitration setting: static, learned, or an
// expression giving each eligible offer's score.
func (l *loader) arbitration(comp *compiler, n *yaml.Node, obj, field string) *Arbitration {
	src, ok := l.str(n, obj, field)
	if !ok {
		return nil
	}
	switch strings.TrimSpace(src) {
	case "static":
		return &Arbitration{Static: true}
	case "learned":
		return &Arbitration{}
	}
	s, eerr := comp.compileScore(src)
	if eerr != nil {
		l.exprError(n, obj, field, src, eerr)
		return nil
	}
	l.usePlacements(comp, n, obj, field, src)
	s.Line, s.Column = n.Line, n.Column
	return &Arbitration{Score: s}
}

// compileScore compiles a numeric arbitration expression.
func (c *compiler) compileScore(src string) (*Score, *exprError) {
	if strings.TrimSpace(src) == "" {
		return nil, &exprError{msg: "empty expression (want static, learned, or an expression such as propensity * value * weight)"}
	}
	env := types.Map{"propensity": types.Float64, "value": types.Float64, "weight": types.Float64}
	for k, v := range c.env {
		env[k] = v
	}
	opts := []expr.Option{expr.Env(env), expr.AsFloat64(), expr.MaxNodes(MaxExprNodes), expr.Patch(nowPatcher{})}
	cfg := config(append(opts, sinceFns...))
	x, e := c.parse(src, cfg)
	if e != nil {
		return nil, e
	}
	cost, e := c.checkSafety(src, x.tree.Node)
	if e != nil {
		return nil, e
	}
	var fast numFn
	if !c.noFast {
		fc := c.fast
		fc.score = true
		if fn, ok := fc.num(x.tree.Node); ok {
			fast = fn
		}
	}
	p, e := compile(x.tree, cfg)
	if e != nil {
		return nil, e
	}
	if x.unknownSegment != nil {
		return nil, x.unknownSegment
	}
	if x.unknownChannel != nil {
		return nil, x.unknownChannel
	}
	c.placements = x.placements
	return &Score{Source: src, program: p, fast: fast, cost: cost}, nil
}

// sticky reads a stickiness window such as 24h, or none.
func (l *loader) sticky(n *yaml.Node, obj string) time.Duration {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Value == "none") {
		return 0
	}
	return l.duration(n, n, obj, "sticky")
}
