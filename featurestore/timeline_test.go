package featurestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTimelineEntryRoundTrip(t *testing.T) {
	tests := []TimelineEntry{
		{At: 1, Seq: 2, Kind: TimelineEvent, Type: "page_view", Channel: "web", Properties: map[string]any{"path": "/", "n": 2.5, "ok": true, "tags": []any{"a"}}},
		{At: -5e18, Seq: 1 << 63, Kind: TimelineEvent, Type: "impression", Channel: "email", OfferID: "o", DecisionID: "d", EventID: "d:o"},
		{At: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixNano(), Kind: TimelineProfile, Type: ProfileChange, Properties: map[string]any{"tier": "gold"}},
		{At: 7, Kind: TimelineEvent, Type: "note", Truncated: true},
	}
	for _, e := range tests {
		body, err := AppendTimelineEntry(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalTimelineEntry(AppendTimelineOrder(nil, e.At, e.Seq), body)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(e, got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
}

func TestTimelineEntryLargeProperties(t *testing.T) {
	e := TimelineEntry{Kind: TimelineEvent, Type: "note", Properties: map[string]any{"text": strings.Repeat("x", MaxTimelineProperties)}}
	body, err := AppendTimelineEntry(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 200 {
		t.Errorf("body of %d bytes: the properties were kept", len(body))
	}
	got, err := UnmarshalTimelineEntry(AppendTimelineOrder(nil, 0, 0), body)
	if err != nil || !got.Truncated || got.Properties != nil {
		t.Errorf("got %+v, %v; want truncated, no properties", got, err)
	}
}

// TestTimelineOrder: the order bytes sort as the entries do, times
// before 1970 first.
func TestTimelineOrder(t *testing.T) {
	order := []struct {
		at  int64
		seq uint64
	}{{-1 << 62, 9}, {-1, 0}, {0, 0}, {0, 1}, {1, 0}, {1 << 62, 0}}
	for i := 1; i < len(order); i++ {
		a, b := AppendTimelineOrder(nil, order[i-1].at, order[i-1].seq), AppendTimelineOrder(nil, order[i].at, order[i].seq)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("%v does not sort before %v", order[i-1], order[i])
		}
		if at, seq, err := ParseTimelineOrder(b); err != nil || at != order[i].at || seq != order[i].seq {
			t.Errorf("ParseTimelineOrder = %d, %d, %v; want %v", at, seq, err, order[i])
		}
	}
	if _, _, err := ParseTimelineOrder([]byte{1}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short order bytes: %v, want ErrCorrupt", err)
	}
	if _, err := UnmarshalTimelineEntry(make([]byte, TimelineOrderLen), []byte("{")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad body: %v, want ErrCorrupt", err)
	}
}

func TestSortTimeline(t *testing.T) {
	got := []TimelineEntry{{At: 1, Seq: 1}, {At: 3}, {At: 1, Seq: 2}, {At: 2}}
	SortTimeline(got)
	want := []TimelineEntry{{At: 3}, {At: 2}, {At: 1, Seq: 2}, {At: 1, Seq: 1}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("SortTimeline (-want +got):\n%s", d)
	}
}

// TestProfileMutation: the entry names the attributes whose value
// changed, with their new value, as the last run saw them.
func TestProfileMutation(t *testing.T) {
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	m := ProfileMutation("c-1", map[string]Value{"tier": String("gold"), "ltv": Number(3), "seen": Time(at)}, at)
	r := &Record{}
	r.SetAttr("tier", String("gold"))
	m.Apply(r)
	want := []TimelineEntry{{At: at.UnixNano(), Kind: TimelineProfile, Type: ProfileChange, Properties: map[string]any{"ltv": 3.0, "seen": "2026-11-22T00:00:00Z"}}}
	if d := cmp.Diff(want, m.Timeline()); d != "" {
		t.Errorf("Timeline (-want +got):\n%s", d)
	}
	m.Apply(r) // a second run: nothing changes
	if got := m.Timeline(); got != nil {
		t.Errorf("Timeline of a run that changed nothing: %+v", got)
	}
}

// TestJournaledEventMutations: every event makes an entry, those nothing
// reads too, and a retry of an id seen is not listed.
func TestJournaledEventMutations(t *testing.T) {
	s, err := NewSchema([]Feature{{Name: "views", Type: TypeNumber, From: &Aggregation{Event: "product_view", Op: OpCount}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	evs := []Event{
		{ID: "a", CustomerID: "c-1", Type: "product_view", Channel: "web", Time: now},
		{CustomerID: "c-1", Type: "call", Channel: "call_center", Time: now},
		{CustomerID: "c-2", Type: "call", Channel: "call_center", Time: now},
	}
	if got := EventMutations(s, evs, now); len(got) != 1 {
		t.Errorf("EventMutations made %d mutations, want 1 (nothing reads calls)", len(got))
	}
	muts := JournaledEventMutations(s, evs, now, nil)
	if len(muts) != 2 {
		t.Fatalf("%d mutations, want 2", len(muts))
	}
	m := muts[0]
	m.Dedupe.Reset()
	m.Apply(&Record{})
	if got := m.Timeline(); len(got) != 2 || got[0].EventID != "a" || got[1].Type != "call" {
		t.Errorf("first run: %+v", got)
	}
	m.Dedupe.Reset()
	m.Dedupe.Seen[0] = true // "a" was applied already
	m.Apply(&Record{})
	if got := m.Timeline(); len(got) != 1 || got[0].Type != "call" {
		t.Errorf("run with a seen: %+v, want the call only", got)
	}
}

// TestAppendJSON: what appendJSON writes decodes as what encoding/json
// writes does, and what it cannot write it says so.
func TestAppendJSON(t *testing.T) {
	values := []any{
		nil, true, 0.0, -1.5, 1e21, 1e-7, "", `quote " back \ slash`, "tab\tnew\nline\r\x00\x1f\x7f",
		"héllo, 世界 🎉", "bad \xff utf-8", []any{}, []any{1.0, "a", nil, []any{false}},
		map[string]any{}, map[string]any{"a": 1.0, "b\"": map[string]any{"c": []any{"d"}}},
	}
	for _, v := range values {
		got, ok := appendJSON(nil, v)
		if !ok {
			t.Errorf("appendJSON(%#v) refused it", v)
			continue
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Errorf("appendJSON(%#v) = %s: %v", v, got, err)
			continue
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("appendJSON(%#v) = %s (-encoding/json +appendJSON):\n%s", v, got, d)
		}
	}
	for _, v := range []any{math.NaN(), math.Inf(1), []any{1, 2}, map[string]any{"n": int64(3)}, struct{}{}} {
		if _, ok := appendJSON(nil, v); ok {
			t.Errorf("appendJSON(%#v) accepted it", v)
		}
	}
	// A property encoding/json writes and appendJSON does not is kept.
	e := TimelineEntry{Kind: TimelineEvent, Type: "t", Properties: map[string]any{"n": 3}}
	body, err := AppendTimelineEntry(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnmarshalTimelineEntry(make([]byte, TimelineOrderLen), body); err != nil || got.Properties["n"] != 3.0 {
		t.Errorf("an int property: %+v, %v", got, err)
	}
}
