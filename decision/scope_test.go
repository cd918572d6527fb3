package decision_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// scopeCatalog has an experiment scoped to the email and sms decisions
// of lapsed customers, one on every decision, and a global holdout.
const scopeCatalog = `
channels: [web, {name: email, decision_is_impression: true}, {name: sms, decision_is_impression: true}]
features:
  spend: {type: number}
segments:
  lapsed: customer.spend > 0
experiments:
  - id: winback
    channels: [email, sms]
    segment: lapsed
    variants: [{name: control}, {name: none, offers: []}]
  - id: everywhere
    variants: [{name: a}, {name: b}]
holdout: {share: 0.1, salt: h}
offers:
  - id: promo
    channels: [web, email, sms]
    content: {web: {h: promo}, email: {subject: promo}, sms: {text: promo}}
defaults:
  web: {h: welcome}
  email: {subject: newsletter}
`

func loadScope(t testing.TB) *rules.Catalog {
	t.Helper()
	c, err := rules.Load("x.yaml", []byte(scopeCatalog))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lapsed and active are the feature vectors of a customer in the lapsed
// segment and of one who is not.
func vectors(c *rules.Catalog) (lapsed, active featurestore.Vector) {
	lapsed = c.Schema.Defaults(nil)
	lapsed[0] = featurestore.Number(50)
	return lapsed, c.Schema.Defaults(nil)
}

// inGlobal finds a customer id in the global holdout's variant.
func inGlobal(t testing.TB, c *rules.Catalog, variant string) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("c%d", i)
		if as := decision.Assign(nil, c, id); len(as) > 0 && as[0].Variant.Name == variant {
			return id
		}
	}
	t.Fatalf("no customer in global_holdout/%s", variant)
	return ""
}

func variants(as []decision.Assignment) string {
	s := ""
	for _, a := range as {
		s += a.Experiment.ID + "/" + a.Variant.Name + " "
	}
	return s
}

// TestScopedAssignment: a scoped experiment assigns only the decisions of
// its channels for customers in its segment when decided for, with the
// same variant whenever in scope; every other decision is untouched.
func TestScopedAssignment(t *testing.T) {
	c := loadScope(t)
	lapsed, active := vectors(c)
	id := inGlobal(t, c, "treated")
	all := decision.Assign(nil, c, id)
	var winback, everywhere string
	for _, a := range all {
		switch a.Experiment.ID {
		case "winback":
			winback = a.Variant.Name
		case "everywhere":
			everywhere = a.Variant.Name
		}
	}
	in := "global_holdout/treated winback/" + winback + " everywhere/" + everywhere + " "
	out := "global_holdout/treated everywhere/" + everywhere + " "
	tests := []struct {
		name, channel string
		f             featurestore.Vector
		want          string
	}{
		{"lapsed by email", "email", lapsed, in},
		{"lapsed by sms", "sms", lapsed, in},
		{"lapsed on the web", "web", lapsed, out},
		{"active by email", "email", active, out},
		{"active on the web", "web", active, out},
		{"unknown by email", "email", nil, out}, // in no segment
	}
	var e decision.Engine
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 { // the same whenever in scope
				var res decision.Result
				req := decision.Request{CustomerID: id, Channel: tt.channel, Now: time.Unix(0, 0)}
				if err := e.Decide(c, tt.f, &req, &res); err != nil {
					t.Fatal(err)
				}
				if got := variants(res.Assignments); got != tt.want {
					t.Fatalf("assignments %q, want %q", got, tt.want)
				}
				deltas := decision.AppendDecisionDeltas(nil, &res, req.Now)
				if want := (1 + len(res.Assignments)) * (1 + len(res.Segments)); len(deltas) != want {
					t.Errorf("decision deltas %v: want the channel's and one per assignment, for all traffic and each of the segments %q", deltas, res.Segments)
				}
			}
		})
	}
	if got := variants(all); got != in {
		t.Errorf("Assign, whatever the scope: %q, want %q", got, in)
	}
}

