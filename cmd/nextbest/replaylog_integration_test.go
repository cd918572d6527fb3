package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 14, point 2, against the real binary on both stores: decisions
// of a Thompson-sampling catalog, with caps, suppressions, a group,
// stickiness, a contact policy and learned outcomes all in play (events
// and outcomes between the decisions), logged at sampling 1, replay
// identically: a few on the running node (POST /v1/admin/replay), every
// one from the stopped node's data directory (nextbest replay --all).

const replayCatalog = "testdata/replay.yaml"

// replayJSON is what POST /v1/admin/replay and nextbest replay --json
// answer, as far as the tests read it.
type replayJSON struct {
	DecisionID  string `json:"decision_id"`
	Error       string
	Catalog     string
	Identical   bool
	Differences []struct{ What, Offer, Logged, Replayed string }
	Missing     string
	Logged      []struct{ ID string }
	Replayed    *replayRunJSON
	Proposed    *replayRunJSON
}

type replayRunJSON struct {
	Catalog string
	Offers  []struct {
		ID         string
		Score      float64
		Propensity float64
	}
	Explain []struct {
		OfferID string `json:"offer_id"`
		Reason  string
		Sticky  bool
	}
	Identical   *bool
	Differences []struct{ What, Offer, Logged, Replayed string }
}

