package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/tmpfstest"
)

// TestServeDiskFull runs the binary on a small tmpfs and fills it, with
// the free-space floor (writes refused before the store meets ENOSPC) and
// without (the write-ahead log meets ENOSPC): an event is answered 503
// with Retry-After within its deadline (never a hang, a 500 or a false
// 202), /readyz answers 503 saying why while decisions go on, the refusals
// are counted, and once space is freed the node takes events again by
// itself and /readyz answers 200. Issue 10, point 2: events hung for over
// 30 s, also after space was freed, while /readyz stayed 200.
func TestServeDiskFull(t *testing.T) {
	tests := []struct {
		name  string
		floor string // --min-free-disk; "": the default, 5% of 8 MiB here
		leave int64  // bytes the filler leaves free
	}{
		{name: "below the default floor", leave: 200 << 10},
		{name: "below the floor", floor: "2MiB", leave: 1 << 20},
		{name: "no floor, no space", floor: "0", leave: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol := tmpfstest.Mount(t, "8m")
			args := []string{"--addr", "127.0.0.1:0", "--data", filepath.Join(vol, "data"), "--catalog", testCatalog}
			if tt.floor != "" {
				args = append(args, "--min-free-disk", tt.floor)
			}
			s := startServerIn(t, ".", args...)

			n := 0
			event := func() (status int, retryAfter, body string, took time.Duration) {
				t.Helper()
				n++
				start := time.Now()
				req, _ := http.NewRequest("POST", s.url+"/v1/events",
					strings.NewReader(fmt.Sprintf(`{"event_id":"disk-%d","customer_id":"disk","type":"page_view","channel":"web"}`, n)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req) // 10 s client timeout: a hang fails here
				if err != nil {
					t.Fatalf("event %d: %v", n, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Retry-After"), string(b), time.Since(start)
			}
			if status, _, body, _ := event(); status != 202 {
				t.Fatalf("event before filling the disk: %d %s", status, body)
			}

			tmpfstest.Fill(t, filepath.Join(vol, "filler"), tt.leave)
			// Refused once the store has looked at the volume again (it
			// does every 100 ms) or, without a floor, once the log's
			// last page is full.
			var (
				status          int
				retryAfter, msg string
				took            time.Duration
			)
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
				if status, retryAfter, msg, took = event(); status != 202 {
					break
				}
			}
			t.Logf("first refused event answered %d in %v", status, took)
			if status != 503 || retryAfter == "" || !strings.Contains(msg, `"store_unavailable"`) {
				t.Fatalf("event on a full disk: %d Retry-After %q %s; want 503 store_unavailable with Retry-After", status, retryAfter, msg)
			}
			// The request's own deadline is 5 s; the wedge hung for 30 s.
			if took > 3*time.Second {
				t.Errorf("refused after %v, want well within the 5 s write deadline", took)
			}
			for range 3 {
				status, retryAfter, msg, took = event()
				t.Logf("next refused event answered %d in %v", status, took)
				if status != 503 || retryAfter == "" || took > 3*time.Second {
					t.Errorf("event on a full disk: %d Retry-After %q in %v %s; want 503 with Retry-After at once", status, retryAfter, took, msg)
				}
			}

			// Out of rotation, saying why in the JSON body.
			status, body := s.call("GET", "/readyz", "")
			var ready struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &ready); status != 503 || err != nil ||
				ready.Error.Code != "not_ready" || !strings.Contains(ready.Error.Message, "disk full") {
				t.Errorf("/readyz on a full disk: %d %s; want 503 not_ready with a JSON message saying disk full", status, body)
			}
			// Decisions go on.
			s.decide(`{"customer_id":"disk","channel":"web"}`)
			_, metrics := s.call("GET", "/metrics", "")
			if v := sampleValue(t, metrics, `nextbest_store_writes_refused_total{cause="disk_full"}`); v < 4 {
				t.Errorf(`nextbest_store_writes_refused_total{cause="disk_full"} = %v, want at least the 4 refused events`, v)
			}
			if v := sampleValue(t, metrics, `nextbest_store_writes_refused_total{cause="write_error"}`); v != 0 {
				t.Errorf(`nextbest_store_writes_refused_total{cause="write_error"} = %v on a full disk, want 0`, v)
			}
			// The volume is asked at most every 100 ms.
			for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
				_, metrics = s.call("GET", "/metrics", "")
				v := sampleValue(t, metrics, "nextbest_store_disk_free_bytes")
				if v <= 2<<20 {
					break
				}
				if time.Since(start) > 2*time.Second {
					t.Errorf("nextbest_store_disk_free_bytes = %v on a full 8 MiB volume", v)
					break
				}
			}
			// Space returns: so does the node, without a restart.
			if err := os.Remove(filepath.Join(vol, "filler")); err != nil {
				t.Fatal(err)
			}
			s.waitReady(5 * time.Second)
			if status, _, body, _ := event(); status != 202 {
				t.Errorf("event once space is back: %d %s, want 202", status, body)
			}
			s.stop() // all its logs are in
			if !strings.Contains(s.logs.String(), "feature store refusing writes") {
				t.Errorf("no log line says why writes are refused")
			}
			if !strings.Contains(s.logs.String(), "feature store accepting writes again") {
				t.Errorf("no log line says writes are accepted again")
			}
		})
	}
}

// sampleValue returns the value of the sample named exactly series (name
// and labels as printed) in a /metrics body; it fails the test without one.
func sampleValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
