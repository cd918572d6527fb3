package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDecideCommandAnswersAsServer is issue 11's acceptance: nextbest
// decide --data, on the store of a stopped node, answers byte for byte
// what POST /v1/decide answered for the same customer, catalog, time and
// decision id, with the customer's caps, stickiness and the learned
// statistics counting on both sides.
func TestDecideCommandAnswersAsServer(t *testing.T) {
	const catalog = "../../examples/retail/catalog.yaml"
	dir := t.TempDir()
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", dir, "--catalog", catalog)
	const customer = "replay-1"
	// Minutes ago, so the decision's time to the second (what a decision
	// id keeps of it) sees the same windows as the server did.
	ts := time.Now().Add(-5 * time.Minute).UTC().Format(time.RFC3339Nano)
	events := []string{
		fmt.Sprintf(`{"customer_id":%q,"type":"cart_add","channel":"web","ts":%q}`, customer, ts),
		fmt.Sprintf(`{"customer_id":%q,"type":"cart_add","channel":"web","ts":%q}`, customer, ts),
		// Over cart-reminder's cap of 3 in 7 days.
		fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":"cart-reminder","channel":"web","ts":%q}`, customer, ts),
		fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":"cart-reminder","channel":"app","ts":%q}`, customer, ts),
		fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":"cart-reminder","channel":"email","ts":%q}`, customer, ts),
		// Shown in the app: sticky on the web for a day.
		fmt.Sprintf(`{"customer_id":%q,"type":"impression","offer_id":"free-shipping-nudge","channel":"app","ts":%q}`, customer, ts),
		// Learned statistics of another cart abandoner's outcomes.
		fmt.Sprintf(`{"customer_id":"replay-2","type":"cart_add","channel":"web","ts":%q}`, ts),
		fmt.Sprintf(`{"customer_id":"replay-2","type":"impression","offer_id":"cart-bundle","channel":"web","ts":%q}`, ts),
		fmt.Sprintf(`{"customer_id":"replay-2","type":"conversion","offer_id":"cart-bundle","channel":"web","ts":%q}`, ts),
	}
	s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
	// The decision must see the outcomes in the learned statistics, as
	// the store will have them once the server stopped: wait for the
	// flush that publishes them.
	pending := regexp.MustCompile(`(?m)^nextbest_stats_pending_cells (\S+)$`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		m := pending.FindStringSubmatch(s.mustCall("GET", "/metrics", "", 200))
		if m != nil && m[1] == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statistics not flushed within 10s: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	const context = `{"page":"cart","cart_total":350}`
	body := s.mustCall("POST", "/v1/decide", fmt.Sprintf(`{"customer_id":%q,"channel":"web","placement":"cart_page","context":%s,"limit":3,"explain":true}`, customer, context), 200)
	var d decideResponse
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	// The points where a decision without history or statistics would
	// differ hold on the server.
	if r := reasonOf(d, "cart-reminder"); r != "capped" {
		t.Fatalf("server: cart-reminder is %q, want capped:\n%s", r, body)
	}
	sticky := false
	for _, x := range d.Explain {
		sticky = sticky || (x.OfferID == "free-shipping-nudge" && x.Sticky)
	}
	if !sticky || len(d.Offers) < 2 || d.Offers[0].ID != "free-shipping-nudge" {
		t.Fatalf("server: want the sticky free-shipping-nudge first and more offers:\n%s", body)
	}
	s.stop()

	code, out, errs := runBinary(t, "decide", "--catalog", catalog, "--data", dir, "--customer", customer,
		"--channel", "web", "--placement", "cart_page", "--context", context, "--limit", "3", "--explain", "--decision-id", d.DecisionID)
	if code != 0 {
		t.Fatalf("decide: exit %d: %s", code, errs)
	}
	// The CLI indents the same encoder's bytes; compacting them undoes
	// only the indentation.
	var got bytes.Buffer
	if err := json.Compact(&got, []byte(out)); err != nil {
		t.Fatalf("decide output %s: %v", out, err)
	}
	if want := strings.TrimSuffix(body, "\n"); got.String() != want {
		t.Errorf("nextbest decide --data answers\n%s\nPOST /v1/decide answered\n%s", got.String(), want)
	}
}
