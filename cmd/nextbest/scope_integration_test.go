package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

// Issue 14, point 5, against the real binary on both stores: an
// experiment scoped to the email decisions of lapsed customers assigns
// those and no other, a campaign included; the global holdout's customers
// get the web's fallback and no email at all, and /v1/stats and the
// decision log report them under the experiment global_holdout.

const scopeCatalog = "testdata/scope.yaml"

// scopeCustomers is the population: s-00 to s-59, every other one lapsed.
const scopeCustomers = 60

func scopeCustomer(i int) string { return fmt.Sprintf("s-%02d", i) }

// experimentsOf lists a decision's experiments as "id/variant".
func experimentsOf(d decideResponse) []string {
	var out []string
	for _, x := range d.Experiments {
		out = append(out, x.ID+"/"+x.Variant)
	}
	return out
}

func TestScopedExperimentAndGlobalHoldout(t *testing.T) {
	cat, err := rules.LoadFile(scopeCatalog)
	if err != nil {
		t.Fatal(err)
	}
	// What the library assigns each customer whenever in scope: the
	// global holdout's variant, and the win-back's.
	held, winback := map[string]bool{}, map[string]string{}
	for i := range scopeCustomers {
		id := scopeCustomer(i)
		for _, a := range decision.Assign(nil, cat, id) {
			switch a.Experiment.ID {
			case rules.GlobalHoldout:
				held[id] = a.Variant.Holdout
			case "winback":
				winback[id] = a.Variant.Name
			}
		}
	}
	n := 0
	for _, h := range held {
		if h {
			n++
		}
	}
	if n < 4 || n > 24 {
		t.Fatalf("%d of %d customers held out, want about a fifth", n, scopeCustomers)
	}
	for _, tt := range storeBackends {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--addr", "127.0.0.1:0", "--catalog", scopeCatalog, "--decision-log-sample", "1",
				"--stats-flush", "10ms", "--learn-refresh", "20ms"}, tt.args(t)...)
			s := startServerIn(t, ".", args...)
			var lines strings.Builder
			for i := range scopeCustomers {
				tier := "active"
				if i%2 == 0 {
					tier = "lapsed"
				}
				fmt.Fprintf(&lines, `{"customer_id":%q,"features":{"tier":%q}}`+"\n", scopeCustomer(i), tier)
			}
			s.mustCall("POST", "/v1/customers:import", lines.String(), 200)

			// What the decisions should count, per experiment variant.
			want := map[string]int64{}
			// Every customer on the web, and the active ones by email:
			// out of the win-back's scope.
			for i := range scopeCustomers {
				id := scopeCustomer(i)
				channels := []string{"web"}
				if i%2 == 1 {
					channels = append(channels, "email")
				}
				for _, ch := range channels {
					d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q,"explain":true}`, id, ch))
					got := experimentsOf(d)
					switch {
					case held[id]:
						want["global_holdout/holdout"]++
						if !slices.Equal(got, []string{"global_holdout/holdout"}) || len(d.Offers) != 0 {
							t.Errorf("%s on %s, held out: experiments %v, offers %v", id, ch, got, d.offerIDs())
						}
						if ch == "web" && d.Fallback == nil {
							t.Errorf("%s on the web, held out: no fallback", id)
						}
						if ch == "email" && (d.Fallback != nil || d.Suppressed == nil || d.Suppressed.Reason != "holdout" || d.Suppressed.Rule != "global_holdout/holdout") {
							t.Errorf("%s by email, held out: fallback %v, suppressed %+v; want nothing, withheld by global_holdout/holdout", id, d.Fallback, d.Suppressed)
						}
						for _, x := range d.Explain {
							if x.Reason != "holdout" && x.Reason != "wrong_channel" || x.Reason == "holdout" && x.Rule != "global_holdout/holdout" {
								t.Errorf("%s on %s, held out: explain %s %q %q", id, ch, x.OfferID, x.Reason, x.Rule)
							}
						}
					default:
						want["global_holdout/treated"]++
						if !slices.Equal(got, []string{"global_holdout/treated"}) || len(d.Offers) == 0 {
							t.Errorf("%s on %s, out of the win-back's scope: experiments %v, offers %v", id, ch, got, d.offerIDs())
						}
					}
				}
			}

			// The win-back campaign: email to the lapsed segment, each
			// lapsed customer in the win-back (or held out of it all).
			body := `{"channel":"email","segment":"lapsed"}`
			keys := []string{"catalog_version", "channel", "customer_id", "decision_id", "degraded", "experiments", "offers"}
			decided, summary := s.batch(t, body, keys)
			heldLapsed, sent := 0, map[string]string{}
			for i := 0; i < scopeCustomers; i += 2 {
				id := scopeCustomer(i)
				d, ok := decided[id]
				if !ok {
					t.Fatalf("%s not decided by the campaign", id)
				}
				got := experimentsOf(d.decideResponse)
				if held[id] {
					heldLapsed++
					want["global_holdout/holdout"]++
					if !slices.Equal(got, []string{"global_holdout/holdout"}) || len(d.Offers) != 0 || string(d.Fallback) != "null" || d.Suppressed == nil || d.Suppressed.Reason != "holdout" {
						t.Errorf("campaign, %s held out: experiments %v, offers %v, fallback %s, suppressed %+v; want nothing sent", id, got, d.offerIDs(), d.Fallback, d.Suppressed)
					}
					continue
				}
				want["global_holdout/treated"]++
				want["winback/"+winback[id]]++
				if w := []string{"global_holdout/treated", "winback/" + winback[id]}; !slices.Equal(got, w) {
					t.Errorf("campaign, %s: experiments %v, want %v", id, got, w)
				}
				offer := "discount"
				if winback[id] == "bigger" {
					offer = "big-discount"
				}
				if o := d.offerIDs(); !slices.Equal(o, []string{offer}) {
					t.Errorf("campaign, %s in winback/%s: offers %v, want %s", id, winback[id], o, offer)
				}
				sent[d.DecisionID] = winback[id]
			}
			if sum := summary.Summary; sum.Suppressed["holdout"] != heldLapsed || sum.Offered != scopeCustomers/2-heldLapsed {
				t.Errorf("campaign summary: offered %d, suppressed %v; want %d offered, %d held out", sum.Offered, sum.Suppressed, scopeCustomers/2-heldLapsed, heldLapsed)
			}

			// The decision log records each send's variants.
			for id, v := range sent {
				var e struct {
					Variants []struct{ Experiment, Variant string }
				}
				s.logged(id) // waits for the writer
				_, raw := s.call("GET", "/v1/decisions/"+id, "")
				if err := json.Unmarshal([]byte(raw), &e); err != nil {
					t.Fatalf("%v in %s", err, raw)
				}
				var got []string
				for _, x := range e.Variants {
					got = append(got, x.Experiment+"/"+x.Variant)
				}
				if w := []string{"global_holdout/treated", "winback/" + v}; !slices.Equal(got, w) {
					t.Errorf("decision %s logged with variants %v, want %v", id, got, w)
				}
				break // one is enough: the same code logs every decision
			}

			// /v1/stats counts the decisions of each variant: the
			// win-back only its lapsed customers' emails, the global
			// holdout every decision.
			var got map[string]int64
			for deadline := time.Now().Add(10 * time.Second); ; {
				got = map[string]int64{}
				for _, x := range s.stats("").Experiments {
					for _, v := range x.Variants {
						if v.Decisions > 0 {
							got[x.ID+"/"+v.Name] = v.Decisions
						}
					}
				}
				if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("decisions per variant %v, want %v", got, want)
			}
		})
	}
}
