package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// importFile is a small import: two good customers, a bad line between
// them, and a third after it.
const importFile = `{"customer_id":"i-1","features":{"tier":"gold","lifetime_value":1500},"events":[{"type":"purchase","ts":"2026-11-20T10:00:00Z","properties":{"amount":40},"event_id":"p-1"}]}
{"customer_id":"i-2","events":[{"type":"support_call"},{"type":"page_view","event_id":"v-1"}]}
{"customer_id":"i-3","features":{"tier":"gold","shoe_size":42}}
{"customer_id":"i-4","features":{"tier":"silver"}}
`

func writeImportFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "customers.ndjson")
	if err := os.WriteFile(path, []byte(importFile), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportCommand imports into a stopped node's store, then serves it:
// the customers are there, the bad line is reported with its number and
// field and nothing of it written; a re-import applies no event with an
// id twice; --on-error fail stops at the bad line.
func TestImportCommand(t *testing.T) {
	dir, file := t.TempDir(), writeImportFile(t)
	code, out, errs := runBinary(t, "import", "--catalog", testCatalog, "--data", dir, file)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if want := "imported 3 customers (3 events applied, 0 duplicate), skipped 1 bad lines of 4"; !strings.Contains(out, want) {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if want := file + ": line 3: features.shoe_size: unknown feature"; !strings.Contains(errs, want) {
		t.Errorf("stderr %q, want %q", errs, want)
	}
	// Again: the events with ids are not applied twice, the support call
	// (no id) is; the profiles are set again.
	code, out, errs = runBinary(t, "import", "--catalog", testCatalog, "--data", dir, file)
	if want := "imported 3 customers (1 events applied, 2 duplicate)"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("re-import: exit %d %q %s, want %q", code, out, errs, want)
	}
	code, out, errs = runBinary(t, "import", "--catalog", testCatalog, "--data", t.TempDir(), "--on-error", "fail", file)
	if want := "imported 2 customers"; code != 1 || !strings.Contains(out, want) || !strings.Contains(errs, "line 3: features.shoe_size") {
		t.Errorf("--on-error fail: exit %d %q %q, want 1, %q and the bad line", code, out, errs, want)
	}

	s := startServer(t, dir)
	for id, want := range map[string]map[string]any{
		"i-1": {"tier": "gold", "lifetime_value": 1500.0, "spend_90d": 40.0},
		"i-2": {"support_calls": 2.0, "page_views": 1.0},
		"i-3": {"tier": "none"},
		"i-4": {"tier": "silver"},
	} {
		got := s.customerFeatures(id)
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s: %s = %v, want %v", id, name, got[name], v)
			}
		}
	}
	if d := s.decide(`{"customer_id":"i-1","channel":"web","explain":true}`); !strings.Contains(fmt.Sprint(d.Segments), "vip") {
		t.Errorf("i-1's segments %v, want vip", d.Segments)
	}

	usage := [][]string{
		{"import", file},
		{"import", "--data", dir, "--url", s.url, file},
		{"import", "--data", dir, "--batch-size", "0", file},
	}
	for _, args := range usage {
		if code, _, errs := runBinary(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errs)
		}
	}
	// The store is the running server's.
	if code, _, errs := runBinary(t, "import", "--catalog", testCatalog, "--data", dir, file); code != 1 || !strings.Contains(errs, "--url") {
		t.Errorf("import into a served store: exit %d %s, want 1 pointing to --url", code, errs)
	}
}

// TestImportThroughServer imports through POST /v1/customers:import, by
// the route and by nextbest import --url in parts smaller than the file.
func TestImportThroughServer(t *testing.T) {
	// The import's body limit is its own: above --max-body.
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog, "--max-body", "1KiB", "--max-import-body", "4KiB")
	status, body := s.call("POST", "/v1/customers:import", importFile, "Content-Type", "application/x-ndjson")
	var sum struct {
		Lines, Imported, Skipped, Events int
		Errors                           []struct {
			Line    int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(body), &sum); err != nil || status != 200 {
		t.Fatalf("import: %d %s", status, body)
	}
	if sum.Lines != 4 || sum.Imported != 3 || sum.Skipped != 1 || sum.Events != 3 ||
		len(sum.Errors) != 1 || sum.Errors[0].Line != 3 || sum.Errors[0].Message != "features.shoe_size: unknown feature" {
		t.Errorf("summary %s", body)
	}
	if got := s.customerFeatures("i-4")["tier"]; got != "silver" {
		t.Errorf("i-4's tier %v, want silver", got)
	}

	// Over --max-body, within --max-import-body: imported. Over it: 413
	// saying how to send it.
	if len(importFile)*3 < 1024 || len(importFile)*12 < 4096 || len(importFile)*3 > 4096 {
		t.Fatalf("importFile is %d bytes: adjust the limits of this test", len(importFile))
	}
	if status, body := s.call("POST", "/v1/customers:import", strings.Repeat(importFile, 3), "Content-Type", "application/x-ndjson"); status != 200 {
		t.Errorf("over --max-body, within --max-import-body: %d %s, want 200", status, body)
	}
	if status, body := s.call("POST", "/v1/customers:import", strings.Repeat(importFile, 12), "Content-Type", "application/x-ndjson"); status != 413 || !strings.Contains(body, "in parts") {
		t.Errorf("over the limit: %d %s, want 413", status, body)
	}

	// nextbest import --url sends parts of whole lines, and numbers the
	// bad lines of the whole file.
	path := filepath.Join(t.TempDir(), "many.ndjson")
	var many strings.Builder
	for i := range 40 {
		if i == 25 {
			many.WriteString(`{"customer_id":"m-bad","features":{"tier":1}}` + "\n")
			continue
		}
		fmt.Fprintf(&many, `{"customer_id":"m-%d","features":{"tier":"gold"}}`+"\n", i)
	}
	if err := os.WriteFile(path, []byte(many.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBinary(t, "import", "--url", s.url, "--part-size", "300", path)
	if code != 0 || !strings.Contains(out, "imported 39 customers") || !strings.Contains(errs, "line 26: features.tier") {
		t.Errorf("import --url: exit %d %q %q, want 39 imported and line 26 reported", code, out, errs)
	}
	if got := s.customerFeatures("m-39")["tier"]; got != "gold" {
		t.Errorf("m-39's tier %v, want gold", got)
	}
}

// TestImportRedis imports into Redis with nextbest import --redis while a
// node serves it: the node sees the customers (its cache was told).
func TestImportRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
	n := redisNode(t, rs.Addr)
	if got := n.customerFeatures("i-4")["tier"]; got != "none" { // cached as unknown
		t.Fatalf("i-4's tier before the import: %v", got)
	}
	code, out, errs := runBinary(t, "import", "--catalog", testCatalog, "--redis", "redis://"+rs.Addr+"/0", writeImportFile(t))
	if want := "imported 3 customers (3 events applied, 0 duplicate), skipped 1 bad lines of 4"; code != 0 || !strings.Contains(out, want) {
		t.Fatalf("import --redis: exit %d %q %s, want %q", code, out, errs, want)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.customerFeatures("i-4")["tier"] != "silver" {
		if time.Now().After(deadline) {
			t.Fatalf("the node still answers i-4's tier %v after the import", n.customerFeatures("i-4")["tier"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := n.customerFeatures("i-1")["spend_90d"]; got != 40.0 {
		t.Errorf("i-1's spend_90d %v, want 40", got)
	}
}
