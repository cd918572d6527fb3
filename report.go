package nextbest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// StatsReader reads the hourly outcome statistics shared by every node
// (featurestore.StatsStore): the cells whose Hour is in [from, to].
type StatsReader interface {
	HourlyStats(ctx context.Context, from, to int64) (map[featurestore.StatKey]featurestore.Counts, error)
}

// MaxReportRange bounds the period of one Report.
const MaxReportRange = 400 * 24 * time.Hour

// ErrNoStats is returned by Report when the service has no StatsReader.
var ErrNoStats = errors.New("nextbest: statistics are not enabled")

// RequestError is a request the service refuses: the field at fault and
// why, written for whoever sent it.
type RequestError struct {
	Field  string
	Reason string
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Reason }

// Report is the outcome statistics of a period.
type Report struct {
	From, To time.Time // UTC
	// Offers holds one row per offer × channel × experiment variant,
	// sorted by those; their Decisions are zero (decisions are counted per
	// channel and variant, not per offer).
	Offers []OfferReport
	// Experiments holds the catalog's experiments, in its order.
	Experiments []ExperimentReport
}

// OfferReport is one offer's outcomes on one channel in one experiment
// variant ("" for none).
type OfferReport struct {
	OfferID, Channel, Experiment, Variant string
	featurestore.Counts
	CTR            *float64 // clicks per impression; nil without impressions
	ConversionRate *float64 // conversions per impression; nil without impressions
}

// ExperimentReport is an experiment's variants, each compared with the
// control: the variant named control, else the first.
type ExperimentReport struct {
	ID, Control string
	Variants    []VariantReport
}

// VariantReport is the outcomes of one experiment variant.
type VariantReport struct {
	Name string
	featurestore.Counts
	ConversionsPerDecision *float64 // nil without decisions
	ValuePerDecision       *float64 // nil without decisions
	Uplift                 *Uplift  // nil for the control, and while either has no decisions
}

// Uplift is a variant's conversions per decision compared with the
// control's, as UpliftMethod says.
type Uplift struct {
	Difference float64    // variant minus control
	CI95       [2]float64 // 95% confidence interval of Difference
	Relative   *float64   // Difference / control's rate; nil when that is 0
}

// UpliftMethod says how Uplift is computed, for readers of a report.
const UpliftMethod = "difference in conversions per decision between a variant and the control " +
	"(the variant named control, else the first), with a 95% confidence interval from the normal " +
	"approximation (Wald): diff ± 1.96·sqrt(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀), decisions taken as independent trials"

// Report sums the hourly statistics of the hours from through to, under
// the catalog in force: per offer × channel × variant, and per experiment
// variant with its uplift over the control. A period longer than
// MaxReportRange, or one that ends before it starts, is a *RequestError;
// a store failure is returned as is.
func (s *Service) Report(ctx context.Context, from, to time.Time) (*Report, error) {
	if s.statsReader == nil {
		return nil, ErrNoStats
	}
	switch {
	case to.Before(from):
		return nil, &RequestError{Field: "to", Reason: "must not be before from"}
	case to.Sub(from) > MaxReportRange:
		return nil, &RequestError{Field: "from, to", Reason: fmt.Sprintf("a period of at most %d days", int(MaxReportRange/(24*time.Hour)))}
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	cells, err := s.statsReader.HourlyStats(c, featurestore.Hour(from), featurestore.Hour(to))
	cancel()
	if err != nil {
		return nil, err
	}
	r := s.report(cells)
	r.From, r.To = from.UTC(), to.UTC()
	return r, nil
}

// report sums hourly cells over the period.
func (s *Service) report(cells map[featurestore.StatKey]featurestore.Counts) *Report {
	cat := s.catalog.Load()
	type offerKey struct{ offer, channel, experiment, variant string }
	offers := map[offerKey]featurestore.Counts{}
	type variantKey struct{ experiment, variant string }
	variants := map[variantKey]featurestore.Counts{}
	for k, c := range cells {
		if k.Offer != "" {
			ok := offerKey{k.Offer, k.Channel, k.Experiment, k.Variant}
			sum := offers[ok]
			sum.Add(c)
			offers[ok] = sum
		}
		if k.Experiment != "" {
			vk := variantKey{k.Experiment, k.Variant}
			sum := variants[vk]
			sum.Add(c)
			variants[vk] = sum
		}
	}
	r := &Report{Offers: []OfferReport{}, Experiments: []ExperimentReport{}}
	for k, c := range offers {
		c.Decisions = 0 // decisions are counted per channel and variant, not per offer
		r.Offers = append(r.Offers, OfferReport{OfferID: k.offer, Channel: k.channel, Experiment: k.experiment, Variant: k.variant, Counts: c,
			CTR:            ratio(float64(c.Clicks), float64(c.Impressions)),
			ConversionRate: ratio(float64(c.Conversions), float64(c.Impressions))})
	}
	slices.SortFunc(r.Offers, func(a, b OfferReport) int {
		return strings.Compare(a.OfferID+"\x00"+a.Channel+"\x00"+a.Experiment+"\x00"+a.Variant, b.OfferID+"\x00"+b.Channel+"\x00"+b.Experiment+"\x00"+b.Variant)
	})
	for _, x := range cat.Experiments {
		es := ExperimentReport{ID: x.ID, Control: x.Variants[0].Name}
		for _, v := range x.Variants {
			if v.Name == "control" {
				es.Control = v.Name
			}
		}
		control := variants[variantKey{x.ID, es.Control}]
		for _, v := range x.Variants {
			c := variants[variantKey{x.ID, v.Name}]
			vs := VariantReport{Name: v.Name, Counts: c,
				ConversionsPerDecision: ratio(float64(c.Conversions), float64(c.Decisions)),
				ValuePerDecision:       ratio(c.Value, float64(c.Decisions))}
			if v.Name != es.Control {
				vs.Uplift = upliftOf(c, control)
			}
			es.Variants = append(es.Variants, vs)
		}
		r.Experiments = append(r.Experiments, es)
	}
	return r
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := a / b
	return &r
}

// upliftOf compares a variant's conversions per decision with the
// control's; nil while either has no decisions.
func upliftOf(v, control featurestore.Counts) *Uplift {
	if v.Decisions == 0 || control.Decisions == 0 {
		return nil
	}
	p1 := float64(v.Conversions) / float64(v.Decisions)
	p0 := float64(control.Conversions) / float64(control.Decisions)
	// Conversions per decision may exceed 1; the variance term is then
	// taken at 0 rather than negative.
	v1 := max(p1*(1-p1), 0) / float64(v.Decisions)
	v0 := max(p0*(1-p0), 0) / float64(control.Decisions)
	d := p1 - p0
	half := 1.96 * math.Sqrt(v1+v0)
	return &Uplift{Difference: d, CI95: [2]float64{d - half, d + half}, Relative: ratio(d, p0)}
}
