package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/redistest"
	"github.com/nextbest/nextbest/rules"
)

// Issue 14 point 4 over HTTP against the real binary, on the embedded
// store and on Redis: GET /v1/stats counts each assigned customer once,
// however often and on however many channels they decide, with their
// conversions and value since their first decision, and compares
// variants by customer with intervals that do not collapse when
// customers convert more than once.

// upliftBody is the part of GET /v1/stats this test reads.
type upliftBody struct {
	RetentionDays int    `json:"retention_days"`
	Unit          string `json:"unit"`
	Method        string `json:"uplift_method"`
	Channels      []struct {
		Channel   string
		Decisions int64
		Reach     *int64
	}
	Experiments []struct {
		ID, Control string
		Variants    []struct {
			Name      string
			Decisions int64
			Customers struct {
				Exposed, Converters, Conversions int64
				Value                            float64
				ConversionsPerCustomer           *float64 `json:"conversions_per_customer"`
				Retention                        *float64
			}
			Uplift *struct {
				ConversionRate         *upliftInterval `json:"conversion_rate"`
				ConversionsPerCustomer *upliftInterval `json:"conversions_per_customer"`
				ValuePerCustomer       *upliftInterval `json:"value_per_customer"`
			}
		}
		Channels []struct {
			Variant, Channel string
			Decisions        int64
			Reach            *int64
		}
	}
}

type upliftInterval struct {
	Difference float64
	CI95       [2]float64 `json:"ci95"`
}

func TestUpliftByCustomer(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", "testdata/decisioning.yaml", "--data", t.TempDir(), "--stats-flush", "10ms")
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", "testdata/decisioning.yaml", "--redis", "redis://"+rs.Addr+"/0", "--stats-flush", "10ms")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { upliftByCustomer(t, tt.start(t)) })
	}
}

