package nextbest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
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

// ReportQuery asks for a report.
type ReportQuery struct {
	// From and To bound the period: the hourly cells whose hour is in
	// [From, To]. The statistics by customer are those of the customers
	// first exposed in the period, with their conversions to date.
	From, To time.Time
	// Channel, when not "", keeps the per-decision rows (channels, offers,
	// experiments by channel) of that channel of the catalog. The
	// statistics by customer are not split by channel: a customer is
	// exposed to an experiment once, on whatever channels they decide.
	Channel string
	// Segment, when not "", keeps the per-decision rows of the decisions
	// for customers in that segment of the catalog when decided for, and
	// the outcomes of those decisions; a decision whose customer was in
	// two segments counts in both. The statistics by customer are not
	// split by segment (see ExperimentReport.CustomersInSegment).
	Segment string
	// RetentionDays is the N of the retention KPI: the share of exposed
	// customers whose first conversion came within N days of their first
	// exposure. 0 means DefaultRetentionDays; at most
	// featurestore.MaxRetentionDays.
	RetentionDays int
}

// DefaultRetentionDays is the retention KPI's N when a query names none.
const DefaultRetentionDays = 30

// Report is the outcome statistics of a period.
type Report struct {
	From, To time.Time // UTC
	Channel  string    // the query's filter; "" for every channel
	Segment  string    // the query's filter; "" for every customer
	// ReachNote, when not "", says that the reach figures undercount: a
	// stored sketch of the period was corrupt (featurestore.ErrCorruptSketch)
	// and is left out.
	ReachNote     string
	RetentionDays int
	// Channels holds one row per channel of the catalog (or the one
	// filtered for), in the catalog's order: its decisions, and the
	// outcomes of offers presented on it.
	Channels []ChannelReport
	// Offers holds one row per offer × channel × experiment variant,
	// sorted by those; their Decisions are zero (decisions are counted per
	// channel and variant, not per offer).
	Offers []OfferReport
	// Experiments holds the catalog's experiments, in its order.
	Experiments []ExperimentReport
}

// ChannelReport is the decisions of one channel and the outcomes of
// offers presented on it (an organic conversion, naming no offer, counts
// for experiments only).
type ChannelReport struct {
	Channel string
	featurestore.Counts
	// Reach is the distinct customers decided for on the channel in the
	// period, estimated (featurestore.ReachRelativeError); nil when the
	// store keeps no reach.
	Reach          *int64
	CTR            *float64 // clicks per impression; nil without impressions
	ConversionRate *float64 // conversions per impression; nil without impressions
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
	// Channels holds the per-decision figures of each variant on each
	// channel it decided on, by variant then channel: descriptive
	// statistics, not compared.
	Channels []VariantChannelReport
	// CustomersInSegment, in a report filtered by segment, says whether
	// the variants' Customers and Uplift are those of the segment's
	// customers: true when the experiment is scoped to that segment
	// (only its customers are assigned), false when they are every
	// customer of the experiment's, in the segment or not. nil without a
	// segment filter.
	CustomersInSegment *bool
}

// SegmentCustomersNote explains, in a report filtered by segment, what
// its figures by customer cover.
const SegmentCustomersNote = "segment= filters the per-decision figures (channels, offers, variants' decisions and outcomes, " +
	"variants by channel, reach): the decisions made for customers in the segment when decided for, and the outcomes of those decisions; " +
	"a decision whose customer was in several segments counts in each. The figures by customer (customers, uplift) are not split by segment: " +
	"they cover the experiment's customers, which are the segment's when the experiment is scoped to it (customers_in_segment: true)."

// VariantReport is the outcomes of one experiment variant: by decision,
// descriptive, and by customer, the unit of randomisation, compared with
// the control.
type VariantReport struct {
	Name string
	// Counts are the variant's decisions and the outcomes of its
	// customers (on every channel), counted per decision: descriptive
	// statistics. A customer who decides on four channels counts four
	// times, and how often customers decide may itself depend on the
	// variant, so they are no basis for comparing variants.
	featurestore.Counts
	ConversionsPerDecision *float64 // nil without decisions
	ValuePerDecision       *float64 // nil without decisions
	// Customers is the variant's customers first exposed in the period,
	// each counted once, and their outcomes since.
	Customers CustomerReport
	Uplift    *Uplift // nil for the control
}