// decideWithOutcomes makes n decisions for 40 customers on web and
// email, reporting between them what a client would: impressions of
// most web offers, some clicks and conversions, cart additions. It
// returns the decision ids.
func decideWithOutcomes(t *testing.T, s *server, n int) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(14, 2))
	for i := 0; i < 40; i += 5 {
		s.mustCall("PUT", fmt.Sprintf("/v1/customers/c-%d", i), `{"features":{"tier":"gold"}}`, 200)
	}
	ids := make([]string, 0, n)
	for range n {
		customer := fmt.Sprintf("c-%d", r.IntN(40))
		channel, page := "web", "home"
		if r.IntN(4) == 0 {
			channel = "email"
		}
		if r.IntN(3) == 0 {
			page = "cart"
		}
		d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q,"limit":%d,"context":{"page":%q}}`, customer, channel, 1+r.IntN(3), page))
		ids = append(ids, d.DecisionID)
		var events []string
		event := func(typ, offer string) {
			o := ""
			if offer != "" {
				o = fmt.Sprintf(`,"offer_id":%q,"decision_id":%q`, offer, d.DecisionID)
			}
			events = append(events, fmt.Sprintf(`{"customer_id":%q,"type":%q,"channel":%q%s}`, customer, typ, channel, o))
		}
		for _, o := range d.Offers {
			if channel == "web" && r.IntN(5) > 0 {
				event("impression", o.ID)
			}
			switch x := r.IntN(10); {
			case x < 2:
				event("conversion", o.ID)
			case x < 4:
				event("click", o.ID)
			}
		}
		if r.IntN(5) == 0 {
			event("cart_add", "")
		}
		if len(events) > 0 {
			s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
		}
	}
	return ids
}

func TestReplayLoggedDecisions(t *testing.T) {
	tests := []struct {
		name string
		n    int
		args func(t *testing.T) []string
	}{
		{"embedded", 1000, func(t *testing.T) []string { return nil }},
		// The log and the catalog versions are the node's local files on
		// Redis too; the learned counts come from the shared store.
		{"redis", 200, func(t *testing.T) []string {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return []string{"--redis", "redis://" + rs.Addr + "/0"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--addr", "127.0.0.1:0", "--catalog", replayCatalog, "--data", dir, "--decision-log-sample", "1"}, tt.args(t)...)
			s := startServerIn(t, ".", args...)
			ids := decideWithOutcomes(t, s, tt.n)

			// On the running node: a few, as it logged them.
			for _, id := range []string{ids[0], ids[len(ids)/2], ids[len(ids)-1]} {
				s.logged(id) // written (the writer flushes every 100ms)
				var r replayJSON
				body := s.mustCall("POST", "/v1/admin/replay", fmt.Sprintf(`{"decision_id":%q}`, id), 200)
				if err := json.Unmarshal([]byte(body), &r); err != nil {
					t.Fatal(err)
				}
				if !r.Identical || r.Replayed == nil || len(r.Replayed.Explain) == 0 {
					t.Errorf("POST /v1/admin/replay %s: not identical:\n%s", id, body)
				}
			}
			replayRouteErrors(t, s, ids[len(ids)-1])
			stopped := ids[len(ids)-1]
			s.stop()

			// From the stopped node's data: every one.
			code, out, errs := runBinary(t, "replay", "--data", dir, "--all", "--json")
			if code != 0 {
				t.Errorf("nextbest replay --all: exit %d: %s", code, errs)
			}
			replayed := map[string]bool{}
			identical, reasons := 0, map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(out))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var r replayJSON
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("%v in %s", err, sc.Bytes())
				}
				replayed[r.DecisionID] = true
				if r.Identical {
					identical++
				} else {
					t.Errorf("%s does not replay identically: %s", r.DecisionID, sc.Bytes())
				}
				if r.Replayed != nil {
					for _, x := range r.Replayed.Explain {
						reasons[x.Reason]++
						if x.Sticky {
							reasons["sticky"]++
						}
					}
				}
			}
			for _, id := range ids {
				if !replayed[id] {
					t.Errorf("decision %s was not replayed", id)
				}
			}
			t.Logf("%d decisions, %d replayed, %d identical; reasons %v", len(ids), len(replayed), identical, reasons)
			if identical != len(ids) {
				t.Errorf("%d of %d decisions replay identically", identical, len(ids))
			}
			// The history and the learned counts were in play.
			for _, r := range []string{"capped", "group_taken", "suppressed", "sticky"} {
				if reasons[r] == 0 {
					t.Errorf("no decision had an offer %s: the test does not exercise the contact history", r)
				}
			}
			if contacts, learned := logUse(t, dir); contacts == 0 || learned == 0 {
				t.Errorf("%d entries with contacts, %d with learned outcomes: want both", contacts, learned)
			}

			replayErrors(t, dir, stopped)
		})
	}
}

// logUse counts the logged entries with a contact history and with
// learned impressions.
func logUse(t *testing.T, dir string) (contacts, learned int) {
	segs, _ := filepath.Glob(filepath.Join(dir, "decisions", "*.jsonl"))
	for _, seg := range segs {
		f, err := os.Open(seg)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e struct {
				Contacts [][4]any // [offer, channel, kind, at]
				Learned  []struct{ Impressions int }
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if len(e.Contacts) > 0 {
				contacts++
			}
			for _, l := range e.Learned {
				if l.Impressions > 0 {
					learned++
					break
				}
			}
		}
		f.Close()
	}
	return contacts, learned
}

// replayErrors: the command's errors name what is wrong, and --catalog
// shows another catalog's answer beside the logged one's.
func replayErrors(t *testing.T, dir, id string) {
	t.Helper()
	// Another catalog: the same offers, loan worth far more.
	src, err := os.ReadFile(replayCatalog)
	if err != nil {
		t.Fatal(err)
	}
	proposed := filepath.Join(t.TempDir(), "proposed.yaml")
	if err := os.WriteFile(proposed, []byte(strings.Replace(string(src), "value: 20\n", "value: 2000\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBinary(t, "replay", "--data", dir, "--catalog", proposed, id)
	if code != 0 || !strings.Contains(out, "identical") || !strings.Contains(out, "(proposed)") || !strings.Contains(out, "(logged)") {
		t.Errorf("replay --catalog: exit %d\n%s%s", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("channels: [web]\noffers:\n  - id: x\n    value: many\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown id", []string{"d5cvv4c7aibg00cl2a3g"}, 1, "d5cvv4c7aibg00cl2a3g not in the decision log"},
		{"not an id", []string{"nope"}, 2, `"nope" is not a decision id`},
		{"bad catalog", []string{"--catalog", bad, id}, 1, bad + ":4"},
		{"no ids", nil, 2, "--all"},
	} {
		code, out, errs := runBinary(t, append([]string{"replay", "--data", dir}, tt.args...)...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("%s: exit %d, want %d, stderr naming %q:\n%s%s", tt.name, code, tt.code, tt.want, out, errs)
		}
	}
	// A catalog version no longer kept: a clear error, not another
	// version's answer.
	src, err = os.ReadFile(replayCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "catalogs", catalogs.VersionOf(src)+".yaml")); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runBinary(t, "replay", "--data", dir, id)
	if code != 1 || !strings.Contains(out+errs, "does not keep it") {
		t.Errorf("version not kept: exit %d:\n%s%s", code, out, errs)
	}
}

// replayRouteErrors: POST /v1/admin/replay answers bad input with a 4xx
// naming it, and a proposed catalog beside the logged one.
func replayRouteErrors(t *testing.T, s *server, id string) {
	t.Helper()
	src, err := os.ReadFile(replayCatalog)
	if err != nil {
		t.Fatal(err)
	}
	proposed, _ := json.Marshal(strings.Replace(string(src), "value: 20\n", "value: 2000\n", 1))
	var r replayJSON
	body := s.mustCall("POST", "/v1/admin/replay", fmt.Sprintf(`{"decision_id":%q,"catalog":%s}`, id, proposed), 200)
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Identical || r.Proposed == nil || r.Proposed.Identical == nil || r.Proposed.Catalog == r.Catalog {
		t.Errorf("replay with a proposed catalog:\n%s", body)
	}
	for _, tt := range []struct {
		body   string
		status int
		want   string
	}{
		{`{}`, 400, "decision_id: required"},
		{`{"decision_id":`, 400, "replay"},
		{`{"decision_id":"x","other":1}`, 400, "other"},
		{`{"decision_id":"nope"}`, 400, "not a decision id"},
		{`{"decision_id":"d5cvv4c7aibg00cl2a3g"}`, 404, "not in the log"},
		{fmt.Sprintf(`{"decision_id":%q,"catalog":"channels: [web]\noffers:\n  - id: x\n    value: many\n"}`, id), 422, `"line":4`},
	} {
		status, body := s.call("POST", "/v1/admin/replay", tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("POST /v1/admin/replay %s: %d %s, want %d naming %q", tt.body, status, body, tt.status, tt.want)
		}
	}
}