func upliftByCustomer(t *testing.T, s *server) {
	cat, err := rules.LoadFile("testdata/decisioning.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wants := map[string]*upliftWant{"control": {}, "holdout": {}}
	channels := []string{"web", "app", "email"}
	var events []string
	reach := map[[2]string]map[string]bool{} // {channel, variant ("" for all)} → customers
	reached := func(ch, variant, id string) {
		k := [2]string{ch, variant}
		if reach[k] == nil {
			reach[k] = map[string]bool{}
		}
		reach[k][id] = true
	}
	for i := range 40 {
		id := fmt.Sprintf("u14-%d", i)
		w := wants[decision.Assign(nil, cat, id)[0].Variant.Name]
		// Up to four decisions on several channels: one customer.
		for k := range 1 + i%4 {
			ch := channels[(i+k)%3]
			s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q}`, id, ch))
			reached(ch, "", id)
			reached(ch, decision.Assign(nil, cat, id)[0].Variant.Name, id)
			w.decisions++
			if ch == "email" {
				w.email++
			}
		}
		w.exposed++
		// Every third customer converts i%4+1 times (more than once per
		// decision for some), worth 10 each; one conversion of every
		// fifth customer happened before their first decision.
		n := int64(0)
		if i%3 == 0 {
			n = int64(i%4 + 1)
			for range n {
				events = append(events, fmt.Sprintf(`{"customer_id":%q,"type":"conversion","channel":"web","properties":{"value":10}}`, id))
			}
			w.converters++
			w.conversions += n
			w.value += float64(10 * n)
		}
		if i%5 == 0 {
			events = append(events, fmt.Sprintf(`{"customer_id":%q,"type":"conversion","channel":"web","ts":%q,"properties":{"value":99}}`, id, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)))
		}
		w.perCustomer = append(w.perCustomer, float64(n))
	}
	// One retried conversion (its event_id applied once) of a converter.
	retry := `{"event_id":"u14-retry","customer_id":"u14-0","type":"conversion","channel":"web","properties":{"value":10}}`
	events = append(events, retry)
	w0 := wants[decision.Assign(nil, cat, "u14-0")[0].Variant.Name]
	w0.conversions++
	w0.value += 10
	w0.perCustomer[0]++
	s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
	s.mustCall("POST", "/v1/events", retry, 202)

	var b upliftBody
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/stats", "", 200)), &b); err != nil {
			t.Fatal(err)
		}
		if matches(b, wants) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never matched: %+v\nwant %+v %+v", b.Experiments, *wants["control"], *wants["holdout"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.Unit != "customer" || !strings.Contains(b.Method, "Welch") || !strings.Contains(b.Method, "Newcombe") || b.RetentionDays != 30 {
		t.Errorf("unit %q, method %q, retention_days %d", b.Unit, b.Method, b.RetentionDays)
	}
	x := b.Experiments[0]
	for _, v := range x.Variants {
		if v.Decisions != wants[v.Name].decisions {
			t.Errorf("%s: %d decisions, want %d (descriptive, per decision)", v.Name, v.Decisions, wants[v.Name].decisions)
		}
	}
	mean := func(xs []float64) float64 {
		sum := 0.0
		for _, v := range xs {
			sum += v
		}
		return sum / float64(len(xs))
	}
	for _, v := range x.Variants {
		if v.Name == x.Control {
			continue
		}
		u := v.Uplift.ConversionsPerCustomer
		d := mean(wants[v.Name].perCustomer) - mean(wants[x.Control].perCustomer)
		if u == nil || math.Abs(u.Difference-d) > 1e-9 || !(u.CI95[0] < d && d < u.CI95[1]) {
			t.Errorf("%s: conversions per customer uplift %+v, want %v inside a non-empty interval", v.Name, u, d)
		}
		if r := v.Uplift.ConversionRate; r == nil || !(r.CI95[0] < r.Difference && r.Difference < r.CI95[1]) {
			t.Errorf("%s: conversion rate uplift %+v, want a non-empty interval", v.Name, r)
		}
		if v.Customers.Retention == nil || *v.Customers.Retention != float64(wants[v.Name].converters)/float64(wants[v.Name].exposed) {
			t.Errorf("%s: retention %v, want every converter's (all converted on the day of exposure)", v.Name, v.Customers.Retention)
		}
	}
	// Per experiment per channel, and the channel filter.
	emailDecisions := int64(0)
	for _, c := range x.Channels {
		if c.Channel == "email" {
			emailDecisions += c.Decisions
		}
	}
	if want := wants["control"].email + wants["holdout"].email; emailDecisions != want {
		t.Errorf("email decisions per variant sum to %d, want %d", emailDecisions, want)
	}
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/stats?channel=email&retention_days=1", "", 200)), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Channels) != 1 || b.Channels[0].Channel != "email" || b.RetentionDays != 1 || !matches(b, wants) {
		t.Errorf("channel=email: channels %+v, retention_days %d, experiments %+v", b.Channels, b.RetentionDays, b.Experiments)
	}
	for _, c := range b.Experiments[0].Channels {
		if c.Channel != "email" {
			t.Errorf("channel=email: a row of %s", c.Channel)
		}
	}
	// Reach: the distinct customers decided for on each channel, and per
	// variant on each channel (few enough for the sketch to count them
	// exactly); flushed with the statistics, so awaited as they are.
	reachMatches := func(b upliftBody) bool {
		for _, c := range b.Channels {
			if c.Reach == nil || *c.Reach != int64(len(reach[[2]string{c.Channel, ""}])) {
				return false
			}
		}
		for _, c := range b.Experiments[0].Channels {
			if c.Reach == nil || *c.Reach != int64(len(reach[[2]string{c.Channel, c.Variant}])) {
				return false
			}
		}
		return len(b.Channels) > 0
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/stats", "", 200)), &b); err != nil {
			t.Fatal(err)
		}
		if reachMatches(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reach never matched: channels %+v, experiment channels %+v; want %d web, %d app, %d email customers",
				b.Channels, b.Experiments[0].Channels, len(reach[[2]string{"web", ""}]), len(reach[[2]string{"app", ""}]), len(reach[[2]string{"email", ""}]))
		}
	}
	// The exposure is stored with the customer, and exported with them.
	var exp struct {
		Exposures []struct {
			Experiment, Variant string
			Conversions         int64
		} `json:"experiment_exposures"`
	}
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/customers/u14-0/export", "", 200)), &exp); err != nil {
		t.Fatal(err)
	}
	if v := decision.Assign(nil, cat, "u14-0")[0].Variant.Name; len(exp.Exposures) != 1 || exp.Exposures[0].Variant != v || exp.Exposures[0].Conversions != 2 {
		t.Errorf("export of u14-0: exposures %+v, want ranking/%s with 2 conversions (one and its retry's first delivery)", exp.Exposures, v)
	}
}

// upliftWant is what a variant's customers did.
type upliftWant struct {
	exposed, converters, conversions, decisions, email int64
	value                                              float64
	perCustomer                                        []float64 // conversions of each exposed customer
}

// matches reports whether b's customers are wants'.
func matches(b upliftBody, wants map[string]*upliftWant) bool {
	if len(b.Experiments) != 1 {
		return false
	}
	for _, v := range b.Experiments[0].Variants {
		w, c := wants[v.Name], v.Customers
		if c.Exposed != w.exposed || c.Converters != w.converters || c.Conversions != w.conversions || c.Value != w.value {
			return false
		}
	}
	return true
}
