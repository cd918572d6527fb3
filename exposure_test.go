package nextbest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
)

// summingStats is a StatsRecorder and StatsReader in memory: every delta
// is summed into its cell at once.
type summingStats struct {
	mu    sync.Mutex
	cells map[featurestore.StatKey]featurestore.Counts
}

func (s *summingStats) Add(deltas ...featurestore.StatDelta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cells == nil {
		s.cells = map[featurestore.StatKey]featurestore.Counts{}
	}
	for _, d := range deltas {
		c := s.cells[d.Key]
		c.Add(d.Counts)
		s.cells[d.Key] = c
	}
}

func (s *summingStats) Learned() *featurestore.LearnTable { return nil }

func (s *summingStats) HourlyStats(_ context.Context, from, to int64) (map[featurestore.StatKey]featurestore.Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[featurestore.StatKey]featurestore.Counts{}
	for k, c := range s.cells {
		if k.Hour != 0 && k.Hour >= from && k.Hour <= to {
			out[k] = c
		}
	}
	return out, nil
}

// TestUpliftByCustomerMatchesDirect: simulated customers decide a random
// number of times on random channels and convert a random number of times
// (some before their first decision, which must not count), in random
// batches of events; the report's figures by customer and its intervals
// equal a direct computation from each customer's own history. Through
// the service, with and without the cache.
func TestUpliftByCustomerMatchesDirect(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			stats := &summingStats{}
			s, _ := newTestService(t, cached, func(o *Options) { o.Stats, o.StatsReader = stats, stats })
			cat := s.catalog.Load()
			r := rand.New(rand.NewPCG(14, 4))
			type customer struct {
				variant     string
				exposed     time.Time
				conversions int64
				value       float64
			}
			var customers []*customer
			var events []featurestore.Event
			channels := []string{"web", "app", "email"}
			for i := range 400 {
				id := fmt.Sprintf("sim-%d", i)
				as := decision.Assign(nil, cat, id)
				// The ranking experiment's customers; the others are
				// outside its traffic or in the global holdout.
				k := slices.IndexFunc(as, func(a decision.Assignment) bool { return a.Experiment.ID == "ranking" })
				if k < 0 {
					continue
				}
				c := &customer{variant: as[k].Variant.Name}
				customers = append(customers, c)
				first := testNow.Add(time.Duration(r.IntN(180)) * time.Minute)
				c.exposed = first
				for k := range 1 + r.IntN(4) {
					var d Decision
					req := Request{CustomerID: id, Channel: channels[r.IntN(len(channels))], Limit: 1, Now: first.Add(time.Duration(k) * time.Minute)}
					if err := s.Decide(context.Background(), &req, &d); err != nil {
						t.Fatal(err)
					}
				}
				// Conversions: more for the static variant, one before the
				// first decision now and then.
				n := r.IntN(3)
				if c.variant == "static" {
					n += r.IntN(2)
				}
				if r.IntN(5) == 0 {
					n = 0
				}
				for k := range n {
					at := first.Add(time.Duration(5+k) * time.Hour)
					if r.IntN(8) == 0 {
						at = first.Add(-time.Hour) // before the exposure
					}
					ev := featurestore.Event{CustomerID: id, Type: "conversion", Channel: "web", Time: at}
					v := cat.Schema.OfferValues["winback-20"]
					if r.IntN(2) == 0 {
						v = math.Round(r.ExpFloat64()*5000) / 100
						ev.Properties = map[string]any{"value": v}
					} else {
						ev.OfferID = "winback-20"
					}
					events = append(events, ev)
					if !at.Before(first) {
						c.conversions++
						c.value += v
					}
				}
			}
			r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
			for len(events) > 0 {
				n := min(len(events), 1+r.IntN(20))
				if _, err := s.ApplyEvents(cat, events[:n], testNow.Add(10*time.Hour), false); err != nil {
					t.Fatal(err)
				}
				events = events[n:]
			}

			rep, err := s.Report(context.Background(), ReportQuery{From: testNow, To: testNow.Add(4 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			direct := map[string]*[2]sample{} // by variant: conversions, value
			converters := map[string]float64{}
			for _, c := range customers {
				d := direct[c.variant]
				if d == nil {
					d = &[2]sample{}
					direct[c.variant] = d
				}
				x, v := float64(c.conversions), c.value
				d[0] = sample{d[0].n + 1, d[0].sum + x, d[0].sumSq + x*x}
				d[1] = sample{d[1].n + 1, d[1].sum + v, d[1].sumSq + v*v}
				if c.conversions > 0 {
					converters[c.variant]++
				}
			}
			x := rep.Experiments[slices.IndexFunc(rep.Experiments, func(x ExperimentReport) bool { return x.ID == "ranking" })]
			control := direct[x.Control]
			for _, v := range x.Variants {
				d := direct[v.Name]
				if d == nil {
					t.Fatalf("variant %s: no simulated customer", v.Name)
				}
				got := v.Customers
				if float64(got.Exposed) != d[0].n || float64(got.Converters) != converters[v.Name] || float64(got.Conversions) != d[0].sum || math.Abs(got.Value-d[1].sum) > 1e-6 {
					t.Errorf("variant %s: customers %+v, want %v exposed, %v converters, %v conversions, value %v", v.Name, got, d[0].n, converters[v.Name], d[0].sum, d[1].sum)
				}
				if v.Name == x.Control {
					continue
				}
				checkInterval(t, v.Name+" conversion rate", v.Uplift.ConversionRate, newcombe(converters[v.Name], d[0].n, converters[x.Control], control[0].n))
				checkInterval(t, v.Name+" conversions per customer", v.Uplift.ConversionsPerCustomer, welch(d[0], control[0]))
				checkInterval(t, v.Name+" value per customer", v.Uplift.ValuePerCustomer, welch(d[1], control[1]))
			}
		})
	}
}

func checkInterval(t *testing.T, what string, got, want *Interval) {
	t.Helper()
	if got == nil || want == nil {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
		return
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }
	if !close(got.Difference, want.Difference) || !close(got.CI95[0], want.CI95[0]) || !close(got.CI95[1], want.CI95[1]) {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}
