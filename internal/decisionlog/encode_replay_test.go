package decisionlog

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nextbest/nextbest/featurestore"
)

func testContacts(n int) []featurestore.Contact {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	h := make([]featurestore.Contact, n)
	for i := range h {
		h[i] = featurestore.Contact{OfferID: fmt.Sprintf("offer-%d", i%7), Channel: "web", Kind: featurestore.Outcome(1 + i%4),
			At: now.Add(-time.Duration(n-i) * time.Minute).UnixNano()}
	}
	return h
}

// TestReplayFieldsRoundTrip: the contacts and learned counts an entry
// logs read back as they were, whether set encoded (the decision path)
// or as fields.
func TestReplayFieldsRoundTrip(t *testing.T) {
	h := testContacts(9)
	counts := []featurestore.Counts{{}, {Impressions: 12, Clicks: 3, Conversions: 1, Value: 0.1 + 0.2}, {Decisions: 1 << 40, Dismisses: 2, Value: -1e-9}}
	offers := []string{"a", "b\n", "c"}
	e := &Entry{ID: "d5cvv4c7aibg00cl2a3g", Channel: "web", LearnKey: "vip"}
	e.SetContacts(h)
	e.ContactsOmitted, e.ContactsOmittedAt = 40, h[0].At-1
	e.SetLearned("web", "vip", len(offers), func(i int) (string, featurestore.Counts, *Learned) { return offers[i], counts[i], nil })
	b, err := e.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Entry
	if err := NewReader(bytes.NewReader(b)).Next(&got); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if got.ContactsOmitted != 40 || got.ContactsOmittedAt != h[0].At-1 {
		t.Errorf("read back %d contacts omitted, the last at %d; want 40, %d", got.ContactsOmitted, got.ContactsOmittedAt, h[0].At-1)
	}
	for _, x := range []*Entry{e, &got} {
		gh, err := x.History()
		if err != nil || !reflect.DeepEqual(gh, h) {
			t.Errorf("history %v, %v; want %v", gh, err, h)
		}
		ls, err := x.LoggedLearned()
		if err != nil || len(ls) != len(offers) {
			t.Fatalf("learned %v, %v", ls, err)
		}
		for i, l := range ls {
			if l.Offer != offers[i] || l.Channel != "web" || l.Key != "vip" || l.Counts() != counts[i] {
				t.Errorf("learned %d: %+v, want %s %+v", i, l, offers[i], counts[i])
			}
		}
	}
	// Read back, the fields encode as they were set.
	again, err := got.AppendJSON(nil)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("re-encoded:\n%s\nwant\n%s", again, b)
	}
	bad := Entry{Contacts: []Contact{{Offer: "x", Kind: "hug"}}}
	if _, err := bad.History(); err == nil {
		t.Error("a contact of kind hug reads")
	}
}

// BenchmarkSetContacts is what logging a history of 200 contacts costs
// the decision path (encoded at once) and the writer (copied out).
func BenchmarkSetContacts(b *testing.B) {
	h := testContacts(200)
	var e Entry
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		e.SetContacts(h)
		buf = e.appendReplay(buf[:0])
	}
	b.ReportMetric(float64(len(buf)), "bytes/entry")
}

// FuzzReplayFields: any contact and learned cell a decision logs reads
// back as it was (strings that are valid UTF-8; others, as encoding/json
// does, with U+FFFD).
func FuzzReplayFields(f *testing.F) {
	f.Add("cart-reminder", "web", int64(1781000000000000000), uint8(1), int64(12), 3.5)
	f.Add("a\"\\\n\u2028", "", int64(-1), uint8(4), int64(-7), math.Copysign(0, -1))
	f.Fuzz(func(t *testing.T, offer, channel string, at int64, kind uint8, n int64, value float64) {
		if !utf8.ValidString(offer) || !utf8.ValidString(channel) || math.IsNaN(value) || math.IsInf(value, 0) {
			t.Skip()
		}
		h := []featurestore.Contact{{OfferID: offer, Channel: channel, Kind: featurestore.Outcome(1 + kind%4), At: at}}
		c := featurestore.Counts{Decisions: n, Impressions: n / 2, Clicks: -n, Conversions: 1, Dismisses: n % 3, Value: value}
		e := &Entry{ID: "d5cvv4c7aibg00cl2a3g"}
		e.SetContacts(h)
		e.SetLearned(channel, offer, 1, func(int) (string, featurestore.Counts, *Learned) { return offer, c, nil })
		b, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Entry
		if err := NewReader(bytes.NewReader(b)).Next(&got); err != nil {
			t.Fatalf("%v in %s", err, b)
		}
		gh, err := got.History()
		if err != nil || !reflect.DeepEqual(gh, h) {
			t.Errorf("history %v, %v; want %v", gh, err, h)
		}
		ls, err := got.LoggedLearned()
		if err != nil || len(ls) != 1 || ls[0].Offer != offer || ls[0].Channel != channel || ls[0].Key != offer || ls[0].Counts() != c {
			t.Errorf("learned %+v, %v; want %s %+v", ls, err, offer, c)
		}
	})
}
