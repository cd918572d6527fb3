package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 14 point 5 over HTTP against the real binary, on the embedded
// store and on Redis: GET /v1/stats?segment= counts the decisions made
// for customers in the segment when decided for, in every segment they
// were in, and the outcomes of those decisions, even those reported
// after the customer left the segment; alone and with channel=.

const segmentsCatalog = "testdata/segments.yaml"

// segmentStatsBody is the part of GET /v1/stats this test reads.
type segmentStatsBody struct {
	Segment     string `json:"segment"`
	SegmentNote string `json:"segment_note"`
	Channels    []struct {
		Channel                                   string
		Decisions, Impressions, Clicks, Dismisses int64
		Conversions                               int64
		Value                                     float64
		Reach                                     *int64
	}
	Experiments []struct {
		ID                 string
		CustomersInSegment *bool `json:"customers_in_segment"`
		Variants           []struct {
			Name      string
			Decisions int64
		}
	}
}

// segmentRow is a channel row's counts.
type segmentRow struct {
	Decisions, Impressions, Clicks, Conversions, Dismisses int64
	Value                                                  float64
}

func TestStatsBySegment(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) *server
	}{
		{"embedded", func(t *testing.T) *server {
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", segmentsCatalog, "--data", t.TempDir(), "--stats-flush", "10ms")
		}},
		{"redis", func(t *testing.T) *server {
			rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
			return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", segmentsCatalog, "--redis", "redis://"+rs.Addr+"/0", "--stats-flush", "10ms")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { statsBySegment(t, tt.start(t)) })
	}
}

func statsBySegment(t *testing.T, s *server) {
	// direct[segment][channel]: "" is every customer.
	direct := map[string]map[string]*segmentRow{}
	reach := map[string]map[string]map[string]bool{} // segment → channel → customers
	count := func(segs []string, ch string, f func(*segmentRow)) {
		for _, seg := range append([]string{""}, segs...) {
			if direct[seg] == nil {
				direct[seg] = map[string]*segmentRow{}
			}
			if direct[seg][ch] == nil {
				direct[seg][ch] = &segmentRow{}
			}
			f(direct[seg][ch])
		}
	}
	var events []string
	outcome := func(id, typ, offer, ch string, segs []string, value float64) {
		ev := fmt.Sprintf(`{"customer_id":%q,"type":%q,"offer_id":%q,"channel":%q`, id, typ, offer, ch)
		if typ == "conversion" {
			ev += fmt.Sprintf(`,"properties":{"value":%v}`, value)
		}
		events = append(events, ev+"}")
		count(segs, ch, func(r *segmentRow) {
			switch typ {
			case "impression":
				r.Impressions++
			case "click":
				r.Clicks++
			case "conversion":
				r.Conversions++
				r.Value += value
			case "dismiss":
				r.Dismisses++
			}
		})
	}
	decide := func(id, ch string) (string, []string) {
		d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":%q,"explain":true}`, id, ch))
		count(d.Segments, ch, func(r *segmentRow) { r.Decisions++ })
		for _, seg := range append([]string{""}, d.Segments...) {
			if reach[seg] == nil {
				reach[seg] = map[string]map[string]bool{}
			}
			if reach[seg][ch] == nil {
				reach[seg][ch] = map[string]bool{}
			}
			reach[seg][ch][id] = true
		}
		if len(d.Offers) == 0 {
			return "", d.Segments
		}
		if ch == "email" { // decision_is_impression
			count(d.Segments, ch, func(r *segmentRow) { r.Impressions++ })
		}
		return d.Offers[0].ID, d.Segments
	}
	profiles := []string{`{"tier":"lapsed"}`, `{"spend":250}`, `{"tier":"lapsed","spend":120}`, `{}`}
	for i := range 24 {
		id := fmt.Sprintf("seg-%d", i)
		s.mustCall("PUT", "/v1/customers/"+id, `{"features":`+profiles[i%4]+`}`, 200)
		web, webSegs := decide(id, "web")
		if want := [][]string{{"lapsed"}, {"big"}, {"lapsed", "big"}, nil}[i%4]; !slices.Equal(webSegs, want) {
			t.Fatalf("%s: segments %q, want %q", id, webSegs, want)
		}
		email, emailSegs := decide(id, "email")
		if web != "" {
			outcome(id, "impression", web, "web", webSegs, 0)
		}
		if i%3 == 0 {
			// They come back: no longer lapsed nor big. What they were
			// shown when they were counts for those segments still.
			s.mustCall("PUT", "/v1/customers/"+id, `{"features":{"tier":"active","spend":0}}`, 200)
		}
		if web != "" && i%2 == 0 {
			outcome(id, "click", web, "web", webSegs, 0)
			outcome(id, "conversion", web, "web", webSegs, float64(10+i))
		}
		if email != "" && i%4 != 1 {
			outcome(id, "click", email, "email", emailSegs, 0)
		}
		if email != "" && i%5 == 0 {
			outcome(id, "dismiss", email, "email", emailSegs, 0)
		}
		// The outcomes of a decision are reported before the customer's
		// next decision on the channel (docs/experiments.md).
		s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
		events = events[:0]
		if i%3 == 0 {
			// A later decision finds them in no segment: its outcomes
			// count so.
			again, segs := decide(id, "web")
			if len(segs) != 0 {
				t.Fatalf("%s after coming back: segments %q, want none", id, segs)
			}
			if again != "" {
				outcome(id, "impression", again, "web", nil, 0)
				outcome(id, "click", again, "web", nil, 0)
			}
		}
		if len(events) > 0 {
			s.mustCall("POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, 202)
			events = events[:0]
		}
	}
	if direct["lapsed"]["web"] == nil || direct["big"]["email"] == nil || direct["lapsed"]["web"].Clicks == 0 {
		t.Fatalf("the test counts too little: %v", direct)
	}

	get := func(query string) segmentStatsBody {
		var b segmentStatsBody
		if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/stats"+query, "", 200)), &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	rows := func(b segmentStatsBody) map[string]segmentRow {
		m := map[string]segmentRow{}
		for _, c := range b.Channels {
			m[c.Channel] = segmentRow{c.Decisions, c.Impressions, c.Clicks, c.Conversions, c.Dismisses, c.Value}
		}
		return m
	}
	want := func(seg, ch string) map[string]segmentRow {
		m := map[string]segmentRow{}
		for _, c := range []string{"web", "email"} {
			if ch != "" && c != ch {
				continue
			}
			m[c] = segmentRow{}
			if r := direct[seg][c]; r != nil {
				m[c] = *r
			}
		}
		return m
	}
	// The statistics are flushed every 10ms: wait until every segment's
	// figures match.
	queries := []struct{ segment, channel string }{
		{"", ""}, {"lapsed", ""}, {"big", ""}, {"lapsed", "web"}, {"big", "email"}, {"lapsed", "email"},
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, q := range queries {
		query := "?segment=" + q.segment
		if q.channel != "" {
			query += "&channel=" + q.channel
		}
		for {
			b := get(query)
			reached := true
			for _, c := range b.Channels {
				reached = reached && c.Reach != nil && *c.Reach == int64(len(reach[q.segment][c.Channel]))
			}
			if maps.Equal(rows(b), want(q.segment, q.channel)) && reached {
				if b.Segment != q.segment || (q.segment != "") != (b.SegmentNote != "") {
					t.Errorf("%s: segment %q, note %q", query, b.Segment, b.SegmentNote)
				}
				if q.segment != "" {
					if x := b.Experiments[0]; x.CustomersInSegment == nil || *x.CustomersInSegment != (q.segment == "lapsed") {
						t.Errorf("%s: customers_in_segment %v, want %v", query, x.CustomersInSegment, q.segment == "lapsed")
					}
				}
				break
			}
			if time.Now().After(deadline) {
				for _, c := range b.Channels {
					if c.Reach != nil {
						t.Logf("%s: %s reach %d, want %d (exact at this size)", query, c.Channel, *c.Reach, len(reach[q.segment][c.Channel]))
					}
				}
				t.Fatalf("%s: channels %+v, want %+v", query, rows(b), want(q.segment, q.channel))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	status, body := s.call("GET", "/v1/stats?segment=vip", "")
	if status != 400 || !strings.Contains(body, `\"vip\" is not a segment of the catalog, one of lapsed, big`) || !strings.Contains(body, "segment:") {
		t.Errorf("GET /v1/stats?segment=vip: %d %s, want 400 naming the catalog's segments", status, body)
	}
}
