package storetest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// Store is what the suite needs of a backend.
type Store interface {
	Load(ctx context.Context, customerID string) (*featurestore.Record, error)
	Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error)
}

// Shared is implemented by a Store whose data other nodes write too
// (Redis). The suite writes through Peer as another node would: between
// a Mutate's read of a customer and its write.
type Shared interface {
	Store
	// Peer returns another node's handle on the same data, with client-side
	// state (locks, cache) of its own, as a second nextbest process has:
	// the suite calls the peer's Mutate from inside a mutation the Store is
	// applying, so the two must share no lock.
	Peer(t *testing.T) Store
}

// Now is the suite's clock: a time at which the bucket boundaries of every
// window in Schema fall on whole bucket widths (30d/96 = 7.5h, 90d/96 =
// 22.5h, 1d/96 = 15m all divide 22.5h), so windowed sums are exact.
var Now = time.Unix(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).Unix()/81000*81000, 0).UTC()

// Schema returns the feature schema the suite writes with.
func Schema() *featurestore.Schema {
	s, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString, Default: featurestore.String("none")},
		{Name: "lifetime_value", Type: featurestore.TypeNumber},
		{Name: "interests", Type: featurestore.TypeList},
		{Name: "opted_out_sms", Type: featurestore.TypeBool},
		{Name: "last_purchase_at", Type: featurestore.TypeTime, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpLastTime}},
		{Name: "purchases", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpCount}},
		{Name: "purchases_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpCount, Window: 30 * 24 * time.Hour}},
		{Name: "spend", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpSum, Field: "amount"}},
		{Name: "spend_90d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "purchase", Op: featurestore.OpSum, Field: "amount", Window: 90 * 24 * time.Hour}},
		{Name: "cart_items", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "cart_add", Op: featurestore.OpCount, ResetOn: []string{"purchase"}}},
		{Name: "last_category", Type: featurestore.TypeString, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpLast, Field: "category"}},
		{Name: "views_1d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpCount, Window: 24 * time.Hour}},
	})
	if err != nil {
		panic(err)
	}
	return s
}

// Options are what the suite sets in a store it opens.
type Options struct {
	// Now is the clock the store's dedupe entries expire by: a test
	// clock, starting at Now, that the suite moves forward.
	Now func() time.Time
	// DedupeWindow is the store's dedupe window; 0 for the default
	// (featurestore.DefaultDedupeWindow).
	DedupeWindow time.Duration
	// TimelineLength is the length of the customers' timelines the
	// store keeps (RunJournal); 0 for the default
	// (featurestore.DefaultTimelineLength), negative for none.
	TimelineLength int
}

// Run runs the contract suite. open returns a new, empty store for one
// subtest, configured with opts, and arranges its cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T, opts Options) Store) {
	s := &suite{schema: Schema(), open: open}
	t.Run("UnknownCustomer", s.unknownCustomer)
	t.Run("Attrs", s.attrs)
	t.Run("Windows", s.windows)
	t.Run("ResetOn", s.resetOn)
	t.Run("LastOutOfOrder", s.lastOutOfOrder)
	t.Run("SeveralMutationsOfOneCustomer", s.severalMutations)
	t.Run("MultiCustomer", s.multiCustomer)
	t.Run("UnchangedCreatesNothing", s.unchanged)
	t.Run("DuplicateEventIDs", s.duplicateEventIDs)
	t.Run("DedupeWindow", s.dedupeWindow)
	t.Run("DedupeWithoutRecord", s.dedupeWithoutRecord)
	t.Run("ConcurrentRetries", s.concurrentRetries)
	t.Run("ContactHistory", s.contactHistory)
	t.Run("LoadedRecordIsSnapshot", s.snapshot)
	t.Run("ConcurrentMutationsOfOneCustomer", s.concurrent)
	t.Run("MixedConflictsInOneCall", s.mixedConflicts)
	t.Run("Bulk", s.bulk)
	t.Run("KeyedOpsAndWhere", s.keyedOpsAndWhere)
	t.Run("DecidedSegments", s.decidedSegments)
}

type suite struct {
	schema *featurestore.Schema
	open   func(t *testing.T, opts Options) Store
}

