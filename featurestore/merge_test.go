package featurestore_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// TestMergeAsOneCustomer checks Record.Merge against its meaning: the
// event features of two records merged are those of one record that got
// every event of both, in time order (counts and sums added, windows
// bucket by bucket, the newest last value, resets applied across both).
func TestMergeAsOneCustomer(t *testing.T) {
	s := testSchema(t)
	view := func(d time.Duration, c string) featurestore.Event {
		return event("product_view", d, category(c))
	}
	buy := func(d time.Duration, a float64) featurestore.Event { return event("purchase", d, amount(a)) }
	cart := func(d time.Duration) featurestore.Event { return event("cart_add", d, nil) }
	tests := []struct {
		name        string
		known, anon []featurestore.Event
	}{
		{"anonymous only", nil, []featurestore.Event{view(-time.Minute, "outdoor"), view(-2*time.Minute, "shoes"), view(-3*time.Minute, "outdoor")}},
		{"known only", []featurestore.Event{buy(-2*day, 30), view(-time.Hour/2, "books")}, nil},
		{"counts and sums add up", []featurestore.Event{buy(-40*day, 10), buy(-2*day, 30)}, []featurestore.Event{buy(-100*day, 99), buy(-day, 5), buy(-10*time.Minute, 7)}},
		{"windows bucket by bucket", []featurestore.Event{view(-23*time.Hour, "a"), view(-30*time.Minute, "b"), view(-2*day, "c")}, []featurestore.Event{view(-23*time.Hour, "d"), view(-5*time.Minute, "e"), view(-25*time.Hour, "f")}},
		{"last by time: the anonymous value is newer", []featurestore.Event{view(-time.Hour, "known")}, []featurestore.Event{view(-time.Minute, "anon")}},
		{"last by time: the known value is newer", []featurestore.Event{view(-time.Minute, "known")}, []featurestore.Event{view(-time.Hour, "anon")}},
		{"the known customer's reset drops older anonymous counts", []featurestore.Event{cart(-3 * time.Hour), buy(-2*time.Hour, 1), cart(-time.Hour)}, []featurestore.Event{cart(-4 * time.Hour), cart(-150 * time.Minute), cart(-30 * time.Minute)}},
		{"the anonymous reset drops older known counts", []featurestore.Event{cart(-5 * time.Hour), cart(-10 * time.Minute)}, []featurestore.Event{cart(-3 * time.Hour), event("cart_clear", -time.Hour, nil), cart(-20 * time.Minute)}},
		{"a reset after every count", []featurestore.Event{cart(-5 * time.Hour)}, []featurestore.Event{cart(-3 * time.Hour), buy(-time.Minute, 3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known, anon, one := &featurestore.Record{}, &featurestore.Record{}, &featurestore.Record{}
			apply(t, s, known, now, tt.known...)
			apply(t, s, anon, now, tt.anon...)
			all := append(slices.Clone(tt.known), tt.anon...)
			slices.SortStableFunc(all, func(a, b featurestore.Event) int { return a.Time.Compare(b.Time) })
			apply(t, s, one, now, all...)
			before := anon.Clone()

			changed := known.Merge(s, anon, now)
			if want := len(tt.anon) > 0; changed != want {
				t.Errorf("Merge changed = %v, want %v", changed, want)
			}
			for _, at := range []time.Time{now, now.Add(12 * time.Hour), now.Add(40 * day)} {
				got, want := known.Features(s, at, nil), one.Features(s, at, nil)
				for _, f := range s.Features() {
					if f.From != nil && !got[f.Index].Equal(want[f.Index]) {
						t.Errorf("at now+%v: %s = %v, want %v (as one customer)", at.Sub(now), f.Name, got[f.Index], want[f.Index])
					}
				}
			}
			// What is merged away is left alone, and merging is stable
			// through the codec.
			if got, want := anon.Features(s, now, nil), before.Features(s, now, nil); !slices.EqualFunc(got, want, featurestore.Value.Equal) {
				t.Errorf("Merge changed its source: %v, was %v", got, want)
			}
			decoded, err := featurestore.UnmarshalRecord(featurestore.AppendRecord(nil, known))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := decoded.Features(s, now, nil), known.Features(s, now, nil); !slices.EqualFunc(got, want, featurestore.Value.Equal) {
				t.Errorf("after the codec: %v, want %v", got, want)
			}
		})
	}
}

// TestMergeAttrs: the known customer's profile attributes win; the
// anonymous id's fill those the known customer lacks.
func TestMergeAttrs(t *testing.T) {
	s := testSchema(t)
	known := &featurestore.Record{}
	known.SetAttr("tier", featurestore.String("gold"))
	anon := &featurestore.Record{}
	anon.SetAttr("tier", featurestore.String("none"))
	anon.SetAttr("lifetime_value", featurestore.Number(12))
	anon.SetAttr("undeclared", featurestore.Bool(true))
	known.Merge(s, anon, now)
	tests := []struct {
		name string
		want featurestore.Value
	}{
		{"tier", featurestore.String("gold")},
		{"lifetime_value", featurestore.Number(12)},
		{"undeclared", featurestore.Bool(true)},
	}
	for _, tt := range tests {
		if got := known.Attrs[tt.name]; !got.Equal(tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestMergeUndeclaredAggregate: the state of a feature the catalog no
// longer declares is kept: the known customer's when both have it.
func TestMergeUndeclaredAggregate(t *testing.T) {
	s := testSchema(t)
	known := &featurestore.Record{Aggs: map[string]*featurestore.AggState{"old": {Total: 1}}}
	anon := &featurestore.Record{Aggs: map[string]*featurestore.AggState{"old": {Total: 5}, "older": {Total: 7}}}
	known.Merge(s, anon, now)
	for name, want := range map[string]float64{"old": 1, "older": 7} {
		if got := known.Aggs[name].Total; got != want {
			t.Errorf("%s: Total = %v, want %v", name, got, want)
		}
	}
}

// TestMergeContacts: contact histories merge in time order, within the
// retention and MaxContacts, so caps count both.
func TestMergeContacts(t *testing.T) {
	s := testSchema(t)
	s.ContactRetention = 7 * day
	c := func(offer string, d time.Duration) featurestore.Contact {
		return featurestore.Contact{OfferID: offer, Channel: "web", Kind: featurestore.Impression, At: now.Add(d).UnixNano()}
	}
	known := &featurestore.Record{Contacts: []featurestore.Contact{c("a", -3*time.Hour), c("b", -time.Hour)}}
	anon := &featurestore.Record{Contacts: []featurestore.Contact{c("x", -8*day), c("y", -2*time.Hour), c("z", -time.Minute)}}
	known.Merge(s, anon, now)
	want := []featurestore.Contact{c("a", -3*time.Hour), c("y", -2*time.Hour), c("b", -time.Hour), c("z", -time.Minute)}
	if !slices.Equal(known.Contacts, want) {
		t.Errorf("contacts = %v, want %v", known.Contacts, want)
	}

	// Bounded by MaxContacts: the newest are kept.
	big := &featurestore.Record{}
	many := &featurestore.Record{}
	for i := range featurestore.MaxContacts {
		big.Contacts = append(big.Contacts, c("k", time.Duration(-2*featurestore.MaxContacts+2*i)*time.Second))
		many.Contacts = append(many.Contacts, c("m", time.Duration(-2*featurestore.MaxContacts+2*i+1)*time.Second))
	}
	big.Merge(s, many, now)
	if n := len(big.Contacts); n != featurestore.MaxContacts {
		t.Fatalf("%d contacts, want %d", n, featurestore.MaxContacts)
	}
	if first, last := big.Contacts[0], big.Contacts[len(big.Contacts)-1]; first.At != now.Add(-featurestore.MaxContacts*time.Second).UnixNano() || last.OfferID != "m" {
		t.Errorf("kept %v … %v, want the newest %d", first, last, featurestore.MaxContacts)
	}
}

// TestMergeNothing: merging an empty or missing record changes nothing.
func TestMergeNothing(t *testing.T) {
	s := testSchema(t)
	known := &featurestore.Record{}
	known.SetAttr("tier", featurestore.String("gold"))
	for _, from := range []*featurestore.Record{nil, {}} {
		if known.Merge(s, from, now) {
			t.Errorf("Merge(%v) changed the record", from)
		}
	}
}

// TestAliasError: an alias is, to a caller unaware of aliases, an
// unknown customer.
func TestAliasError(t *testing.T) {
	var err error = featurestore.NewAliasError("anon-1", "c-1")
	if !errors.Is(err, featurestore.ErrNotFound) {
		t.Error("an AliasError is not ErrNotFound")
	}
	var ae *featurestore.AliasError
	if !errors.As(err, &ae) {
		t.Fatal("errors.As failed")
	}
	if got, ok := ae.Target("anon-1"); !ok || got != "c-1" {
		t.Errorf("Target = %q, %v", got, ok)
	}
	if got, want := err.Error(), `featurestore: customer "anon-1" was merged into "c-1"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAsAliasError(t *testing.T) {
	e := featurestore.NewAliasError("a", "b")
	tests := []struct {
		err  error
		want *featurestore.AliasError
	}{
		{nil, nil},
		{featurestore.ErrNotFound, nil},
		{e, e},
		{fmt.Errorf("load: %w", e), e},
	}
	for _, tt := range tests {
		if got := featurestore.AsAliasError(tt.err); got != tt.want {
			t.Errorf("AsAliasError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