// CustomerReport is the figures of a variant's exposed customers.
type CustomerReport struct {
	Exposed     int64 // customers with at least one decision in the experiment
	Converters  int64 // of them, those with at least one conversion since
	Conversions int64 // their conversions since their first exposure
	Value       float64
	// Per exposed customer, those without a conversion counting 0; nil
	// without exposed customers.
	ConversionRate         *float64 // Converters / Exposed
	ConversionsPerCustomer *float64
	ValuePerCustomer       *float64
	// Retention is the share of Exposed whose first conversion came
	// within the report's RetentionDays of their first exposure.
	Retention *float64
}

// Uplift is a variant's customers compared with the control's, as
// UpliftMethod says. Each interval is nil while it cannot be computed
// (no customers on a side; for means, fewer than two).
type Uplift struct {
	ConversionRate         *Interval // converters per exposed customer
	ConversionsPerCustomer *Interval
	ValuePerCustomer       *Interval
}

// UpliftMethod says how Uplift is computed, for readers of a report.
const UpliftMethod = "unit of analysis: the customer assigned to a variant (the unit of randomisation), counted once " +
	"from their first decision in the experiment (exposure), with their conversions and value from then on; " +
	"a report covers the customers first exposed in its period (start it at the experiment's start to count every customer). " +
	"Each variant is compared with the control (the variant named control, else the first): " +
	"conversion_rate (converters per exposed customer) by the difference of proportions with Newcombe's hybrid score interval " +
	"(method 10, from two Wilson intervals); conversions_per_customer and value_per_customer (means over exposed customers, " +
	"0 for those without a conversion) by the difference of means with Welch's unequal-variance t interval " +
	"(Welch–Satterthwaite degrees of freedom). All intervals are 95%. Per-decision figures (decisions, conversions_per_decision, " +
	"ctr) are descriptive only."

// Report sums the hourly statistics of q's period under the catalog in
// force: per channel, per offer × channel × variant, and per experiment
// variant, by decision and by customer with its uplift over the control.
// A period longer than MaxReportRange or one that ends before it starts,
// a channel not of the catalog, a retention outside 1 to
// featurestore.MaxRetentionDays days, is a *RequestError; a store
// failure is returned as is.
func (s *Service) Report(ctx context.Context, q ReportQuery) (*Report, error) {
	if s.statsReader == nil {
		return nil, ErrNoStats
	}
	from, to := q.From, q.To
	cat := s.catalog.Load()
	if q.RetentionDays == 0 {
		q.RetentionDays = DefaultRetentionDays
	}
	switch {
	case to.Before(from):
		return nil, &RequestError{Field: "to", Reason: "must not be before from"}
	case to.Sub(from) > MaxReportRange:
		return nil, &RequestError{Field: "from, to", Reason: fmt.Sprintf("a period of at most %d days", int(MaxReportRange/(24*time.Hour)))}
	case q.RetentionDays < 1 || q.RetentionDays > featurestore.MaxRetentionDays:
		return nil, &RequestError{Field: "retention_days", Reason: fmt.Sprintf("a number of days from 1 to %d", featurestore.MaxRetentionDays)}
	}
	if _, ok := cat.Channel(q.Channel); q.Channel != "" && !ok {
		return nil, &RequestError{Field: "channel", Reason: fmt.Sprintf("%q is not a channel of the catalog, one of %s", q.Channel, strings.Join(cat.ChannelNames(), ", "))}
	}
	if err := checkSegment(cat, q.Segment); err != nil {
		return nil, err
	}
	c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
	cells, err := s.statsReader.HourlyStats(c, featurestore.Hour(from), featurestore.Hour(to))
	cancel()
	if err != nil {
		return nil, err
	}
	r := report(cat, cells, q)
	r.From, r.To = from.UTC(), to.UTC()
	if s.reachReader != nil {
		c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
		sketches, err := s.reachReader.Reach(c, featurestore.Hour(from), featurestore.Hour(to))
		cancel()
		switch {
		case errors.Is(err, featurestore.ErrCorruptSketch):
			// The other cells' reach stands; say which is missing.
			r.ReachNote = "reach undercounts: " + err.Error()
		case err != nil:
			return nil, err
		}
		r.setReach(sketches)
	}
	return r, nil
}