// openStore opens a store with the default dedupe window and a clock
// that stays at Now.
func (s *suite) openStore(t *testing.T) Store {
	return s.open(t, Options{Now: func() time.Time { return Now }})
}

// clock is a test clock the suite moves forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// want holds expected feature values by name; features not named are not
// checked.
type want map[string]featurestore.Value

func num(f float64) featurestore.Value      { return featurestore.Number(f) }
func str(s string) featurestore.Value       { return featurestore.String(s) }
func at(d time.Duration) featurestore.Value { return featurestore.Time(Now.Add(d)) }

func ev(id, typ string, d time.Duration, props map[string]any) featurestore.Event {
	return featurestore.Event{CustomerID: id, Type: typ, Channel: "web", Time: Now.Add(d), Properties: props}
}

// mutate runs muts and fails the test on error.
func mutate(t *testing.T, st Store, muts []featurestore.Mutation) []*featurestore.Record {
	t.Helper()
	recs, err := st.Mutate(context.Background(), muts)
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	if len(recs) != len(muts) {
		t.Fatalf("Mutate returned %d records for %d mutations", len(recs), len(muts))
	}
	for i, r := range recs {
		if r == nil {
			// The cache tier would take it for an unknown customer.
			t.Fatalf("Mutate returned a nil record for mutation %d (%s)", i, muts[i].CustomerID)
		}
	}
	return recs
}

