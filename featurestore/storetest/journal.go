package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
)

// JournalStore is a Store that keeps customers' timelines and can list
// their event ids and delete everything it keeps about a customer (issue
// 13, points 3 and 7).
type JournalStore interface {
	Store
	Timeline(ctx context.Context, id string, limit int) ([]featurestore.TimelineEntry, error)
	EventIDs(ctx context.Context, id string) ([]string, error)
	Delete(ctx context.Context, id string) error
}

// RunJournal runs the contract suite of timelines, event ids and
// deletion. open returns a new, empty store for one subtest, configured
// with opts (TimelineLength included), and arranges its cleanup.
func RunJournal(t *testing.T, open func(t *testing.T, opts Options) JournalStore) {
	j := &journal{schema: Schema(), open: open}
	t.Run("TimelineAcrossChannels", j.acrossChannels)
	t.Run("TimelineRetriesOnce", j.retriesOnce)
	t.Run("TimelineProfileChanges", j.profileChanges)
	t.Run("TimelineBounded", j.bounded)
	t.Run("TimelineLargeProperties", j.largeProperties)
	t.Run("TimelineOff", j.off)
	t.Run("EventIDs", j.eventIDs)
	t.Run("Delete", j.delete)
}

type journal struct {
	schema *featurestore.Schema
	open   func(t *testing.T, opts Options) JournalStore
}

func (j *journal) openStore(t *testing.T, length int) JournalStore {
	return j.open(t, Options{Now: func() time.Time { return Now }, TimelineLength: length})
}

