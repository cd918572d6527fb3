package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

// Issue 5's arbitration, stickiness, experiments, learning and stats over
// HTTP against the real binary.

func decisioningServer(t *testing.T) *server {
	t.Helper()
	return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", "testdata/decisioning.yaml",
		"--stats-flush", "10ms", "--learn-refresh", "20ms")
}

func variantOf(d decideResponse) string {
	for _, x := range d.Experiments {
		if x.ID == "ranking" {
			return x.Variant
		}
	}
	return ""
}

// customerInVariant returns a customer id the catalog's experiment puts
// in variant, computed with the library so that no decision is counted.
func (s *server) customerInVariant(variant string) string {
	s.t.Helper()
	cat, err := rules.LoadFile("testdata/decisioning.yaml")
	if err != nil {
		s.t.Fatal(err)
	}
	for i := range 1000 {
		id := fmt.Sprintf("c%d", i)
		for _, a := range decision.Assign(nil, cat, id) {
			if a.Variant.Name == variant && !s.usedIDs[id] {
				if s.usedIDs == nil {
					s.usedIDs = map[string]bool{}
				}
				s.usedIDs[id] = true
				return id
			}
		}
	}
	s.t.Fatalf("no customer in variant %s", variant)
	return ""
}

func TestDecisioningGroups(t *testing.T) {
	s := decisioningServer(t)
	id := s.customerInVariant("control")
	d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web","limit":4,"explain":true}`, id))
	if got, want := d.offerIDs(), []string{"card-gold", "loan", "insurance"}; !slices.Equal(got, want) {
		t.Errorf("offers %v, want %v (one card of the group)", got, want)
	}
	if r := reasonOf(d, "card-silver"); r != "group_taken" {
		t.Errorf("card-silver reason %q, want group_taken", r)
	}
}

func TestDecisioningStickyAcrossChannels(t *testing.T) {
	s := decisioningServer(t)
	id := s.customerInVariant("control")
	s.outcome(id, "impression", "insurance", "web")
	d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"call_center","limit":2,"explain":true}`, id))
	if got := d.offerIDs(); len(got) == 0 || got[0] != "insurance" {
		t.Fatalf("call_center offers %v, want insurance first: the website just showed it", got)
	}
	for _, x := range d.Explain {
		if x.OfferID == "insurance" && !x.Sticky {
			t.Errorf("explain does not mark insurance sticky: %+v", x)
		}
	}
	// Another customer is not affected.
	other := s.customerInVariant("control")
	if other != id {
		if got := s.offersOn(other, "call_center"); got[0] != "card-gold" {
			t.Errorf("another customer's call_center offers %v, want card-gold first", got)
		}
	}
}

// TestDecisioningExperimentAcrossChannelsAndNodes: two nodes (their own
// stores) assign every customer the same variant on every channel; the
// holdout gets only fallback content.
func TestDecisioningExperimentAcrossChannelsAndNodes(t *testing.T) {
	a, b := decisioningServer(t), decisioningServer(t)
	count := map[string]int{}
	holdout := ""
	for i := range 100 {
		id := fmt.Sprintf("x%d", i)
		var variants []string
		for _, sv := range []*server{a, b} {
			for _, ch := range []string{"web", "app", "call_center", "email"} {
				d := sv.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q}`, id, ch))
				v := variantOf(d)
				variants = append(variants, v)
				// Where deciding is sending (email), a holdout is sent
				// nothing: withheld, not the fallback.
				outbound := ch == "email"
				if v == "holdout" && (len(d.Offers) != 0 || (d.Fallback == nil) != outbound || (d.Suppressed != nil) != outbound) {
					t.Errorf("%s in the holdout got offers %v, fallback %v, suppressed %+v on %s", id, d.offerIDs(), d.Fallback, d.Suppressed, ch)
				}
				if v == "control" && len(d.Offers) == 0 {
					t.Errorf("%s in control got no offer on %s", id, ch)
				}
			}
		}
		if len(slices.Compact(slices.Clone(variants))) != 1 || variants[0] == "" {
			t.Errorf("%s: variants across nodes and channels %v, want one", id, variants)
		}
		count[variants[0]]++
		if variants[0] == "holdout" {
			holdout = id
		}
	}
	if count["holdout"] < 8 || count["holdout"] > 35 {
		t.Errorf("holdout got %d of 100 customers, want about 20", count["holdout"])
	}
	if holdout == "" {
		t.Fatal("no customer in the holdout")
	}
	d := a.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web","explain":true}`, holdout))
	if r := reasonOf(d, "card-gold"); r != "holdout" {
		t.Errorf("explain reason for a holdout customer %q, want holdout", r)
	}
}

type statsBody struct {
	Offers []struct {
		OfferID     string `json:"offer_id"`
		Channel     string
		Experiment  string
		Variant     string
		Impressions int64
		Clicks      int64
		Conversions int64
		Dismisses   int64
		Value       float64
		CTR         *float64
	}
	Experiments []struct {
		ID       string
		Control  string
		Variants []struct {
			Name        string
			Decisions   int64
			Conversions int64
			Uplift      *struct {
				Difference float64
				CI95       [2]float64
			}
		}
	}
}

func (s *server) stats(query string) statsBody {
	s.t.Helper()
	var b statsBody
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/stats"+query, "", 200)), &b); err != nil {
		s.t.Fatal(err)
	}
	return b
}

