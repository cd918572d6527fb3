package decisionlog

import (
	"testing"
	"time"
)

// TestEntryTime: an entry's time is read from its line's start as
// AppendJSON writes it; a line that does not start so is left to the
// decoder.
func TestEntryTime(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	line, err := (&Entry{ID: "d5cvv4c7aibg00cl2a3g", Time: at, Channel: "web"}).AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		line string
		want time.Time
		ok   bool
	}{
		{string(line), at, true},
		{`{"id":"a","time":"2026-12-01T10:00:00Z","chan`, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), true},
		{`{"id":"a","time":"2026-12-01T10:00:00+01:00"}`, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), true},
		{`{"time":"2026-12-01T10:00:00Z","id":"a"}`, time.Time{}, false},
		{`{"id":"a\"b","time":"2026-12-01T10:00:00Z"}`, time.Time{}, false},
		{`{"id":"a","time":"yesterday"}`, time.Time{}, false},
		{`{"id":"a","time":"2026-12-01T10:`, time.Time{}, false},
		{`{"outcome":"click","decision_id":"a"}`, time.Time{}, false},
		{``, time.Time{}, false},
	} {
		got, ok := entryTime([]byte(tt.line))
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("entryTime(%s) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}
