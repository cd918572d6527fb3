package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLearningModel: outcome events posted to the real binary teach the
// catalog's learning model, on the embedded store and on Redis, that
// budget converts low spenders and premium high spenders: after the
// learning refresh a customer who spends little gets budget first and
// one who spends much premium, which counts by offer alone (the same
// for every customer) cannot do; the model's sums survive a restart.
func TestLearningModel(t *testing.T) {
	for _, tt := range storeBackends {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--addr", "127.0.0.1:0", "--catalog", "testdata/model.yaml", "--data", dir,
				"--stats-flush", "10ms", "--learn-refresh", "20ms"}, tt.args(t)...)
			s := startServerIn(t, ".", args...)
			// 200 customers: half spend 50, half 900. Each sees both
			// offers; low spenders convert on budget one time in two and
			// on premium one in ten, high spenders the other way round.
			var events []string
			for i := range 200 {
				id := fmt.Sprintf("m%d", i)
				spend, good := 50, "budget"
				if i%2 == 1 {
					spend, good = 900, "premium"
				}
				events = append(events, fmt.Sprintf(`{"customer_id":%q,"type":"purchase","properties":{"amount":%d}}`, id, spend))
				for _, offer := range []string{"budget", "premium"} {
					events = append(events, fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":%q,"channel":"web"}`, id, offer))
					if (offer == good && i%4 < 2) || (offer != good && i%10 == 0) {
						events = append(events, fmt.Sprintf(`{"customer_id":%q,"type":"conversion","offer_id":%q,"channel":"web"}`, id, offer))
					}
				}
			}
			// Purchases first, so the outcomes see the spend.
			var purchases, outcomes []string
			for _, e := range events {
				if strings.Contains(e, `"purchase"`) {
					purchases = append(purchases, e)
				} else {
					outcomes = append(outcomes, e)
				}
			}
			s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(purchases, ",")+`]}`, 202)
			s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(outcomes, ",")+`]}`, 202)
			// Two customers the model has not seen.
			s.mustCall("POST", "/v1/events", `{"events":[{"customer_id":"low","type":"purchase","properties":{"amount":40}},{"customer_id":"high","type":"purchase","properties":{"amount":950}}]}`, 202)
			first := func(s *server, id string) (string, map[string]float64) {
				d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web","limit":2,"explain":true}`, id))
				props := map[string]float64{}
				for _, x := range d.Explain {
					props[x.OfferID] = x.Propensity
				}
				ids := d.offerIDs()
				if len(ids) == 0 {
					return "", props
				}
				return ids[0], props
			}
			learned := func(s *server) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					lo, lp := first(s, "low")
					hi, hp := first(s, "high")
					if lo == "budget" && hi == "premium" {
						if !(lp["budget"] > 0.3 && lp["premium"] < 0.2 && hp["premium"] > 0.3 && hp["budget"] < 0.2) {
							t.Errorf("propensities: low %v, high %v; want about 0.5 for the good offer and 0.1 for the other", lp, hp)
						}
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("never learned: low gets %s first (%v), high %s (%v); want budget and premium", lo, lp, hi, hp)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			learned(s)
			s.stop()
			learned(startServerIn(t, ".", args...))
		})
	}
}