// TestScopedShares: in scope, a scoped experiment splits customers by its
// weights, the global holdout by its share, and the global holdout's
// customers take part in no other experiment.
func TestScopedShares(t *testing.T) {
	c := loadScope(t)
	lapsed, _ := vectors(c)
	var e decision.Engine
	const n = 20000
	count := map[string]int{}
	for i := range n {
		var res decision.Result
		req := decision.Request{CustomerID: fmt.Sprintf("customer-%d", i), Channel: "email", Now: time.Unix(0, 0)}
		if err := e.Decide(c, lapsed, &req, &res); err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Assignments {
			count[a.Experiment.ID+"/"+a.Variant.Name]++
		}
		if res.Assignments[0].Variant.Holdout && len(res.Assignments) != 1 {
			t.Fatalf("%s: held out, yet assigned %s", req.CustomerID, variants(res.Assignments))
		}
	}
	for name, want := range map[string]float64{"global_holdout/holdout": 0.1, "global_holdout/treated": 0.9,
		"winback/control": 0.45, "winback/none": 0.45, "everywhere/a": 0.45, "everywhere/b": 0.45} {
		got := float64(count[name]) / n
		if sd := math.Sqrt(want * (1 - want) / n); math.Abs(got-want) > 5*sd {
			t.Errorf("%s: share %.4f, want %.2f", name, got, want)
		}
	}
}

// TestGlobalHoldout: a customer in the global holdout gets no offer on any
// channel: the fallback where the customer comes to us, nothing at all
// where deciding is sending (withheld, reason holdout), and explain names
// the holdout. A treated customer gets offers.
func TestGlobalHoldout(t *testing.T) {
	c := loadScope(t)
	lapsed, _ := vectors(c)
	held, treated := inGlobal(t, c, "holdout"), inGlobal(t, c, "treated")
	tests := []struct {
		customer, channel string
		offers            int
		fallback          bool
		suppressed        decision.Reason
	}{
		{held, "web", 0, true, ""},
		{held, "email", 0, false, decision.Holdout},
		{held, "sms", 0, false, decision.Holdout}, // no fallback declared: nothing either way
		{treated, "web", 1, false, ""},
	}
	var e decision.Engine
	for _, tt := range tests {
		t.Run(tt.customer+"/"+tt.channel, func(t *testing.T) {
			var res decision.Result
			req := decision.Request{CustomerID: tt.customer, Channel: tt.channel, Explain: true, Now: time.Unix(0, 0)}
			if err := e.Decide(c, lapsed, &req, &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Offers) != tt.offers || (res.Fallback != nil) != tt.fallback || res.Suppressed.Reason != tt.suppressed {
				t.Fatalf("offers %d fallback %v suppressed %q; want %d %v %q", len(res.Offers), res.Fallback != nil, res.Suppressed.Reason, tt.offers, tt.fallback, tt.suppressed)
			}
			if tt.offers > 0 {
				return
			}
			if !res.Holdout || res.Assignments[0].Experiment.ID != rules.GlobalHoldout {
				t.Errorf("holdout %v, assignments %s", res.Holdout, variants(res.Assignments))
			}
			if tt.suppressed != "" && res.Suppressed.Rule != "global_holdout/holdout" {
				t.Errorf("suppressed by %q, want global_holdout/holdout", res.Suppressed.Rule)
			}
			for _, x := range res.Explain {
				if x.OfferID == "promo" && (x.Reason != decision.Holdout || x.Rule != "global_holdout/holdout") {
					t.Errorf("explain promo: %q %q, want holdout by global_holdout/holdout", x.Reason, x.Rule)
				}
			}
		})
	}
}

// TestOutcomeDeltasScope: an offer's outcome counts for the experiments
// that decide on its channel; an organic conversion for every experiment
// the customer is in.
func TestOutcomeDeltasScope(t *testing.T) {
	c := loadScope(t)
	as := decision.Assign(nil, c, inGlobal(t, c, "treated"))
	tests := []struct {
		offer, channel string
		want           map[string]bool // experiments credited
	}{
		{"promo", "web", map[string]bool{"global_holdout": true, "everywhere": true}},
		{"promo", "email", map[string]bool{"global_holdout": true, "everywhere": true, "winback": true}},
		{"", "web", map[string]bool{"global_holdout": true, "everywhere": true, "winback": true}},
	}
	for _, tt := range tests {
		o := decision.Outcome{Kind: featurestore.Conversion, OfferID: tt.offer, Channel: tt.channel, Assignments: as, Value: 1, Time: time.Unix(0, 0)}
		got := map[string]bool{}
		for _, d := range decision.AppendOutcomeDeltas(nil, &o) {
			if d.Key.Experiment != "" {
				got[d.Key.Experiment] = true
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%q on %s: credited %v, want %v", tt.offer, tt.channel, got, tt.want)
		}
	}
}
