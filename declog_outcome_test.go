package nextbest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// outcomeLog is a memLog that also keeps outcome lines.
type outcomeLog struct {
	memLog
	omu      sync.Mutex
	outcomes []*decisionlog.Outcome
}

func (m *outcomeLog) AppendOutcome(o *decisionlog.Outcome) bool {
	m.omu.Lock()
	m.outcomes = append(m.outcomes, o)
	m.omu.Unlock()
	return true
}

// TestDecisionLogOutcomes: a click, conversion or dismiss naming a
// decision the log samples gets an outcome line, with a conversion's
// value; an impression, an event of a decision not sampled, with no or
// a bad decision id gets none. So through every door events come in by:
// ApplyEvents (POST /v1/events) and Import (POST /v1/customers:import,
// nextbest import --url). (Retries, not applied, get none either: the
// dedupe is the store's, tested on the real binary in
// cmd/nextbest/evaluate_integration_test.go.)
func TestDecisionLogOutcomes(t *testing.T) {
	for _, door := range []struct {
		name  string
		apply func(t *testing.T, svc *Service, events []featurestore.Event)
	}{
		{"events", func(t *testing.T, svc *Service, events []featurestore.Event) {
			if _, err := svc.ApplyEvents(svc.Catalog(), events, testNow, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"import", func(t *testing.T, svc *Service, events []featurestore.Event) {
			// A line is an event's index; the events are those of the
			// test, as a parser would make them.
			var lines strings.Builder
			for i := range events {
				fmt.Fprintf(&lines, "%d\n", i)
			}
			parse := func(line []byte, _ *rules.Catalog, _ time.Time) (ImportLine, error) {
				i, err := strconv.Atoi(strings.TrimSpace(string(line)))
				if err != nil {
					return ImportLine{}, err
				}
				return ImportLine{CustomerID: events[i].CustomerID, Events: events[i : i+1]}, nil
			}
			res, err := svc.Import(context.Background(), strings.NewReader(lines.String()), ImportOptions{Parse: parse, BatchSize: 7})
			if err != nil || res.Imported != len(events) {
				t.Fatalf("import: %+v, %v", res, err)
			}
		}},
	} {
		t.Run(door.name, func(t *testing.T) {
			log := &outcomeLog{}
			const rate = 0.5
			svc, _ := newTestService(t, true, func(o *Options) { o.DecisionLog, o.DecisionLogSample = log, rate })
			var d Decision
			var events []featurestore.Event
			want := map[string]string{} // event id → decision id of the lines wanted
			for i := range 40 {
				d.Reset()
				req := Request{CustomerID: "carter", Channel: "web", Limit: 1}
				if err := svc.Decide(context.Background(), &req, &d); err != nil {
					t.Fatal(err)
				}
				if len(d.Result.Offers) == 0 {
					t.Fatal("no offer decided")
				}
				id, offer := d.ID, d.Result.Offers[0].Offer.ID
				for _, typ := range []string{"impression", "click", "conversion", "dismiss"} {
					ev := featurestore.Event{ID: fmt.Sprintf("%s-%d", typ, i), CustomerID: "carter", OfferID: offer, DecisionID: id.String(),
						Type: typ, Channel: "web", Time: testNow}
					if typ == "conversion" {
						ev.Properties = map[string]any{"value": 30.0}
					}
					events = append(events, ev)
					if typ != "impression" && decisionlog.Sampled(id[:], rate) {
						want[ev.ID] = id.String()
					}
				}
			}
			events = append(events,
				featurestore.Event{ID: "no-decision", CustomerID: "carter", OfferID: "cart-reminder", Type: "click", Channel: "web", Time: testNow},
				featurestore.Event{ID: "bad-decision", CustomerID: "carter", OfferID: "cart-reminder", DecisionID: "not-an-id", Type: "click", Channel: "web", Time: testNow})
			if len(want) == 0 || len(want) == 3*40 {
				t.Fatalf("%d of 120 outcomes sampled at rate %v: want some, not all", len(want), rate)
			}
			door.apply(t, svc, events)
			if len(log.outcomes) != len(want) {
				t.Errorf("%d outcome lines, want %d", len(log.outcomes), len(want))
			}
			for _, o := range log.outcomes {
				did, ok := want[o.EventID]
				if !ok || o.DecisionID != did || o.CustomerID != "carter" || o.Channel != "web" || !o.Time.Equal(testNow) {
					t.Errorf("outcome line %+v not wanted", o)
				}
				if wantValue := map[string]float64{"conversion": 30}[o.Outcome]; o.Value != wantValue {
					t.Errorf("%s: value %v, want %v", o.EventID, o.Value, wantValue)
				}
				delete(want, o.EventID)
			}
		})
	}
}

// BenchmarkApplyEventsNoDecision is the cost of events that name no
// decision with the outcome lines on: the hook compares a string.
func BenchmarkApplyEventsNoDecision(b *testing.B) {
	svc, _ := newTestService(b, true, func(o *Options) { o.DecisionLog, o.DecisionLogSample = &outcomeLog{}, 1 })
	cat := svc.Catalog()
	ev := []featurestore.Event{{CustomerID: "carter", OfferID: "cart-reminder", Type: "click", Channel: "web", Time: testNow}}
	b.ReportAllocs()
	for b.Loop() {
		ev[0].ID = xid.New().String()
		if _, err := svc.ApplyEvents(cat, ev, testNow, false); err != nil {
			b.Fatal(err)
		}
	}
}
