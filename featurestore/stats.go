package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// Outcome statistics: what was decided, shown, clicked, converted and
// dismissed, per offer and channel. They serve two readers. The learner
// reads the all-time cells (Hour 0), split by the catalog's learn_by key,
// to estimate each offer's propensity. Measurement reads the hourly cells,
// split by experiment variant, to report rates and uplift over a period.
// Every node adds to the same cells through the store, so all nodes learn
// from all outcomes.

// StatKey names one cell of statistics.
type StatKey struct {
	Hour       int64  // Unix hour of an hourly cell; 0 for the all-time learning cells
	Offer      string // "" in a cell that counts decisions of a variant
	Channel    string
	Experiment string // hourly cells: the experiment of Variant; "" for all traffic
	Variant    string
	// Hourly cells of an experiment with Offer and Channel empty are its
	// cohort cells (CohortKey): the customers first exposed in that hour.
	Key string // learning cells: the learn_by value; "" when the catalog learns by nothing
	// Segment, in an hourly decision or outcome cell, names a catalog
	// segment the customer was in when decided for: the cell counts the
	// decisions of the customers of that segment and the outcomes of
	// those decisions, a copy of what its cell with Segment "" counts
	// (so a customer in two segments counts in both). "" for every other
	// cell: all traffic, learning and cohort cells.
	Segment string
}

// Counts are the statistics of one cell.
type Counts struct {
	Decisions   int64 // decisions made (for variant cells: customers' decisions in the variant)
	Impressions int64
	Clicks      int64
	Conversions int64
	Dismisses   int64
	Value       float64 // summed value of conversions

	// The cohort cells of experiment variants (CohortKey) count
	// customers, not decisions (exposure.go): the customers first
	// exposed, those of them who converted, and Σx² over them of x their
	// conversions (ConversionsSq) and of their value (ValueSq); their
	// Conversions and Value are those customers' since their exposure.
	Customers     int64
	Converters    int64
	ConversionsSq int64
	ValueSq       float64
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Decisions += o.Decisions
	c.Impressions += o.Impressions
	c.Clicks += o.Clicks
	c.Conversions += o.Conversions
	c.Dismisses += o.Dismisses
	c.Value += o.Value
	c.Customers += o.Customers
	c.Converters += o.Converters
	c.ConversionsSq += o.ConversionsSq
	c.ValueSq += o.ValueSq
}

// IsZero reports whether c counts nothing.
func (c Counts) IsZero() bool { return c == Counts{} }

// StatDelta is an increment of one cell.
type StatDelta struct {
	Key    StatKey
	Counts Counts
}

// Check reports whether d can be stored. Its Value must be finite: a NaN or
// an infinity would poison its cell for good (and Redis refuses it). Its
// offer, channel, experiment, variant and segment must not contain the separator of
// EncodeStatKey, which could then not be decoded.
func (d StatDelta) Check() error {
	for _, v := range [...]float64{d.Counts.Value, d.Counts.ValueSq} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("stat delta %q: value %v is not finite", EncodeStatKey(d.Key), v)
		}
	}
	for _, id := range [...]string{d.Key.Offer, d.Key.Channel, d.Key.Experiment, d.Key.Variant, d.Key.Segment} {
		if strings.Contains(id, statSep) {
			return fmt.Errorf("stat delta: id %q contains the separator \\x1f", id)
		}
	}
	return nil
}

// MaxStatHours is the longest range of hours, 400 days, that HourlyStats
// reads in one call; every backend refuses a longer one with ErrStatRange,
// so a report that works on one backend works on all.
const MaxStatHours = 24 * 400

// ErrStatRange is returned by HourlyStats for a range longer than
// MaxStatHours.
var ErrStatRange = errors.New("featurestore: hour range longer than 400 days")

// CheckHourRange returns ErrStatRange, wrapped, if [from, to] spans more
// than MaxStatHours hours. An empty range (from > to) is valid.
func CheckHourRange(from, to int64) error {
	if from <= to && (to-from >= MaxStatHours || to-from < 0) {
		return fmt.Errorf("hours [%d, %d]: %w", from, to, ErrStatRange)
	}
	return nil
}

// StatsStore keeps outcome statistics shared by every node. AddStats
// increments cells atomically (concurrent adders lose no increment);
// LearnStats returns every all-time cell (Hour 0); HourlyStats returns the
// hourly cells whose Hour is in [from, to].
type StatsStore interface {
	AddStats(ctx context.Context, deltas []StatDelta) error
	LearnStats(ctx context.Context) (map[StatKey]Counts, error)
	HourlyStats(ctx context.Context, from, to int64) (map[StatKey]Counts, error)
}

// Hour is the hourly cell of t.
func Hour(t time.Time) int64 { return t.Unix() / 3600 }

// statSep separates the fields of an encoded StatKey. Offer, channel,
// experiment and variant ids cannot contain it (the catalog's id syntax
// forbids it); a learn_by value that does is rewritten.
const statSep = "\x1f"

// EncodeStatKey encodes k, without its Hour, as one string that
// DecodeStatKey reverses: backends use it as a hash field or key suffix.
// A cell of a segment has a sixth field, its Segment; every other cell
// is encoded in five, as before segments were counted, so the cells
// stored then decode as they were (Segment "").
func EncodeStatKey(k StatKey) string {
	key := k.Key
	if strings.Contains(key, statSep) {
		key = strings.ReplaceAll(key, statSep, "_")
	}
	s := k.Offer + statSep + k.Channel + statSep + k.Experiment + statSep + k.Variant + statSep + key
	if k.Segment != "" {
		s += statSep + k.Segment
	}
	return s
}