// setReach fills in the reach of r's rows from the period's sketches: a
// row without a sketch reached no customer.
func (r *Report) setReach(sketches map[featurestore.ReachKey]*featurestore.Sketch) {
	reach := func(k featurestore.ReachKey) *int64 {
		k.Segment = r.Segment
		n := int64(0)
		if s := sketches[k]; s != nil {
			n = s.Estimate()
		}
		return &n
	}
	for i := range r.Channels {
		r.Channels[i].Reach = reach(featurestore.ReachKey{Channel: r.Channels[i].Channel})
	}
	for i := range r.Experiments {
		x := &r.Experiments[i]
		for j := range x.Channels {
			vc := &x.Channels[j]
			vc.Reach = reach(featurestore.ReachKey{Channel: vc.Channel, Experiment: x.ID, Variant: vc.Variant})
		}
	}
}

// report sums hourly cells over the period.
func report(cat *rules.Catalog, cells map[featurestore.StatKey]featurestore.Counts, q ReportQuery) *Report {
	type offerKey struct{ offer, channel, experiment, variant string }
	offers := map[offerKey]featurestore.Counts{}
	type variantKey struct{ experiment, variant, channel string }
	variants := map[variantKey]featurestore.Counts{} // by decision; channel "" sums them all
	cohorts := map[variantKey]featurestore.Counts{}  // by customer (channel "")
	retained := map[variantKey]int64{}               // first conversions within q.RetentionDays
	channels := map[string]featurestore.Counts{}
	add := func(m map[variantKey]featurestore.Counts, k variantKey, c featurestore.Counts) {
		sum := m[k]
		sum.Add(c)
		m[k] = sum
	}
	for k, c := range cells {
		if k.Experiment != "" && k.Offer == "" && k.Channel == "" {
			vk := variantKey{k.Experiment, k.Variant, ""}
			if day, ok := featurestore.RetentionDay(k); ok {
				if day < q.RetentionDays {
					retained[vk] += c.Converters
				}
				continue
			}
			add(cohorts, vk, c)
			continue
		}
		if k.Segment != q.Segment || q.Channel != "" && k.Channel != q.Channel {
			continue
		}
		if k.Offer != "" {
			ok := offerKey{k.Offer, k.Channel, k.Experiment, k.Variant}
			sum := offers[ok]
			sum.Add(c)
			offers[ok] = sum
		}
		switch {
		case k.Experiment != "":
			add(variants, variantKey{k.Experiment, k.Variant, ""}, c)
			add(variants, variantKey{k.Experiment, k.Variant, k.Channel}, c)
		default:
			// Decisions (no offer) and offers' outcomes of all traffic.
			sum := channels[k.Channel]
			sum.Add(c)
			channels[k.Channel] = sum
		}
	}
	r := &Report{Channel: q.Channel, Segment: q.Segment, RetentionDays: q.RetentionDays, Channels: []ChannelReport{}, Offers: []OfferReport{}, Experiments: []ExperimentReport{}}
	for _, ch := range cat.Channels {
		if q.Channel != "" && ch.Name != q.Channel {
			continue
		}
		c := channels[ch.Name]
		r.Channels = append(r.Channels, ChannelReport{Channel: ch.Name, Counts: c,
			CTR: ratio(float64(c.Clicks), float64(c.Impressions)), ConversionRate: ratio(float64(c.Conversions), float64(c.Impressions))})
	}
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
		es := ExperimentReport{ID: x.ID, Control: x.Variants[0].Name, Channels: []VariantChannelReport{}}
		if q.Segment != "" {
			in := x.Segment != nil && x.Segment.Name == q.Segment
			es.CustomersInSegment = &in
		}
		for _, v := range x.Variants {
			if v.Name == "control" {
				es.Control = v.Name
			}
		}
		control := cohorts[variantKey{x.ID, es.Control, ""}]
		for _, v := range x.Variants {
			vk := variantKey{x.ID, v.Name, ""}
			c := variants[vk]
			vs := VariantReport{Name: v.Name, Counts: c,
				ConversionsPerDecision: ratio(float64(c.Conversions), float64(c.Decisions)),
				ValuePerDecision:       ratio(c.Value, float64(c.Decisions)),
				Customers:              customerReport(cohorts[vk], retained[vk])}
			if v.Name != es.Control {
				vs.Uplift = upliftOf(cohorts[vk], control)
			}
			es.Variants = append(es.Variants, vs)
			for _, ch := range cat.Channels {
				c, ok := variants[variantKey{x.ID, v.Name, ch.Name}]
				if !ok {
					continue
				}
				es.Channels = append(es.Channels, VariantChannelReport{Variant: v.Name, Channel: ch.Name, Counts: c,
					CTR:                    ratio(float64(c.Clicks), float64(c.Impressions)),
					ConversionsPerDecision: ratio(float64(c.Conversions), float64(c.Decisions))})
			}
		}
		r.Experiments = append(r.Experiments, es)
	}
	return r
}

