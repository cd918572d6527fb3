package nextbest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

const journeyCatalog = `
channels:
  - web
  - name: email
    contact_limit: {max: 2, within: 7d}
    decision_is_impression: true
contact_policy: {max_offers: 5, within: 1d}
groups:
  cards: {caps: [{max: 1, within: 1d}]}
offers:
  - id: sale
    channels: [web, email]
    caps: [{max: 2, within: 7d}, {max: 1, within: 1d, channel: email}]
    suppress_after: {dismiss: 3d}
    content: {web: {h: sale}, email: {s: sale}}
  - id: card
    group: cards
    channels: [web]
    content: {web: {h: card}}
  - id: idle
    channels: [web]
    caps: [{max: 1, within: 1d}]
    content: {web: {h: idle}}
`

func TestContacts(t *testing.T) {
	cat, err := rules.Load("journey.yaml", []byte(journeyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	now := testNow
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	h := []featurestore.Contact{
		{OfferID: "sale", Channel: "web", Kind: featurestore.Impression, At: ago(10 * 24 * time.Hour)}, // out of every window
		{OfferID: "sale", Channel: "email", Kind: featurestore.Impression, At: ago(3 * 24 * time.Hour)},
		{OfferID: "card", Channel: "web", Kind: featurestore.Impression, At: ago(5 * time.Hour)},
		{OfferID: "sale", Channel: "web", Kind: featurestore.Dismiss, At: ago(2 * time.Hour)},
		{OfferID: "sale", Channel: "web", Kind: featurestore.Impression, At: ago(time.Hour)},
	}
	const day = 24 * time.Hour
	want := ContactSummary{
		LastImpressions: []LastImpression{
			{OfferID: "sale", Channel: "web", At: at(time.Hour)},
			{OfferID: "card", Channel: "web", At: at(5 * time.Hour)},
		},
		Suppressions: []ActiveSuppression{{OfferID: "sale", Outcome: featurestore.Dismiss, At: at(2 * time.Hour), Until: at(2*time.Hour - 3*day)}},
		Caps: []CapStatus{
			// Reached: below 2 again once the email impression of 3 days
			// ago leaves the 7-day window.
			{OfferID: "sale", Count: 2, Max: 2, Within: 7 * day, Reached: true, Until: at(3*day - 7*day)},
			{Group: "cards", Count: 1, Max: 1, Within: day, Reached: true, Until: at(5*time.Hour - day)},
		},
		ChannelLimits: []CapStatus{{Channel: "email", Count: 1, Max: 2, Within: 7 * day}},
		Policy:        &CapStatus{Count: 2, Max: 5, Within: day},
	}
	if d := cmp.Diff(want, Contacts(cat, h, now)); d != "" {
		t.Errorf("Contacts (-want +got):\n%s", d)
	}
	if d := cmp.Diff(ContactSummary{ChannelLimits: []CapStatus{{Channel: "email", Max: 2, Within: 7 * day}}, Policy: &CapStatus{Max: 5, Within: day}}, Contacts(cat, nil, now)); d != "" {
		t.Errorf("Contacts of no history (-want +got):\n%s", d)
	}
}

// fakeJournal is a Journal and an Eraser over a fakeStore.
type fakeJournal struct {
	store   *fakeStore
	limits  []int
	deleted []string
	err     error
	calls   atomic.Int64
}

func (j *fakeJournal) Timeline(_ context.Context, id string, limit int) ([]featurestore.TimelineEntry, error) {
	j.limits = append(j.limits, limit)
	return []featurestore.TimelineEntry{{Kind: featurestore.TimelineEvent, Type: "visit"}}, j.err
}

func (j *fakeJournal) EventIDs(context.Context, string) ([]string, error) {
	return []string{"e-1"}, j.err
}

func (j *fakeJournal) Delete(_ context.Context, id string) error {
	j.calls.Add(1)
	if j.err != nil {
		return j.err
	}
	j.store.mu.Lock()
	delete(j.store.recs, id)
	j.store.mu.Unlock()
	j.deleted = append(j.deleted, id)
	return nil
}

func journeyService(t *testing.T, length int) (*Service, *fakeStore, *fakeJournal) {
	t.Helper()
	cat, err := rules.Load("journey.yaml", []byte(journeyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[rules.Catalog]
	cur.Store(cat)
	st := &fakeStore{recs: map[string]*featurestore.Record{}}
	j := &fakeJournal{store: st}
	svc, err := New(Options{Catalog: &cur, Store: st, Journal: j, Eraser: j, TimelineLength: length, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, j
}

func TestTimelineLimit(t *testing.T) {
	svc, _, j := journeyService(t, 20)
	for _, limit := range []int{0, -1, 21} {
		_, err := svc.Timeline(context.Background(), "c-1", limit)
		var re *RequestError
		if !errors.As(err, &re) || re.Field != "limit" {
			t.Errorf("limit %d: %v, want a RequestError on limit", limit, err)
		}
	}
	for _, limit := range []int{1, 20} {
		if _, err := svc.Timeline(context.Background(), "c-1", limit); err != nil {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
	if !cmp.Equal(j.limits, []int{1, 20}) {
		t.Errorf("the store was asked for %v, want [1 20]", j.limits)
	}
	off, _, _ := journeyService(t, -1)
	if _, err := off.Timeline(context.Background(), "c-1", 1); !errors.Is(err, ErrNoTimeline) || off.TimelineLength() != 0 {
		t.Errorf("timelines off: %v, length %d; want ErrNoTimeline, 0", err, off.TimelineLength())
	}
}

// TestJournaledWrites: with a journal, events (even those nothing reads)
// and profile changes carry their timeline entries to the store.
func TestJournaledWrites(t *testing.T) {
	svc, st, _ := journeyService(t, 0)
	var entries []featurestore.TimelineEntry
	journaling := &journalingStore{fakeStore: st, entries: &entries}
	svc.store = journaling
	events := []featurestore.Event{{CustomerID: "c-1", Type: "visit", Channel: "web", Time: testNow}}
	if _, err := svc.ApplyEvents(svc.Catalog(), events, testNow, true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetProfile(context.Background(), "c-1", map[string]featurestore.Value{"x": featurestore.String("y")}); err != nil {
		t.Fatal(err)
	}
	var kinds []featurestore.TimelineKind
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
	}
	if !cmp.Equal(kinds, []featurestore.TimelineKind{featurestore.TimelineEvent, featurestore.TimelineProfile}) {
		t.Errorf("entries written %+v, want the visit and the profile change", entries)
	}
}

type journalingStore struct {
	*fakeStore
	entries *[]featurestore.TimelineEntry
}

func (s *journalingStore) Mutate(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	recs, err := s.fakeStore.Mutate(ctx, muts)
	for _, m := range muts {
		if m.Timeline != nil {
			*s.entries = append(*s.entries, m.Timeline()...)
		}
	}
	return recs, err
}

func TestForgetAndExport(t *testing.T) {
	svc, st, j := journeyService(t, 0)
	ctx := context.Background()
	if _, err := svc.SetProfile(ctx, "c-1", map[string]featurestore.Value{"x": featurestore.String("y")}); err != nil {
		t.Fatal(err)
	}
	x, err := svc.Export(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if !x.Known || x.Attrs["x"].Str != "y" || len(x.Timeline) != 1 || !cmp.Equal(x.EventIDs, []string{"e-1"}) {
		t.Errorf("export %+v", x)
	}
	if err := svc.Forget(ctx, "c-1"); err != nil {
		t.Fatal(err)
	}
	if p, err := svc.Profile(ctx, "c-1"); err != nil || p.Known {
		t.Errorf("after Forget: %+v, %v; want an unknown customer", p, err)
	}
	j.err = errors.New("down")
	if err := svc.Forget(ctx, "c-1"); !errors.Is(err, j.err) {
		t.Errorf("Forget with the store down: %v", err)
	}
	if _, err := svc.Export(ctx, "c-2"); !errors.Is(err, j.err) {
		t.Errorf("Export with the journal down: %v", err)
	}
	_ = st
}