// DecodeStatKey decodes what EncodeStatKey made, with hour as its Hour.
func DecodeStatKey(s string, hour int64) (StatKey, bool) {
	f := strings.Split(s, statSep)
	if len(f) != 5 && (len(f) != 6 || f[5] == "") {
		return StatKey{}, false
	}
	k := StatKey{Hour: hour, Offer: f[0], Channel: f[1], Experiment: f[2], Variant: f[3], Key: f[4]}
	if len(f) == 6 {
		k.Segment = f[5]
	}
	return k, true
}

// LearnCell names a learning cell: an offer on a channel for one learn_by
// value.
type LearnCell struct{ Offer, Channel, Key string }

// LearnTable is a snapshot of the all-time learning cells, for the
// decision engine to read without locks. A nil *LearnTable is empty.
//
// The cells it holds are fixed when it is built; their counts are the
// snapshot's plus what Add has added since, so a node's own outcomes
// reach its next decision at once rather than at its next rebuild. Get
// and Add are safe for concurrent use; a reader may see one Add's
// fields partly applied (its impression before its conversion), never a
// torn field.
type LearnTable struct {
	cells  map[LearnCell]*learnCounts
	models map[ModelCell]*ModelSums // model.go; fixed when built
}

// learnCounts is one cell: its counts when the table was built and,
// atomically, what Add added since. Value is float64 bits.
type learnCounts struct {
	base                                                        Counts
	decisions, impressions, clicks, conversions, dismisses, val atomic.Int64
}

func (c *learnCounts) load() Counts {
	n := c.base
	n.Add(Counts{
		Decisions: c.decisions.Load(), Impressions: c.impressions.Load(), Clicks: c.clicks.Load(),
		Conversions: c.conversions.Load(), Dismisses: c.dismisses.Load(),
		Value: math.Float64frombits(uint64(c.val.Load())),
	})
	return n
}

func (c *learnCounts) add(d Counts) {
	for _, f := range [...]struct {
		dst *atomic.Int64
		n   int64
	}{{&c.decisions, d.Decisions}, {&c.impressions, d.Impressions}, {&c.clicks, d.Clicks}, {&c.conversions, d.Conversions}, {&c.dismisses, d.Dismisses}} {
		if f.n != 0 {
			f.dst.Add(f.n)
		}
	}
	if d.Value == 0 {
		return
	}
	for {
		old := c.val.Load()
		v := math.Float64bits(math.Float64frombits(uint64(old)) + d.Value)
		if c.val.CompareAndSwap(old, int64(v)) {
			return
		}
	}
}

// NewLearnTable builds a snapshot from all-time cells (Hour 0; hourly and
// experiment cells are ignored) plus extra, typically a node's deltas not
// yet flushed to the store.
func NewLearnTable(cells map[StatKey]Counts, extra ...map[StatKey]Counts) *LearnTable {
	sum := make(map[LearnCell]Counts, len(cells))
	var models map[ModelCell]*ModelSums
	for _, m := range append([]map[StatKey]Counts{cells}, extra...) {
		for k, c := range m {
			if !learns(k) {
				continue
			}
			if isModelSum(k.Key) {
				if models == nil {
					models = map[ModelCell]*ModelSums{}
				}
				addModelCell(models, k, c.Value)
				continue
			}
			lc := LearnCell{Offer: k.Offer, Channel: k.Channel, Key: k.Key}
			cur := sum[lc]
			cur.Add(c)
			sum[lc] = cur
		}
	}
	t := &LearnTable{cells: make(map[LearnCell]*learnCounts, len(sum)), models: models}
	all := make([]learnCounts, len(sum)) // one allocation for every cell
	i := 0
	for lc, c := range sum {
		all[i].base = c
		t.cells[lc] = &all[i]
		i++
	}
	return t
}

// learns reports whether k is a learning cell: all-time, of an offer,
// not of an experiment.
func learns(k StatKey) bool { return k.Hour == 0 && k.Experiment == "" && k.Offer != "" }

// Add adds d to the table, visible to the next Get, when d is of a
// learning cell the table holds, and reports whether it did; a delta of
// another cell (hourly, experiment, decisions of a variant) is no
// learning delta and counts as done. A false return means the table
// must be rebuilt for the cell to appear. A nil table holds no cell.
func (t *LearnTable) Add(d StatDelta) bool {
	if !learns(d.Key) || isModelSum(d.Key.Key) {
		return true // a model's sums wait for the next rebuild (model.go)
	}
	if t == nil {
		return false
	}
	c := t.cells[LearnCell{Offer: d.Key.Offer, Channel: d.Key.Channel, Key: d.Key.Key}]
	if c == nil {
		return false
	}
	c.add(d.Counts)
	return true
}

// Get returns the counts of a cell; zero when it has none.
func (t *LearnTable) Get(offer, channel, key string) Counts {
	if t == nil {
		return Counts{}
	}
	c := t.cells[LearnCell{Offer: offer, Channel: channel, Key: key}]
	if c == nil {
		return Counts{}
	}
	return c.load()
}

// Len is the number of cells.
func (t *LearnTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.cells)
}