// VariantChannelReport is one experiment variant's decisions on one
// channel and the outcomes of its customers there (organic conversions
// included).
type VariantChannelReport struct {
	Variant, Channel string
	featurestore.Counts
	// Reach is the variant's distinct customers decided for on the
	// channel in the period, estimated as ChannelReport.Reach; nil when
	// the store keeps no reach.
	Reach                  *int64
	CTR                    *float64 // clicks per impression; nil without impressions
	ConversionsPerDecision *float64 // nil without decisions
}

// customerReport is the figures of a cohort cell's customers, retained
// of whom converted within the report's retention days.
func customerReport(c featurestore.Counts, retained int64) CustomerReport {
	n := float64(c.Customers)
	return CustomerReport{Exposed: c.Customers, Converters: c.Converters, Conversions: c.Conversions, Value: c.Value,
		ConversionRate:         ratio(float64(c.Converters), n),
		ConversionsPerCustomer: ratio(float64(c.Conversions), n),
		ValuePerCustomer:       ratio(c.Value, n),
		Retention:              ratio(float64(retained), n)}
}

// upliftOf compares the customers of a variant's cohorts with the
// control's.
func upliftOf(v, control featurestore.Counts) *Uplift {
	conv := func(c featurestore.Counts) sample {
		return sample{n: float64(c.Customers), sum: float64(c.Conversions), sumSq: float64(c.ConversionsSq)}
	}
	val := func(c featurestore.Counts) sample {
		return sample{n: float64(c.Customers), sum: c.Value, sumSq: c.ValueSq}
	}
	return &Uplift{
		ConversionRate:         newcombe(float64(v.Converters), float64(v.Customers), float64(control.Converters), float64(control.Customers)),
		ConversionsPerCustomer: welch(conv(v), conv(control)),
		ValuePerCustomer:       welch(val(v), val(control)),
	}
}

// checkSegment refuses a segment filter that names no segment of cat.
func checkSegment(cat *rules.Catalog, segment string) error {
	if segment == "" {
		return nil
	}
	names := make([]string, len(cat.Segments))
	for i, sg := range cat.Segments {
		if sg.Name == segment {
			return nil
		}
		names[i] = sg.Name
	}
	if len(names) == 0 {
		return &RequestError{Field: "segment", Reason: fmt.Sprintf("%q is not a segment of the catalog, which declares none", segment)}
	}
	return &RequestError{Field: "segment", Reason: fmt.Sprintf("%q is not a segment of the catalog, one of %s", segment, strings.Join(names, ", "))}
}
