package featurestore_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

func TestNewSchemaErrors(t *testing.T) {
	agg := func(a featurestore.Aggregation) *featurestore.Aggregation { return &a }
	tests := []struct {
		name    string
		feature featurestore.Feature
		wantErr string
	}{
		{"empty name", featurestore.Feature{Type: featurestore.TypeNumber}, "feature 1: empty name"},
		{"declared twice", featurestore.Feature{Name: "ok", Type: featurestore.TypeNumber}, `feature "ok": declared twice`},
		{"no type", featurestore.Feature{Name: "f"}, `feature "f": invalid type`},
		{"default of another type", featurestore.Feature{Name: "f", Type: featurestore.TypeNumber, Default: featurestore.String("x")},
			`feature "f": default is a string, want number`},
		{"no event", featurestore.Feature{Name: "f", Type: featurestore.TypeNumber, From: agg(featurestore.Aggregation{Op: featurestore.OpCount})},
			`feature "f": from: event is required`},
		{"negative window", featurestore.Feature{Name: "f", Type: featurestore.TypeNumber, From: agg(featurestore.Aggregation{Event: "e", Op: featurestore.OpCount, Window: -time.Hour})},
			`feature "f": from: window must be positive`},
		{"count of a string", featurestore.Feature{Name: "f", Type: featurestore.TypeString, From: agg(featurestore.Aggregation{Event: "e", Op: featurestore.OpCount})},
			`feature "f": from: op count makes a number, feature is a string`},
		{"sum without field", featurestore.Feature{Name: "f", Type: featurestore.TypeNumber, From: agg(featurestore.Aggregation{Event: "e", Op: featurestore.OpSum})},
			`feature "f": from: op sum needs a field`},
		{"sum of a bool", featurestore.Feature{Name: "f", Type: featurestore.TypeBool, From: agg(featurestore.Aggregation{Event: "e", Op: featurestore.OpSum, Field: "x"})},
			`feature "f": from: op sum makes a number, feature is a bool`},
		{"last without field", featurestore.Feature{Name: "f", Type: featurestore.TypeString, From: agg(featurestore.Aggregation{Event: "e", Op: featurestore.OpLast})},
			`feature "f": from: op last needs a field`},
		{"last_time of a number", featurestore.Feature{Name: "f", Type: featurestore.TypeNumber, From: agg(featurestore.Aggregation{Event: "e", Op: featurestore.OpLastTime})},
			`feature "f": from: op last_time makes a time, feature is a number`},
		{"no op", featurestore.Feature{Name: "f", Type: featurestore.TypeNumber, From: agg(featurestore.Aggregation{Event: "e"})},
			`feature "f": from: op must be one of count, sum, last, last_time, top, distinct`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := featurestore.NewSchema([]featurestore.Feature{{Name: "ok", Type: featurestore.TypeNumber}, tt.feature})
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("NewSchema error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewSchemaReportsEveryError(t *testing.T) {
	_, err := featurestore.NewSchema([]featurestore.Feature{{Name: "a"}, {Name: "b", Type: featurestore.TypeBool, Default: featurestore.Number(1)}})
	if err == nil {
		t.Fatal("NewSchema succeeded")
	}
	for _, want := range []string{`feature "a": invalid type`, `feature "b": default is a number, want bool`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestSchemaLookupAndDefaults(t *testing.T) {
	s := testSchema(t)
	for i, f := range s.Features() {
		got, ok := s.Lookup(f.Name)
		if !ok || got.Index != i || got.Name != f.Name {
			t.Errorf("Lookup(%q) = %+v, %v; want index %d", f.Name, got, ok, i)
		}
		if f.Default.Kind != f.Type {
			t.Errorf("%s: default kind %v, want %v", f.Name, f.Default.Kind, f.Type)
		}
	}
	if _, ok := s.Lookup("nope"); ok {
		t.Error("Lookup(unknown) succeeded")
	}
	for _, tt := range []struct {
		typ  string
		want bool
	}{{"purchase", true}, {"cart_clear", true}, {"product_view", true}, {"page_view", false}} {
		if got := s.Affects(tt.typ); got != tt.want {
			t.Errorf("Affects(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

func TestBucketWidth(t *testing.T) {
	tests := []struct {
		window time.Duration
		want   time.Duration
	}{
		{time.Minute, time.Minute},
		{time.Hour, time.Minute},
		{12 * time.Hour, 7*time.Minute + 30*time.Second},
		{day, 15 * time.Minute},
		{30 * day, 7*time.Hour + 30*time.Minute},
		{90 * day, 22*time.Hour + 30*time.Minute},
		{96 * day, day},
		{365 * day, day},
		{100 * time.Minute, time.Minute + 2*time.Second}, // 62.5 s, truncated to whole seconds
	}
	for _, tt := range tests {
		a := featurestore.Aggregation{Window: tt.window}
		if got := a.BucketWidth(); got != tt.want {
			t.Errorf("BucketWidth(window %v) = %v, want %v", tt.window, got, tt.want)
		}
	}
}

func TestCheckEvent(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		name    string
		ev      featurestore.Event
		wantErr string
	}{
		{"valid", event("purchase", 0, amount(3)), ""},
		{"integer amount", event("purchase", 0, map[string]any{"amount": 3}), ""},
		{"missing field", event("purchase", 0, nil), ""},
		{"null field", event("purchase", 0, map[string]any{"amount": nil}), ""},
		{"fields nothing reads", event("purchase", 0, map[string]any{"note": []any{1.0}}), ""},
		{"event type nothing reads", event("page_view", 0, map[string]any{"amount": "x"}), ""},
		{"wrong type", event("purchase", 0, map[string]any{"amount": "12"}),
			`property "amount" (feeds feature "spend_90d"): got a string, want number`},
		{"infinite", event("purchase", 0, map[string]any{"amount": math.Inf(1)}),
			`property "amount" (feeds feature "spend_90d"): +Inf is not a finite number`},
		{"last of a string", event("product_view", 0, map[string]any{"category": 4.0}),
			`property "category" (feeds feature "last_category"): got a number, want string`},
		{"list element", event("product_view", 0, map[string]any{"sizes": []any{"m", 1.0}}),
			`property "sizes" (feeds feature "last_sizes"): list element 1 is a number, want string`},
		{"bool", event("newsletter", 0, map[string]any{"on": "yes"}),
			`property "on" (feeds feature "subscribed"): got a string, want bool`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CheckEvent(&tt.ev)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckEvent: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("CheckEvent error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestEventMutations(t *testing.T) {
	s := testSchema(t)
	withID := func(e featurestore.Event, id, cust string) featurestore.Event {
		e.ID, e.CustomerID = id, cust
		return e
	}
	events := []featurestore.Event{
		withID(event("cart_add", 0, nil), "", "c-2"),
		withID(event("page_view", 0, nil), "", "c-3"),    // affects nothing, no id: skipped
		withID(event("page_view", 0, nil), "p-1", "c-4"), // affects nothing, but its id is remembered
		withID(event("cart_add", 0, nil), "e-1", "c-1"),
		withID(event("cart_add", 0, nil), "e-1", "c-1"), // a retry within the call
		withID(event("cart_add", 0, nil), "e-2", "c-2"),
	}
	muts := featurestore.EventMutations(s, events, now)
	var ids []string
	for _, m := range muts {
		ids = append(ids, m.CustomerID)
	}
	if got, want := strings.Join(ids, ","), "c-2,c-4,c-1"; got != want {
		t.Fatalf("customers = %s, want %s (first appearance order)", got, want)
	}
	recs := map[string]*featurestore.Record{}
	dedupe := map[string][]string{}
	for _, m := range muts {
		r := &featurestore.Record{}
		if m.Dedupe != nil {
			m.Dedupe.Reset() // as a backend does: no id applied before
			dedupe[m.CustomerID] = m.Dedupe.IDs
		}
		if got, want := m.Apply(r), m.CustomerID != "c-4"; got != want {
			t.Errorf("%s: Apply reported change %v, want %v", m.CustomerID, got, want)
		}
		recs[m.CustomerID] = r
	}
	for _, tt := range []struct {
		id   string
		cart float64
	}{{"c-1", 1}, {"c-2", 2}, {"c-4", 0}} {
		if got := feature(t, s, recs[tt.id], now, "cart_items"); got.Num != tt.cart {
			t.Errorf("%s: cart_items = %v, want %v", tt.id, got, tt.cart)
		}
	}
	// Every id is left to the backend to remember, that of an event that
	// feeds nothing too; an event without id has none.
	if got, want := fmt.Sprint(dedupe), "map[c-1:[e-1] c-2:[e-2] c-4:[p-1]]"; got != want {
		t.Errorf("dedupe ids %s, want %s", got, want)
	}
	// Applying the same mutations again, as a retried request would, with
	// the backend marking their ids seen, changes nothing.
	for _, m := range featurestore.EventMutations(s, events[3:5], now) {
		m.Dedupe.Reset()
		m.Dedupe.Seen[0] = true
		if m.Apply(recs["c-1"]) {
			t.Error("c-1: a retried event was applied again")
		}
	}
}

// TestEventMutationsApplied: the applied flags tell retries from events
// that took effect, and a second run of a mutation (a compare-and-set
// retry) rewrites them.
func TestEventMutationsApplied(t *testing.T) {
	s := testSchema(t)
	ev := func(id, cust string) featurestore.Event {
		e := event("cart_add", 0, nil)
		e.ID, e.CustomerID = id, cust
		return e
	}
	events := []featurestore.Event{ev("e-1", "c-1"), ev("e-1", "c-1"), ev("", "c-1"), ev("e-2", "c-2"), ev("e-3", "c-1")}
	applied := make([]bool, len(events))
	muts := featurestore.EventMutationsApplied(s, events, now, applied)
	recs := map[string]*featurestore.Record{"c-1": {}, "c-2": {}}
	for _, m := range muts {
		first := recs[m.CustomerID].Clone()
		m.Dedupe.Reset()
		m.Apply(first) // a run that lost its compare-and-set
		for i, id := range m.Dedupe.IDs {
			m.Dedupe.Seen[i] = id == "e-3" // c-1 already had e-3
		}
		m.Apply(recs[m.CustomerID])
	}
	if want := []bool{true, false, true, true, false}; !slices.Equal(applied, want) {
		t.Errorf("applied = %v, want %v", applied, want)
	}
}

// TestEventMutationsLargeCall: a call of many events (customers grouped
// through a map) with a customer of many ids (found through a map),
// interleaved with other customers, retries within the call and an id
// the backend had applied before.
func TestEventMutationsLargeCall(t *testing.T) {
	s := testSchema(t)
	var events []featurestore.Event
	var want []bool // applied
	add := func(id, cust string, applied bool) {
		e := event("cart_add", 0, nil)
		e.ID, e.CustomerID = id, cust
		events = append(events, e)
		want = append(want, applied)
	}
	for i := range 20 {
		add(fmt.Sprintf("e-%d", i), "c-big", i != 3) // e-3: applied before this call
		add("", fmt.Sprintf("c-%d", i%3), true)
		if i == 10 || i == 15 {
			add("e-5", "c-big", false) // a retry within the call
			add(fmt.Sprintf("o-%d", i), "c-0", true)
		}
	}
	applied := make([]bool, len(events))
	muts := featurestore.EventMutationsApplied(s, events, now, applied)
	var order []string
	recs := map[string]*featurestore.Record{}
	for _, m := range muts {
		order = append(order, m.CustomerID)
		r := &featurestore.Record{}
		if m.Dedupe != nil {
			m.Dedupe.Reset()
			for i, id := range m.Dedupe.IDs {
				m.Dedupe.Seen[i] = id == "e-3"
			}
		}
		m.Apply(r)
		recs[m.CustomerID] = r
	}
	if got, want := strings.Join(order, ","), "c-big,c-0,c-1,c-2"; got != want {
		t.Errorf("customers = %s, want %s", got, want)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("applied = %v, want %v", applied, want)
	}
	if m := muts[0]; m.Dedupe == nil || len(m.Dedupe.IDs) != 20 {
		t.Errorf("c-big's dedupe ids: %v, want e-0 to e-19 once each", m.Dedupe)
	}
	if m := muts[1]; m.Dedupe == nil || strings.Join(m.Dedupe.IDs, ",") != "o-10,o-15" {
		t.Errorf("c-0's dedupe ids: %v, want o-10,o-15", m.Dedupe)
	}
	for _, tt := range []struct {
		id   string
		cart float64
	}{{"c-big", 19}, {"c-0", 9}, {"c-1", 7}, {"c-2", 6}} {
		if got := feature(t, s, recs[tt.id], now, "cart_items"); got.Num != tt.cart {
			t.Errorf("%s: cart_items = %v, want %v", tt.id, got, tt.cart)
		}
	}
}

func TestAttrsMutation(t *testing.T) {
	r := &featurestore.Record{}
	if featurestore.AttrsMutation("c-1", nil).Apply(r) {
		t.Error("an empty attrs mutation reported a change")
	}
	m := featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": featurestore.String("gold")})
	if m.CustomerID != "c-1" || !m.Apply(r) || !r.Attrs["tier"].Equal(featurestore.String("gold")) {
		t.Errorf("AttrsMutation: id %q, attrs %v", m.CustomerID, r.Attrs)
	}
}