func (s *suite) events(t *testing.T, st Store, evs ...featurestore.Event) {
	t.Helper()
	for i := range evs {
		if err := s.schema.CheckEvent(&evs[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	mutate(t, st, featurestore.EventMutations(s.schema, evs, Now))
}

func load(t *testing.T, st Store, id string) *featurestore.Record {
	t.Helper()
	r, err := st.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("Load(%q): %v", id, err)
	}
	if r == nil {
		t.Fatalf("Load(%q) = nil, nil", id)
	}
	return r
}

// check compares r's features at now with w.
func (s *suite) check(t *testing.T, what string, r *featurestore.Record, now time.Time, w want) {
	t.Helper()
	got := r.Features(s.schema, now, nil)
	for name, wv := range w {
		f, ok := s.schema.Lookup(name)
		if !ok {
			t.Fatalf("no feature %q", name)
		}
		if gv := got[f.Index]; !gv.Equal(wv) {
			t.Errorf("%s: %s = %v, want %v", what, name, gv, wv)
		}
	}
}

func (s *suite) unknownCustomer(t *testing.T) {
	st := s.openStore(t)
	r, err := st.Load(context.Background(), "nobody")
	if !errors.Is(err, featurestore.ErrNotFound) {
		t.Fatalf("Load(unknown) = %v, %v; want ErrNotFound", r, err)
	}
}

func (s *suite) attrs(t *testing.T) {
	st := s.openStore(t)
	steps := []struct {
		attrs map[string]featurestore.Value
		want  want
	}{
		{
			attrs: map[string]featurestore.Value{"tier": str("gold"), "lifetime_value": num(1500), "interests": featurestore.List([]string{"shoes", "hats"})},
			want:  want{"tier": str("gold"), "lifetime_value": num(1500), "interests": featurestore.List([]string{"shoes", "hats"}), "opted_out_sms": featurestore.Bool(false)},
		},
		{
			attrs: map[string]featurestore.Value{"tier": str("silver"), "opted_out_sms": featurestore.Bool(true)},
			want:  want{"tier": str("silver"), "lifetime_value": num(1500), "interests": featurestore.List([]string{"shoes", "hats"}), "opted_out_sms": featurestore.Bool(true)},
		},
		{
			attrs: map[string]featurestore.Value{"interests": featurestore.List(nil)},
			want:  want{"tier": str("silver"), "interests": featurestore.List(nil)},
		},
	}
	for i, step := range steps {
		recs := mutate(t, st, []featurestore.Mutation{featurestore.AttrsMutation("c-1", step.attrs)})
		s.check(t, fmt.Sprintf("step %d: Mutate result", i), recs[0], Now, step.want)
		s.check(t, fmt.Sprintf("step %d: Load", i), load(t, st, "c-1"), Now, step.want)
	}
}

func (s *suite) windows(t *testing.T) {
	st := s.openStore(t)
	const day = 24 * time.Hour
	amount := func(a float64) map[string]any { return map[string]any{"amount": a} }
	s.events(t, st,
		// Exactly on the oldest boundary of each window, then one second
		// before it: the first counts, the second does not.
		ev("c-1", "purchase", -90*day, amount(1)),
		ev("c-1", "purchase", -90*day-time.Second, amount(2)),
		ev("c-1", "purchase", -30*day, amount(16)),
		ev("c-1", "purchase", -30*day-time.Second, amount(32)),
		ev("c-1", "purchase", -time.Second, amount(4)),
		ev("c-1", "purchase", 0, amount(8)),
		ev("c-1", "product_view", -day, map[string]any{"category": "shoes"}),
		ev("c-1", "product_view", -day-time.Second, map[string]any{"category": "shoes"}),
		ev("c-1", "product_view", -15*time.Minute, nil),
		ev("c-1", "product_view", 0, nil),
	)
	r := load(t, st, "c-1")
	tests := []struct {
		at   time.Duration // when the features are read, after Now
		want want
	}{
		{0, want{"purchases": num(6), "spend": num(63), "purchases_30d": num(3), "spend_90d": num(1 + 16 + 32 + 4 + 8), "views_1d": num(3), "last_purchase_at": at(0)}},
		// One 15-minute bucket later, the boundary view has slid out.
		{15 * time.Minute, want{"views_1d": num(2)}},
		{day - time.Second, want{"views_1d": num(2)}},
		{day, want{"views_1d": num(1)}},
		{day + 15*time.Minute, want{"views_1d": num(0)}},
		// One 7.5-hour bucket later, the 30-day boundary purchase and the
		// one a second older (same bucket) slide out.
		{7*time.Hour + 30*time.Minute, want{"purchases_30d": num(2), "spend_90d": num(1 + 16 + 32 + 4 + 8)}},
		// One 22.5-hour bucket later, the 90-day boundary purchase is out.
		{22*time.Hour + 30*time.Minute, want{"spend_90d": num(16 + 32 + 4 + 8)}},
		{30 * day, want{"purchases_30d": num(1), "spend_90d": num(16 + 32 + 4 + 8)}},
		{365 * day, want{"purchases_30d": num(0), "spend_90d": num(0), "views_1d": num(0), "purchases": num(6), "spend": num(63)}},
	}
	for _, tt := range tests {
		s.check(t, fmt.Sprintf("at Now+%v", tt.at), r, Now.Add(tt.at), tt.want)
	}
}

func (s *suite) resetOn(t *testing.T) {
	st := s.openStore(t)
	steps := []struct {
		name   string
		events []featurestore.Event
		want   float64
	}{
		{"three adds", []featurestore.Event{ev("c-1", "cart_add", -3*time.Hour, nil), ev("c-1", "cart_add", -2*time.Hour, nil), ev("c-1", "cart_add", -2*time.Hour, nil)}, 3},
		{"purchase resets", []featurestore.Event{ev("c-1", "purchase", -time.Hour, map[string]any{"amount": 10.0})}, 0},
		{"add after reset", []featurestore.Event{ev("c-1", "cart_add", -30*time.Minute, nil)}, 1},
		{"late add from before the reset is ignored", []featurestore.Event{ev("c-1", "cart_add", -90*time.Minute, nil)}, 1},
		{"reset and add in one call", []featurestore.Event{ev("c-1", "purchase", -20*time.Minute, nil), ev("c-1", "cart_add", -10*time.Minute, nil), ev("c-1", "cart_add", -5*time.Minute, nil)}, 2},
	}
	for _, step := range steps {
		s.events(t, st, step.events...)
		s.check(t, step.name, load(t, st, "c-1"), Now, want{"cart_items": num(step.want)})
	}
}

func (s *suite) lastOutOfOrder(t *testing.T) {
	st := s.openStore(t)
	view := func(d time.Duration, cat string) featurestore.Event {
		return ev("c-1", "product_view", d, map[string]any{"category": cat})
	}
	steps := []struct {
		name   string
		events []featurestore.Event
		want   want
	}{
		{"first", []featurestore.Event{view(-2*time.Hour, "shoes"), ev("c-1", "purchase", -2*time.Hour, nil)},
			want{"last_category": str("shoes"), "last_purchase_at": at(-2 * time.Hour)}},
		{"older arrives late", []featurestore.Event{view(-3*time.Hour, "hats"), ev("c-1", "purchase", -3*time.Hour, nil)},
			want{"last_category": str("shoes"), "last_purchase_at": at(-2 * time.Hour)}},
		{"newer", []featurestore.Event{view(-time.Hour, "bags"), ev("c-1", "purchase", -time.Hour, nil)},
			want{"last_category": str("bags"), "last_purchase_at": at(-time.Hour)}},
		{"out of order in one call", []featurestore.Event{view(-10*time.Minute, "coats"), view(-20*time.Minute, "socks")},
			want{"last_category": str("coats"), "last_purchase_at": at(-time.Hour)}},
	}
	for _, step := range steps {
		s.events(t, st, step.events...)
		s.check(t, step.name, load(t, st, "c-1"), Now, step.want)
	}
}

// appendInterest is a mutation that appends x to the interests list, so
// the order in which a store applies mutations shows in the result.
func appendInterest(id, x string) featurestore.Mutation {
	return featurestore.Mutation{CustomerID: id, Apply: func(r *featurestore.Record) bool {
		old := r.Attrs["interests"].List
		l := append(append(make([]string, 0, len(old)+1), old...), x)
		r.SetAttr("interests", featurestore.List(l))
		return true
	}}
}

func (s *suite) severalMutations(t *testing.T) {
	st := s.openStore(t)
	cart := featurestore.EventMutations(s.schema, []featurestore.Event{ev("c-1", "cart_add", 0, nil)}, Now)[0]
	muts := []featurestore.Mutation{
		featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": str("a")}),
		appendInterest("c-1", "x0"),
		cart,
		appendInterest("c-1", "x1"),
		featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": str("b")}),
		cart,
		appendInterest("c-1", "x2"),
	}
	w := want{"tier": str("b"), "cart_items": num(2), "interests": featurestore.List([]string{"x0", "x1", "x2"})}
	recs := mutate(t, st, muts)
	// Every mutation's record is the customer's record after the call.
	for i, r := range recs {
		s.check(t, fmt.Sprintf("Mutate result %d", i), r, Now, w)
	}
	s.check(t, "Load", load(t, st, "c-1"), Now, w)
}

func (s *suite) multiCustomer(t *testing.T) {
	st := s.openStore(t)
	events := featurestore.EventMutations(s.schema, []featurestore.Event{
		ev("c-2", "cart_add", 0, nil),
		ev("c-1", "cart_add", 0, nil),
		ev("c-2", "cart_add", 0, nil),
	}, Now) // one mutation per customer: c-2, then c-1
	muts := []featurestore.Mutation{
		featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": str("gold")}),
		events[0],
		appendInterest("c-3", "x"),
		events[1],
		featurestore.AttrsMutation("c-2", map[string]featurestore.Value{"tier": str("silver")}),
	}
	wants := map[string]want{
		"c-1": {"tier": str("gold"), "cart_items": num(1)},
		"c-2": {"tier": str("silver"), "cart_items": num(2)},
		"c-3": {"tier": str("none"), "interests": featurestore.List([]string{"x"})},
	}
	recs := mutate(t, st, muts)
	for i, m := range muts {
		s.check(t, fmt.Sprintf("Mutate result %d (%s)", i, m.CustomerID), recs[i], Now, wants[m.CustomerID])
	}
	for _, id := range []string{"c-1", "c-2", "c-3"} {
		s.check(t, "Load "+id, load(t, st, id), Now, wants[id])
	}
}

func (s *suite) unchanged(t *testing.T) {
	st := s.openStore(t)
	calls := 0
	noop := featurestore.Mutation{CustomerID: "ghost", Apply: func(r *featurestore.Record) bool { calls++; return false }}
	recs := mutate(t, st, []featurestore.Mutation{noop})
	if calls == 0 {
		t.Error("Apply was not called")
	}
	if recs[0] == nil {
		t.Error("Mutate returned a nil record for an unknown customer")
	}
	if r, err := st.Load(context.Background(), "ghost"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load after an unchanging mutation = %v, %v; want ErrNotFound", r, err)
	}
}

func (s *suite) duplicateEventIDs(t *testing.T) {
	st := s.openStore(t)
	e := ev("c-1", "cart_add", 0, nil)
	e.ID = "e-1"
	s.events(t, st, e, e)
	s.events(t, st, e)
	e.ID = "e-2"
	s.events(t, st, e)
	s.check(t, "after retries", load(t, st, "c-1"), Now, want{"cart_items": num(2)})
}

// applyAt applies evs at now through st and returns which took effect.
func (s *suite) applyAt(t *testing.T, st Store, now time.Time, evs ...featurestore.Event) []bool {
	t.Helper()
	applied := make([]bool, len(evs))
	mutate(t, st, featurestore.EventMutationsApplied(s.schema, evs, now, applied))
	return applied
}

// dedupeWindow: an id deduplicates its retries for the store's window and
// no longer once its entry has expired; other ids are applied.
func (s *suite) dedupeWindow(t *testing.T) {
	const window = time.Hour
	c := &clock{t: Now}
	st := s.open(t, Options{Now: c.now, DedupeWindow: window})
	withID := func(id string) featurestore.Event {
		e := ev("c-1", "cart_add", 0, nil)
		e.ID = id
		return e
	}
	steps := []struct {
		name    string
		advance time.Duration // before the step
		events  []featurestore.Event
		applied []bool
		cart    float64
	}{
		{"first", 0, []featurestore.Event{withID("e-1")}, []bool{true}, 1},
		{"retry inside the window", window - time.Minute, []featurestore.Event{withID("e-1")}, []bool{false}, 1},
		{"another id", 0, []featurestore.Event{withID("e-2"), withID("e-1")}, []bool{true, false}, 2},
		// e-1 was applied one window ago: its entry has expired.
		{"retry once expired", time.Minute, []featurestore.Event{withID("e-1"), withID("e-2")}, []bool{true, false}, 3},
		{"retry of the renewed id", window - time.Millisecond, []featurestore.Event{withID("e-1")}, []bool{false}, 3},
	}
	for _, step := range steps {
		c.add(step.advance)
		applied := s.applyAt(t, st, Now, step.events...)
		if !slices.Equal(applied, step.applied) {
			t.Errorf("%s: applied %v, want %v", step.name, applied, step.applied)
		}
		s.check(t, step.name, load(t, st, "c-1"), Now, want{"cart_items": num(step.cart)})
	}
}

// dedupeWithoutRecord: the id of an event that changes no feature is
// remembered too, without creating a record for an unknown customer; one
// call mixing customers dedupes each on its own.
func (s *suite) dedupeWithoutRecord(t *testing.T) {
	st := s.openStore(t)
	visit := ev("ghost", "page_view", 0, nil)
	visit.ID = "v-1"
	if got := s.applyAt(t, st, Now, visit); !got[0] {
		t.Errorf("first visit: applied %v, want true", got)
	}
	if r, err := st.Load(context.Background(), "ghost"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load after an event that changes nothing = %v, %v; want ErrNotFound", r, err)
	}
	cart := ev("c-1", "cart_add", 0, nil)
	cart.ID = "v-1" // the same id for another customer is another event
	if got, want := s.applyAt(t, st, Now, visit, cart, cart), []bool{false, true, false}; !slices.Equal(got, want) {
		t.Errorf("mixed call: applied %v, want %v", got, want)
	}
	s.check(t, "c-1", load(t, st, "c-1"), Now, want{"cart_items": num(1)})
}

// concurrentRetries: the same event sent by many clients at once is
// applied exactly once.
func (s *suite) concurrentRetries(t *testing.T) {
	st := s.openStore(t)
	const n = 50
	e := ev("c-1", "cart_add", 0, nil)
	e.ID = "e-1"
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			a := make([]bool, 1)
			if _, err := st.Mutate(context.Background(), featurestore.EventMutationsApplied(s.schema, []featurestore.Event{e}, Now, a)); err != nil {
				errs <- err
				return
			}
			if a[0] {
				mu.Lock()
				applied++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Mutate: %v", err)
	}
	if applied != 1 {
		t.Errorf("%d of %d concurrent sends applied, want 1", applied, n)
	}
	s.check(t, "c-1", load(t, st, "c-1"), Now, want{"cart_items": num(1)})
}

// contactHistory: outcome events land in the customer's contact history,
// oldest first, across channels, once per event id, next to the features.
func (s *suite) contactHistory(t *testing.T) {
	st := s.openStore(t)
	outcome := func(typ, offer, ch string, d time.Duration) featurestore.Event {
		e := ev("c-1", typ, d, nil)
		e.OfferID, e.Channel = offer, ch
		return e
	}
	click := outcome("click", "promo", "app", -time.Minute)
	click.ID = "click-1"
	s.events(t, st, outcome("impression", "promo", "web", -time.Hour), ev("c-1", "cart_add", 0, nil))
	s.events(t, st, click, outcome("impression", "promo", "call_center", -2*time.Hour))
	s.events(t, st, click)
	r := load(t, st, "c-1")
	contacts := []featurestore.Contact{
		{OfferID: "promo", Channel: "call_center", Kind: featurestore.Impression, At: Now.Add(-2 * time.Hour).UnixNano()},
		{OfferID: "promo", Channel: "web", Kind: featurestore.Impression, At: Now.Add(-time.Hour).UnixNano()},
		{OfferID: "promo", Channel: "app", Kind: featurestore.Click, At: Now.Add(-time.Minute).UnixNano()},
	}
	if !slices.Equal(r.Contacts, contacts) {
		t.Errorf("contacts %+v\nwant %+v", r.Contacts, contacts)
	}
	s.check(t, "features beside the contacts", r, Now, want{"cart_items": num(1)})
}

func (s *suite) snapshot(t *testing.T) {
	st := s.openStore(t)
	s.events(t, st, ev("c-1", "cart_add", 0, nil))
	before := load(t, st, "c-1")
	s.events(t, st, ev("c-1", "cart_add", 0, nil))
	mutate(t, st, []featurestore.Mutation{featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": str("gold")})})
	s.check(t, "record loaded before the writes", before, Now, want{"cart_items": num(1), "tier": str("none")})
	s.check(t, "Load", load(t, st, "c-1"), Now, want{"cart_items": num(2), "tier": str("gold")})
}

func (s *suite) concurrent(t *testing.T) {
	st := s.openStore(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			e := ev("c-1", "cart_add", 0, nil)
			e.ID = fmt.Sprintf("e-%d", i)
			muts := featurestore.EventMutations(s.schema, []featurestore.Event{e, ev("c-2", "product_view", 0, nil)}, Now)
			if _, err := st.Mutate(context.Background(), muts); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Mutate: %v", err)
	}
	s.check(t, "c-1", load(t, st, "c-1"), Now, want{"cart_items": num(n)})
	s.check(t, "c-2", load(t, st, "c-2"), Now, want{"views_1d": num(n)})
}

// mixedConflicts runs one call over many customers while another node
// (or, for a store no other node shares, another goroutine) writes some
// of them between the call's read and its write. A compare-and-set store
// then retries those customers and not the others, within one call.
// Every mutation must get its own customer's record, with both writes in
// it, and so must a later Load: no customer lost, none taken for unknown.
func (s *suite) mixedConflicts(t *testing.T) {
	st := s.openStore(t)
	other, shared := Store(nil), false
	if sh, ok := st.(Shared); ok {
		other, shared = sh.Peer(t), true
	} else {
		other = st
	}
	const n = 12
	id := func(i int) string { return fmt.Sprintf("c-%d", i) }
	known := func(i int) bool { return i%2 == 0 }       // has a record before the call
	conflicting := func(i int) bool { return i%3 != 0 } // written by the other node during the call
	var before []featurestore.Event
	for i := range n {
		if known(i) {
			before = append(before, ev(id(i), "purchase", -time.Hour, map[string]any{"amount": 10.0}))
		}
	}
	s.events(t, st, before...)

	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		otherErrs  []error
		interfered [n]sync.Once
	)
	interfere := func(i int) {
		write := func() {
			if _, err := other.Mutate(context.Background(), []featurestore.Mutation{appendInterest(id(i), "other")}); err != nil {
				mu.Lock()
				otherErrs = append(otherErrs, fmt.Errorf("%s: %w", id(i), err))
				mu.Unlock()
			}
		}
		if shared {
			write() // another node's locks: it commits before this call writes
		} else {
			wg.Go(write) // waits for this call's locks
		}
	}
	var muts []featurestore.Mutation
	var carts []featurestore.Event
	for i := range n {
		tier := featurestore.AttrsMutation(id(i), map[string]featurestore.Value{"tier": str(fmt.Sprintf("t%d", i))})
		muts = append(muts, featurestore.Mutation{CustomerID: id(i), Apply: func(r *featurestore.Record) bool {
			if conflicting(i) {
				interfered[i].Do(func() { interfere(i) })
			}
			return tier.Apply(r)
		}})
		carts = append(carts, ev(id(i), "cart_add", 0, nil))
	}
	// A second mutation of every customer, later in the call, and one
	// that changes nothing.
	muts = append(muts, featurestore.EventMutations(s.schema, carts, Now)...)
	muts = append(muts, featurestore.Mutation{CustomerID: "ghost", Apply: func(*featurestore.Record) bool { return false }})

	recs := mutate(t, st, muts)
	wg.Wait()
	for _, err := range otherErrs {
		t.Errorf("the other writer: %v", err)
	}
	wants := func(i int, afterOther bool) want {
		w := want{"tier": str(fmt.Sprintf("t%d", i)), "cart_items": num(1), "purchases": num(0), "interests": featurestore.List(nil)}
		if known(i) {
			w["purchases"] = num(1)
		}
		if conflicting(i) && afterOther {
			w["interests"] = featurestore.List([]string{"other"})
		}
		return w
	}
	for j, m := range muts[:2*n] {
		i := j % n
		if m.CustomerID != id(i) {
			t.Fatalf("mutation %d is of %s, want %s", j, m.CustomerID, id(i))
		}
		// Another node's write is committed before this call's, so the
		// call's record holds it; a goroutine's may come after.
		s.check(t, fmt.Sprintf("Mutate result %d (%s)", j, m.CustomerID), recs[j], Now, wants(i, shared))
	}
	for i := range n {
		s.check(t, "Load "+id(i), load(t, st, id(i)), Now, wants(i, true))
	}
	if r, err := st.Load(context.Background(), "ghost"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load(ghost) after an unchanging mutation = %v, %v; want ErrNotFound", r, err)
	}
}

// bulk: one call of a bulk import's size (a profile and the historical
// events of each of many customers, as nextbest.Service.Import writes a
// batch) applies every customer's mutations whole; run again, as a
// re-import is, it overwrites the profiles and applies none of the
// events with an id again.
func (s *suite) bulk(t *testing.T) {
	st := s.openStore(t)
	const n = 200
	var muts []featurestore.Mutation
	applied := make([][]bool, n)
	build := func(tier string) {
		muts = muts[:0]
		for i := range n {
			id := fmt.Sprintf("c-%d", i)
			muts = append(muts, featurestore.AttrsMutation(id, map[string]featurestore.Value{"tier": str(tier), "lifetime_value": num(float64(i))}))
			evs := []featurestore.Event{
				ev(id, "purchase", -48*time.Hour, map[string]any{"amount": 10.0}),
				ev(id, "purchase", -24*time.Hour, map[string]any{"amount": float64(i)}),
				ev(id, "cart_add", -time.Hour, nil),
			}
			evs[0].ID, evs[1].ID = id+"-p1", id+"-p2"
			for j := range evs {
				if err := s.schema.CheckEvent(&evs[j]); err != nil {
					t.Fatal(err)
				}
			}
			applied[i] = make([]bool, len(evs))
			muts = append(muts, featurestore.EventMutationsApplied(s.schema, evs, Now, applied[i])...)
		}
	}
	build("gold")
	mutate(t, st, muts)
	for i := range n {
		if !slices.Equal(applied[i], []bool{true, true, true}) {
			t.Fatalf("c-%d: applied %v, want every event", i, applied[i])
		}
		s.check(t, fmt.Sprintf("c-%d", i), load(t, st, fmt.Sprintf("c-%d", i)), Now, want{
			"tier": str("gold"), "lifetime_value": num(float64(i)), "purchases": num(2), "spend": num(10 + float64(i)),
			"cart_items": num(1), "last_purchase_at": at(-24 * time.Hour),
		})
	}

	build("silver")
	mutate(t, st, muts)
	for i := range n {
		// The purchases carry ids: not applied again. The cart_add has
		// none: applied again.
		if !slices.Equal(applied[i], []bool{false, false, true}) {
			t.Fatalf("c-%d re-imported: applied %v, want only the event without an id", i, applied[i])
		}
		s.check(t, fmt.Sprintf("c-%d again", i), load(t, st, fmt.Sprintf("c-%d", i)), Now, want{
			"tier": str("silver"), "purchases": num(2), "spend": num(10 + float64(i)), "cart_items": num(2),
		})
	}
}

// LegacyRecord returns a record as codec version 2 wrote it, with no
// attributes, aggregations or contacts and the event ids seen inside it,
// for backends to test that they move such ids to their dedupe key space.
func LegacyRecord(seen ...featurestore.SeenEvent) []byte {
	b := []byte{2, 0, 0} // version, no attributes, no aggregations
	b = binary.AppendUvarint(b, uint64(len(seen)))
	prev := int64(0)
	for _, s := range seen {
		b = binary.AppendUvarint(b, uint64(len(s.ID)))
		b = append(b, s.ID...)
		b = binary.AppendVarint(b, s.At-prev)
		prev = s.At
	}
	return append(b, 0) // no contacts
}

// categoryIs is a where filter: the event's category property is c.
type categoryIs string

func (c categoryIs) Match(ev *featurestore.Event) bool { return ev.Properties["category"] == string(c) }

// keyedOpsAndWhere: top, distinct and a where-filtered count, stored and
// read back through the backend's encoding, read as the model computes
// them (the aggregation is featurestore's, whatever stores it).
func (s *suite) keyedOpsAndWhere(t *testing.T) {
	schema, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "outdoor_views_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpCount, Window: 30 * 24 * time.Hour, Where: categoryIs("outdoor")}},
		{Name: "favorite_category", Type: featurestore.TypeString, Default: featurestore.String("none"), From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpTop, Field: "category", Window: 30 * 24 * time.Hour}},
		{Name: "channels_used_30d", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "product_view", Op: featurestore.OpDistinct, Field: featurestore.FieldChannel, Window: 30 * 24 * time.Hour}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := s.openStore(t)
	view := func(ch, cat string, d time.Duration) featurestore.Event {
		return featurestore.Event{CustomerID: "k-1", Type: "product_view", Channel: ch, Time: Now.Add(d), Properties: map[string]any{"category": cat}}
	}
	evs := []featurestore.Event{
		view("web", "outdoor", -40*24*time.Hour), view("web", "outdoor", -2*24*time.Hour),
		view("app", "outdoor", -time.Hour), view("email", "shoes", -time.Minute), view("web", "shoes", 0),
	}
	// In two calls, so the second folds into the stored state.
	mutate(t, st, featurestore.EventMutations(schema, evs[:2], Now))
	mutate(t, st, featurestore.EventMutations(schema, evs[2:], Now))
	r := load(t, st, "k-1")
	want := map[string]featurestore.Value{
		"outdoor_views_30d": featurestore.Number(2), "favorite_category": featurestore.String("outdoor"), "channels_used_30d": featurestore.Number(3),
	}
	got := r.Features(schema, Now, nil)
	var v featurestore.View
	packed, _ := v.Read(r.Pack(), schema, Now)
	for name, w := range want {
		f, _ := schema.Lookup(name)
		if !got[f.Index].Equal(w) || !packed[f.Index].Equal(w) {
			t.Errorf("%s = %v (packed %v), want %v", name, got[f.Index], packed[f.Index], w)
		}
	}
}