// TestDecisioningStats: the stats count exactly the outcome events posted
// (retries with an event_id counted once) and the decisions per variant.
func TestDecisioningStats(t *testing.T) {
	s := decisioningServer(t)
	ctl, hold := s.customerInVariant("control"), s.customerInVariant("holdout")
	var before statsBody // nothing decided yet
	decisions := func(b statsBody, variant string) int64 {
		for _, x := range b.Experiments {
			for _, v := range x.Variants {
				if v.Name == variant {
					return v.Decisions
				}
			}
		}
		return 0
	}
	for range 7 {
		s.offersOn(ctl, "web")
	}
	for range 3 {
		s.offersOn(hold, "app")
	}
	for range 5 {
		s.outcome(ctl, "impression", "loan", "web")
	}
	s.outcome(ctl, "click", "loan", "web")
	s.outcome(ctl, "click", "loan", "web")
	s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"event_id":"conv-1","customer_id":%q,"type":"conversion","offer_id":"loan","channel":"web","properties":{"value":99.5}}`, ctl), 202)
	s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"event_id":"conv-1","customer_id":%q,"type":"conversion","offer_id":"loan","channel":"web","properties":{"value":99.5}}`, ctl), 202)
	s.outcome(ctl, "dismiss", "insurance", "app")
	// An organic conversion of a holdout customer counts for the experiment.
	s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"conversion","channel":"web"}`, hold), 202)

	deadline := time.Now().Add(5 * time.Second)
	for {
		b := s.stats("")
		var loan, ins struct{ imp, clk, conv, dis int64 }
		var val float64
		for _, o := range b.Offers {
			if o.Experiment != "" {
				continue
			}
			switch {
			case o.OfferID == "loan" && o.Channel == "web":
				loan.imp, loan.clk, loan.conv, val = o.Impressions, o.Clicks, o.Conversions, o.Value
			case o.OfferID == "insurance" && o.Channel == "app":
				ins.dis = o.Dismisses
			}
		}
		dc, dh := decisions(b, "control")-decisions(before, "control"), decisions(b, "holdout")-decisions(before, "holdout")
		// The holdout's organic conversion is another cell of the
		// statistics, which may reach the store in a later flush than
		// the others: wait for it too.
		var holdConv int64
		holdUplift := false
		for _, x := range b.Experiments {
			for _, v := range x.Variants {
				if v.Name == "holdout" {
					holdConv, holdUplift = v.Conversions, v.Uplift != nil
				}
			}
		}
		ok := loan.imp == 5 && loan.clk == 2 && loan.conv == 1 && val == 99.5 && ins.dis == 1 && dc == 7 && dh == 3 && holdConv == 1
		if ok {
			if !holdUplift {
				t.Error("the holdout has no uplift over control")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never matched the events: loan %+v value %v, insurance dismisses %d, decisions control +%d holdout +%d, holdout conversions %d (want 1, organic)", loan, val, ins.dis, dc, dh, holdConv)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Bad queries are 400s with a JSON error.
	for _, q := range []string{"?from=yesterday", "?from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z", "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		if status, body := s.call("GET", "/v1/stats"+q, ""); status != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("GET /v1/stats%s = %d %s, want 400", q, status, body)
		}
	}
}

// TestDecisioningLearnsFromOutcomes: conversions on an offer raise its
// learned propensity until it outranks offers of higher value, within the
// learning refresh, on every channel whose statistics changed.
func TestDecisioningLearnsFromOutcomes(t *testing.T) {
	s := decisioningServer(t)
	id := s.customerInVariant("control")
	if got := s.offersOn(id, "app"); got[0] != "card-gold" {
		t.Fatalf("before learning: %v, want card-gold first (highest value at equal priors)", got)
	}
	var events []string
	for i := range 200 {
		events = append(events, fmt.Sprintf(`{"customer_id":"u%d","type":"impression","offer_id":"insurance","channel":"app"}`, i))
		if i%2 == 0 {
			events = append(events, fmt.Sprintf(`{"customer_id":"u%d","type":"conversion","offer_id":"insurance","channel":"app"}`, i))
		}
	}
	s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"app","limit":4,"explain":true}`, id))
		if got := d.offerIDs(); got[0] == "insurance" {
			for _, x := range d.Explain {
				// (1 + 100) / (50 + 200) = 0.404
				if x.OfferID == "insurance" && math.Abs(x.Propensity-101.0/250) > 1e-9 {
					t.Errorf("insurance propensity %v, want %v", x.Propensity, 101.0/250)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("insurance never ranked first after 100 conversions in 200 impressions: %v", d.offerIDs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The web has no such statistics: its ranking is unchanged.
	if got := s.offersOn(id, "web"); got[0] != "card-gold" {
		t.Errorf("web offers %v, want card-gold first (insurance learned on the app only)", got)
	}
}

// TestDecisioningImpressionOncePerDecision: on a decision_is_impression
// channel the decision records the impression; the client reporting it
// again with the decision_id does not count it twice.
func TestDecisioningImpressionOncePerDecision(t *testing.T) {
	s := decisioningServer(t)
	id := s.customerInVariant("control")
	d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"email"}`, id))
	if got := d.offerIDs(); !slices.Equal(got, []string{"insurance"}) {
		t.Fatalf("email offers %v, want [insurance]", got)
	}
	for range 2 {
		s.mustCall("POST", "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":"insurance","channel":"email","decision_id":%q}`, id, d.DecisionID), 202)
	}
	waitUntil(t, 5*time.Second, "the email impression in the stats", func() bool {
		for _, o := range s.stats("").Offers {
			if o.OfferID == "insurance" && o.Channel == "email" && o.Experiment == "" {
				if o.Impressions != 1 {
					t.Fatalf("insurance on email: %d impressions, want 1", o.Impressions)
				}
				return true
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond) // ten flushes later, still one
	for _, o := range s.stats("").Offers {
		if o.OfferID == "insurance" && o.Channel == "email" && o.Experiment == "" && o.Impressions != 1 {
			t.Errorf("insurance on email: %d impressions after the flushes, want 1", o.Impressions)
		}
	}
}