func (j *journal) events(t *testing.T, st Store, evs ...featurestore.Event) {
	t.Helper()
	for i := range evs {
		if err := j.schema.CheckEvent(&evs[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	recs, err := st.Mutate(context.Background(), featurestore.JournaledEventMutations(j.schema, evs, Now, nil))
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	for i, r := range recs {
		if r == nil {
			t.Fatalf("Mutate returned a nil record for mutation %d", i)
		}
	}
}

func timeline(t *testing.T, st JournalStore, id string, limit int) []featurestore.TimelineEntry {
	t.Helper()
	got, err := st.Timeline(context.Background(), id, limit)
	if err != nil {
		t.Fatalf("Timeline(%q, %d): %v", id, limit, err)
	}
	return got
}

// summary is an entry as the tests compare it: no Seq (the store's), and
// times relative to Now.
type summary struct {
	At                                 time.Duration
	Kind                               featurestore.TimelineKind
	Type, Channel, Offer, Decision, ID string
	Properties                         map[string]any
	Truncated                          bool
}

func summarise(entries []featurestore.TimelineEntry) []summary {
	out := make([]summary, len(entries))
	for i, e := range entries {
		out[i] = summary{At: time.Duration(e.At - Now.UnixNano()), Kind: e.Kind, Type: e.Type, Channel: e.Channel,
			Offer: e.OfferID, Decision: e.DecisionID, ID: e.EventID, Properties: e.Properties, Truncated: e.Truncated}
	}
	return out
}

func onChannel(id, typ, ch string, d time.Duration, props map[string]any) featurestore.Event {
	e := ev(id, typ, d, props)
	e.Channel = ch
	return e
}

// acrossChannels: the events of every channel, read or not by the schema,
// outcome events with their offer and decision, in one timeline newest
// first by the events' time, whatever the order they arrived in; limit
// gives the newest.
func (j *journal) acrossChannels(t *testing.T) {
	st := j.openStore(t, 0)
	shown := onChannel("c-1", "impression", "email", -50*time.Minute, nil)
	shown.OfferID, shown.DecisionID, shown.ID = "promo", "d-1", "d-1:promo"
	j.events(t, st,
		onChannel("c-1", "product_view", "web", -time.Hour, map[string]any{"category": "shoes"}),
		shown,
		onChannel("c-1", "call", "call_center", -10*time.Minute, map[string]any{"reason": "billing"}), // nothing reads it
	)
	j.events(t, st,
		onChannel("c-1", "cart_add", "app", -30*time.Minute, nil), // late: between the others
		onChannel("c-10", "product_view", "web", 0, nil),          // another customer, whose key starts alike
	)
	want := []summary{
		{At: -10 * time.Minute, Kind: featurestore.TimelineEvent, Type: "call", Channel: "call_center", Properties: map[string]any{"reason": "billing"}},
		{At: -30 * time.Minute, Kind: featurestore.TimelineEvent, Type: "cart_add", Channel: "app"},
		{At: -50 * time.Minute, Kind: featurestore.TimelineEvent, Type: "impression", Channel: "email", Offer: "promo", Decision: "d-1", ID: "d-1:promo"},
		{At: -time.Hour, Kind: featurestore.TimelineEvent, Type: "product_view", Channel: "web", Properties: map[string]any{"category": "shoes"}},
	}
	if d := cmp.Diff(want, summarise(timeline(t, st, "c-1", 0))); d != "" {
		t.Errorf("timeline (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want[:2], summarise(timeline(t, st, "c-1", 2))); d != "" {
		t.Errorf("timeline, limit 2 (-want +got):\n%s", d)
	}
	if got := timeline(t, st, "c-10", 0); len(got) != 1 {
		t.Errorf("c-10 has %d entries, want its 1", len(got))
	}
	if got := timeline(t, st, "nobody", 10); len(got) != 0 {
		t.Errorf("an unknown customer has %d entries, want none", len(got))
	}
	// The record is what it was: the timeline is beside it.
	if _, err := st.Load(context.Background(), "c-1"); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

// retriesOnce: an event retried under its id is on the timeline once; an
// event without an id each time it is sent.
func (j *journal) retriesOnce(t *testing.T) {
	st := j.openStore(t, 0)
	e := onChannel("c-1", "cart_add", "web", -time.Minute, nil)
	e.ID = "e-1"
	j.events(t, st, e)
	j.events(t, st, e, e)
	if got := timeline(t, st, "c-1", 0); len(got) != 1 {
		t.Errorf("an event sent three times under one id: %d entries, want 1", len(got))
	}
	e.ID = ""
	j.events(t, st, e)
	j.events(t, st, e)
	if got := timeline(t, st, "c-1", 0); len(got) != 3 {
		t.Errorf("twice without an id: %d entries, want 3", len(got))
	}
}

// profileChanges: a profile update is an entry naming the attributes it
// changed, at its time; one that changes nothing is none.
func (j *journal) profileChanges(t *testing.T) {
	st := j.openStore(t, 0)
	set := func(at time.Duration, attrs map[string]featurestore.Value) {
		t.Helper()
		if _, err := st.Mutate(context.Background(), []featurestore.Mutation{featurestore.ProfileMutation("c-1", attrs, Now.Add(at))}); err != nil {
			t.Fatal(err)
		}
	}
	set(-2*time.Hour, map[string]featurestore.Value{"tier": str("gold"), "lifetime_value": num(10)})
	set(-time.Hour, map[string]featurestore.Value{"tier": str("gold"), "lifetime_value": num(12)})
	set(-time.Minute, map[string]featurestore.Value{"tier": str("gold")})
	want := []summary{
		{At: -time.Hour, Kind: featurestore.TimelineProfile, Type: featurestore.ProfileChange, Properties: map[string]any{"lifetime_value": 12.0}},
		{At: -2 * time.Hour, Kind: featurestore.TimelineProfile, Type: featurestore.ProfileChange, Properties: map[string]any{"tier": "gold", "lifetime_value": 10.0}},
	}
	if d := cmp.Diff(want, summarise(timeline(t, st, "c-1", 0))); d != "" {
		t.Errorf("timeline (-want +got):\n%s", d)
	}
}

// bounded: a store keeps the newest TimelineLength entries (and at most a
// quarter more until it trims), whatever the order they arrive in, one
// by one or many in one call.
func (j *journal) bounded(t *testing.T) {
	const length = 8
	st := j.openStore(t, length)
	var all []time.Duration
	for i := range 30 {
		// Out of order: every third event is older than all before it.
		d := time.Duration(i) * time.Minute
		if i%3 == 2 {
			d = -time.Duration(i) * time.Hour
		}
		all = append(all, d)
		j.events(t, st, onChannel("c-1", "cart_add", "web", d, nil))
	}
	var batch []featurestore.Event
	for i := range 12 {
		d := time.Duration(30+i) * time.Minute
		all = append(all, d)
		batch = append(batch, onChannel("c-1", "cart_add", "web", d, nil))
	}
	j.events(t, st, batch...)
	slices.Sort(all)
	slices.Reverse(all)
	got := summarise(timeline(t, st, "c-1", length))
	var times []time.Duration
	for _, e := range got {
		times = append(times, e.At)
	}
	if !slices.Equal(times, all[:length]) {
		t.Errorf("newest %d: %v, want %v", length, times, all[:length])
	}
	if n := len(timeline(t, st, "c-1", 0)); n < length || n > length+length/4 {
		t.Errorf("%d entries kept, want %d to %d", n, length, length+length/4)
	}
}

// largeProperties: an event whose properties are too large is on the
// timeline without them.
func (j *journal) largeProperties(t *testing.T) {
	st := j.openStore(t, 0)
	j.events(t, st, onChannel("c-1", "note", "call_center", 0, map[string]any{"text": strings.Repeat("x", featurestore.MaxTimelineProperties)}))
	got := timeline(t, st, "c-1", 0)
	if len(got) != 1 || !got[0].Truncated || got[0].Properties != nil {
		t.Errorf("got %+v, want one entry marked truncated, without properties", got)
	}
}

// off: a store keeping no timeline (negative TimelineLength) writes none.
func (j *journal) off(t *testing.T) {
	st := j.openStore(t, -1)
	j.events(t, st, onChannel("c-1", "cart_add", "web", 0, nil))
	if got := timeline(t, st, "c-1", 0); len(got) != 0 {
		t.Errorf("%d entries, want none", len(got))
	}
	if _, err := st.Load(context.Background(), "c-1"); err != nil {
		t.Errorf("Load: %v", err)
	}
}

// eventIDs: the ids of a customer's events applied, and no other's.
func (j *journal) eventIDs(t *testing.T) {
	st := j.openStore(t, 0)
	var evs []featurestore.Event
	for _, c := range []struct{ customer, id string }{{"c-1", "a"}, {"c-1", "b:1"}, {"c-10", "c"}, {"c-1", "*"}} {
		e := onChannel(c.customer, "cart_add", "web", 0, nil)
		e.ID = c.id
		evs = append(evs, e)
	}
	j.events(t, st, evs...)
	got, err := st.EventIDs(context.Background(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"*", "a", "b:1"}; !slices.Equal(got, want) {
		t.Errorf("EventIDs(c-1) = %q, want %q", got, want)
	}
	if got, err := st.EventIDs(context.Background(), "nobody"); err != nil || len(got) != 0 {
		t.Errorf("EventIDs(nobody) = %q, %v; want none", got, err)
	}
}

// delete: everything kept about a customer goes (record, timeline, event
// ids, so a retry of one of their events applies again), and nothing of
// another customer's, even one whose id starts alike; deleting twice, or
// a customer never seen, succeeds.
func (j *journal) delete(t *testing.T) {
	st := j.openStore(t, 0)
	ctx := context.Background()
	for _, id := range []string{"c-1", "c-10", "c-"} {
		e := onChannel(id, "cart_add", "web", 0, nil)
		e.ID = "e-" + id
		j.events(t, st, e)
		if _, err := st.Mutate(ctx, []featurestore.Mutation{featurestore.ProfileMutation(id, map[string]featurestore.Value{"tier": str("gold")}, Now)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := st.Delete(ctx, "c-1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if err := st.Delete(ctx, "never-seen"); err != nil {
		t.Fatalf("Delete of an unknown customer: %v", err)
	}
	if r, err := st.Load(ctx, "c-1"); !errors.Is(err, featurestore.ErrNotFound) {
		t.Errorf("Load after Delete = %v, %v; want ErrNotFound", r, err)
	}
	if got := timeline(t, st, "c-1", 0); len(got) != 0 {
		t.Errorf("timeline after Delete: %d entries", len(got))
	}
	if got, err := st.EventIDs(ctx, "c-1"); err != nil || len(got) != 0 {
		t.Errorf("EventIDs after Delete = %q, %v", got, err)
	}
	for _, id := range []string{"c-10", "c-"} {
		if _, err := st.Load(ctx, id); err != nil {
			t.Errorf("Load(%q) after deleting c-1: %v", id, err)
		}
		if got := timeline(t, st, id, 0); len(got) != 2 {
			t.Errorf("timeline of %q after deleting c-1: %d entries, want 2", id, len(got))
		}
		if got, err := st.EventIDs(ctx, id); err != nil || len(got) != 1 {
			t.Errorf("EventIDs(%q) after deleting c-1 = %q, %v", id, got, err)
		}
	}
	// The event ids went too: a retry is a new event, of a new customer.
	e := onChannel("c-1", "cart_add", "web", 0, nil)
	e.ID = "e-c-1"
	j.events(t, st, e)
	r, err := st.Load(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := j.schema.Lookup("cart_items")
	tier, _ := j.schema.Lookup("tier")
	got := r.Features(j.schema, Now, nil)
	if got[f.Index].Num != 1 || got[tier.Index].Str != "none" {
		t.Errorf("after Delete and a retry: cart_items %v, tier %v; want 1 and the default", got[f.Index], got[tier.Index])
	}
}
