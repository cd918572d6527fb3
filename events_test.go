package nextbest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// TestCheckEvents: outcome events name an offer and a catalog channel,
// other events no offer; the first refused is named by index and field;
// an impression of a decision gets its one id.
func TestCheckEvents(t *testing.T) {
	cat, err := rules.LoadFile("examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ok := featurestore.Event{CustomerID: "c", Type: "click", OfferID: "winback-20", Channel: "web"}
	tests := []struct {
		name   string
		events []featurestore.Event
		want   *EventError // nil: accepted
	}{
		{"outcomes", []featurestore.Event{ok,
			{CustomerID: "c", Type: "conversion", Channel: "web"},
			{CustomerID: "c", Type: "purchase"}}, nil},
		{"no offer", []featurestore.Event{ok, {CustomerID: "c", Type: "click", Channel: "web"}},
			&EventError{Index: 1, Field: "offer_id", Reason: "required for a click event"}},
		{"unknown offer", []featurestore.Event{{CustomerID: "c", Type: "dismiss", OfferID: "nope", Channel: "web"}},
			&EventError{Field: "offer_id", Reason: `"nope" is not an offer of the catalog`}},
		{"offer on a behaviour event", []featurestore.Event{{CustomerID: "c", Type: "purchase", OfferID: "winback-20"}},
			&EventError{Field: "offer_id", Reason: "only outcome events (impression, click, conversion, dismiss) name an offer"}},
		{"no channel", []featurestore.Event{{CustomerID: "c", Type: "impression", OfferID: "winback-20"}},
			&EventError{Field: "channel", Reason: "an impression event needs the catalog channel it happened on, one of web, app, call_center, email, sms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckEvents(cat, tt.events)
			var got *EventError
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("got %v, want an *EventError", err)
			}
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("got %v, want none", got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	events := []featurestore.Event{
		{CustomerID: "c", Type: "impression", OfferID: "winback-20", Channel: "web", DecisionID: "d1"},
		{CustomerID: "c", Type: "impression", OfferID: "winback-20", Channel: "web", DecisionID: "d1", ID: "mine"},
		{CustomerID: "c", Type: "click", OfferID: "winback-20", Channel: "web", DecisionID: "d1"},
	}
	if err := CheckEvents(cat, events); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{ImpressionID("d1", "winback-20"), "mine", ""} {
		if events[i].ID != want {
			t.Errorf("events[%d].ID: got %q, want %q", i, events[i].ID, want)
		}
	}
}

// TestApplyEventsResult: ApplyEvents says how many events it accepted,
// how many took effect and how many nothing in the catalog reads, each of
// those also passed to the observer. (Retried event ids, which take no
// effect, are the stores' to detect: see featurestore/storetest.)
func TestApplyEventsResult(t *testing.T) {
	var seen []string
	s, _ := newTestService(t, false, func(o *Options) {
		o.Observer.IgnoredEvent = func(typ string) { seen = append(seen, typ) }
	})
	cat := s.catalog.Load()
	ev := func(id, typ string) featurestore.Event {
		return featurestore.Event{ID: id, CustomerID: "dana", Type: typ, Channel: "web", Time: testNow}
	}
	tests := []struct {
		name   string
		events []featurestore.Event
		want   EventsResult
		seen   []string
	}{
		{"read and unread types", []featurestore.Event{ev("e1", "cart_add"), ev("e2", "cart-add"), ev("e3", "page_view_typo")}, EventsResult{Accepted: 3, Applied: 3, Ignored: 2}, []string{"cart-add", "page_view_typo"}},
		{"read types only", []featurestore.Event{ev("e4", "cart_add")}, EventsResult{Accepted: 1, Applied: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			got, err := s.ApplyEvents(cat, tt.events, testNow, true)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ApplyEvents = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(seen, tt.seen) {
				t.Errorf("observer saw ignored types %q, want %q", seen, tt.seen)
			}
		})
	}
}

// syncFailing is a cache tier whose writes are applied but whose wait
// for durability fails with err.
type syncFailing struct {
	cachingStore
	err error
}

func (s syncFailing) MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error) {
	recs, err := s.Mutate(ctx, muts)
	return recs, func() error { return s.err }, err
}

// TestApplyEventsVisible: the events are applied before wait, their
// outcomes credited only once wait has seen them durable, and an fsync
// that fails is wait's error (the caller then acknowledges nothing), for
// the service's observer too.
func TestApplyEventsVisible(t *testing.T) {
	for _, tt := range []struct {
		name    string
		syncErr error
	}{{"durable", nil}, {"fsync fails", errors.New("sync: disk gone")}} {
		t.Run(tt.name, func(t *testing.T) {
			stats := &fakeStats{learned: &featurestore.LearnTable{}}
			var storeErrs []error
			s, store := newTestService(t, false, func(o *Options) {
				c := syncFailing{cachingStore{o.Store.(*fakeStore)}, tt.syncErr}
				o.Store, o.Cache, o.Stats = c, c, stats
				o.Observer.StoreError = func(err error) { storeErrs = append(storeErrs, err) }
			})
			cat := s.catalog.Load()
			events := []featurestore.Event{{CustomerID: "carter", Type: "click", OfferID: "winback-20", Channel: "web", Time: testNow}}
			res, wait, err := s.ApplyEventsVisible(cat, events, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != 1 || store.muts != 1 {
				t.Errorf("before wait: %+v, %d mutations; want the event accepted and applied", res, store.muts)
			}
			if n := stats.added.Load(); n != 0 {
				t.Errorf("%d statistics credited before the write was durable, want 0", n)
			}
			err = wait()
			if !errors.Is(err, tt.syncErr) || (tt.syncErr == nil) != (err == nil) {
				t.Fatalf("wait() = %v, want %v", err, tt.syncErr)
			}
			if credited := stats.added.Load() > 0; credited != (tt.syncErr == nil) {
				t.Errorf("outcome credited %v after wait, want %v", credited, tt.syncErr == nil)
			}
			if got := len(storeErrs); got != map[bool]int{true: 0, false: 1}[tt.syncErr == nil] {
				t.Errorf("observer saw %d store errors (%v)", got, storeErrs)
			}
		})
	}
}
