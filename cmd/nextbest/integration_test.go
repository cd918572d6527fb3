package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/internal/redistest"
)

// These tests run the real nextbest binary, built once by TestMain, over
// loopback HTTP: issue 2's acceptance, end to end.

// binary is the path of the nextbest binary under test.
var binary string

// testCatalog is the integration tests' catalog: small and deterministic.
const testCatalog = "testdata/catalog.yaml"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nextbest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nextbest")
	// Stamped as the Dockerfile stamps it (TestVersion).
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion+" -X main.commit="+testCommit, "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nextbest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `nextbest serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	// usedIDs are the customer ids a test has taken (customerInVariant).
	usedIDs map[string]bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var listening = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)

// startServer starts `nextbest serve` with the test catalog on a free
// loopback port with data in dir, and waits until it is ready. The process
// is killed at the end of the test if it is still running.
func startServer(t *testing.T, dir string) *server {
	t.Helper()
	return startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", dir, "--catalog", testCatalog)
}

// startServerIn starts `nextbest serve args...` in the working directory
// wd and waits until it is ready.
func startServerIn(t *testing.T, wd string, args ...string) *server {
	t.Helper()
	s := startListening(t, wd, args...)
	s.waitReady(10 * time.Second)
	return s
}

// startListening starts `nextbest serve args...` in wd and returns once it
// logged its address, ready or not.
func startListening(t *testing.T, wd string, args ...string) *server {
	t.Helper()
	// Tests that do not test access control run with it off, as a
	// laptop would.
	if !slices.Contains(args, "--keys") && !slices.Contains(args, "--insecure-no-auth") {
		args = append(args, "--insecure-no-auth")
	}
	// Admission control sheds requests when the CPU is busy, and CI's
	// is (-race, packages tested in parallel on two cores): tests that
	// do not test it run without it, so a 503 "overloaded" is never
	// taken for a failure of what they test.
	if !slices.ContainsFunc(args, func(a string) bool {
		return strings.Contains(a, "admission") || strings.Contains(a, "-max-queue") || strings.Contains(a, "-max-in-flight")
	}) {
		args = append(args, "--no-admission")
	}
	// Catalog versions and the audit log live in the data directory, even
	// with Redis: never in the working directory, never shared by nodes.
	if !slices.Contains(args, "--data") {
		args = append(args, "--data", t.TempDir())
	}
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), "NEXTBEST_ADDR=", "NEXTBEST_CATALOG=", "NEXTBEST_DATA=", "NEXTBEST_API_KEYS=", "NEXTBEST_KEYS_FILE=", "NEXTBEST_TOKEN_SECRET=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stdout = logs // serve prints nothing there, but what it would, a test reads
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: logs, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.logs, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", s.logs)
		}
	})

	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		t.Fatalf("server exited before listening: %v\n%s", s.err, s.logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("server did not log its address within 15s:\n%s", s.logs)
	}
	return s
}

// waitReady waits until /readyz answers 200.
func (s *server) waitReady(within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server not ready within %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
		if s.err != nil {
			s.t.Fatalf("server exited with %v after SIGTERM", s.err)
		}
	case <-time.After(15 * time.Second):
		s.t.Fatal("server did not stop within 15s of SIGTERM")
	}
}

var client = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second},
}

// call sends one request and returns the status and body.
func (s *server) call(method, path, body string, header ...string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// decideResponse is a decide response as a client sees it.
type decideResponse struct {
	DecisionID string `json:"decision_id"`
	CustomerID string `json:"customer_id"`
	Channel    string
	Offers     []struct {
		ID      string
		Score   float64
		Content map[string]any
	}
	Fallback map[string]any
	// Suppressed is why the channel's policy withheld the decision.
	Suppressed *struct {
		Reason string
		Rule   string
	}
	Degraded bool
	Segments []string
	Explain  []struct {
		OfferID    string `json:"offer_id"`
		Eligible   bool
		Reason     string
		Rule       string
		Score      float64
		Propensity float64
		Sticky     bool
	}
	Experiments []struct {
		ID      string
		Variant string
	}
}

func (d decideResponse) offerIDs() []string {
	ids := []string{}
	for _, o := range d.Offers {
		ids = append(ids, o.ID)
	}
	return ids
}

func (s *server) decide(body string) decideResponse {
	s.t.Helper()
	status, resp := s.call("POST", "/v1/decide", body)
	if status != 200 {
		s.t.Fatalf("decide %s: got %d %s", body, status, resp)
	}
	var d decideResponse
	if err := json.Unmarshal([]byte(resp), &d); err != nil {
		s.t.Fatalf("decide %s: %v in %s", body, err, resp)
	}
	return d
}

func (s *server) mustCall(method, path, body string, want int) string {
	s.t.Helper()
	status, resp := s.call(method, path, body)
	if status != want {
		s.t.Fatalf("%s %s %s: got %d %s, want %d", method, path, body, status, resp, want)
	}
	return resp
}

// customerFeatures returns GET /v1/customers/{id}.features.
func (s *server) customerFeatures(id string) map[string]any {
	s.t.Helper()
	var c struct {
		Known    bool
		Features map[string]any
	}
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/customers/"+id, "", 200)), &c); err != nil {
		s.t.Fatal(err)
	}
	return c.Features
}

// TestServeRetailCatalog runs plain `nextbest serve` from the repository
// root, as the README does: the default catalog is the retail example,
// and every channel it declares answers.
func TestServeRetailCatalog(t *testing.T) {
	const root = "../.."
	if _, err := os.Stat(filepath.Join(root, "examples/retail/catalog.yaml")); err != nil {
		t.Skipf("no retail catalog yet: %v", err)
	}
	code, out, errs := runBinary(t, "validate", filepath.Join(root, "examples/retail/catalog.yaml"))
	if code != 0 {
		t.Fatalf("validate the retail catalog: exit %d %s", code, errs)
	}
	s := startServerIn(t, root, "--addr", "127.0.0.1:0", "--data", t.TempDir())
	m := regexp.MustCompile(`channels:\s+\d+\s+(.*)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no channels in the summary:\n%s", out)
	}
	for _, ch := range strings.Split(m[1], ", ") {
		d := s.decide(`{"customer_id":"anon","channel":"` + ch + `","limit":3}`)
		// SMS has quiet hours (21:00 to 09:00 in London for a customer
		// without a zone): at those hours of the real clock, it answers
		// nothing and says so.
		quiet := ch == "sms" && d.Suppressed != nil && d.Suppressed.Reason == "quiet_hours"
		if d.Channel != ch || (len(d.Offers) == 0 && d.Fallback == nil && !quiet) {
			t.Errorf("%s: got %+v, want offers or the channel's fallback", ch, d)
		}
		for _, o := range d.Offers {
			if len(o.Content) == 0 {
				t.Errorf("%s: offer %s has no content", ch, o.ID)
			}
		}
	}
	// A complaint taken by the call center puts the customer at risk, as
	// the next web decision shows.
	s.mustCall("POST", "/v1/events", `{"customer_id":"r-1","type":"call","channel":"call_center","properties":{"reason":"complaint"}}`, 202)
	d := s.decide(`{"customer_id":"r-1","channel":"web","explain":true}`)
	if !slices.Contains(d.Segments, "at_risk") {
		t.Errorf("segments after a complaint: got %v, want at_risk among them", d.Segments)
	}
}

func TestServeDecisionPerChannel(t *testing.T) {
	s := startServer(t, t.TempDir())
	want := map[string]map[string]any{
		"web":         {"headline": "Welcome to the shop"},
		"app":         {"title": "Welcome", "deeplink": "shop://home"},
		"call_center": {"script": "Greet the customer"},
		"email":       {"subject": "Welcome aboard"},
		"sms":         {"text": "Welcome!"},
	}
	for ch, content := range want {
		d := s.decide(`{"customer_id":"anon","channel":"` + ch + `"}`)
		if d.Channel != ch || len(d.Offers) != 1 || d.Offers[0].ID != "welcome" {
			t.Errorf("%s: got %+v, want the welcome offer", ch, d)
			continue
		}
		if diff := cmp.Diff(content, d.Offers[0].Content); diff != "" {
			t.Errorf("%s content (-want +got):\n%s", ch, diff)
		}
	}
}

// TestServeOmnichannel: an event taken by the call center changes the
// next decision on the web; explain names the rule that failed before.
func TestServeOmnichannel(t *testing.T) {
	s := startServer(t, t.TempDir())
	d := s.decide(`{"customer_id":"c-1","channel":"web","explain":true}`)
	if diff := cmp.Diff([]string{"welcome"}, d.offerIDs()); diff != "" {
		t.Fatalf("before the call (-want +got):\n%s", diff)
	}
	var rule string
	for _, x := range d.Explain {
		if x.OfferID == "apology" {
			rule = x.Rule
			if x.Eligible || x.Reason != "not_eligible" {
				t.Errorf("apology before the call: got %+v, want not eligible", x)
			}
		}
	}
	if rule != "customer.support_calls > 0" {
		t.Errorf("explain rule: got %q, want %q", rule, "customer.support_calls > 0")
	}

	s.mustCall("POST", "/v1/events", `{"events":[{"customer_id":"c-1","type":"support_call","channel":"call_center"}]}`, 202)
	d = s.decide(`{"customer_id":"c-1","channel":"web","limit":2}`)
	if diff := cmp.Diff([]string{"apology", "welcome"}, d.offerIDs()); diff != "" {
		t.Errorf("after the call (-want +got):\n%s", diff)
	}
	if d.Offers[0].Content["code"] != "SORRY10" {
		t.Errorf("apology content: got %v", d.Offers[0].Content)
	}
}

func TestServeProfileChangesSegments(t *testing.T) {
	s := startServer(t, t.TempDir())
	d := s.decide(`{"customer_id":"p-1","channel":"call_center","explain":true}`)
	if len(d.Segments) != 0 {
		t.Fatalf("segments before: got %v, want none", d.Segments)
	}
	s.mustCall("PUT", "/v1/customers/p-1", `{"features":{"tier":"gold","lifetime_value":250}}`, 200)
	d = s.decide(`{"customer_id":"p-1","channel":"call_center","explain":true}`)
	if diff := cmp.Diff([]string{"vip"}, d.Segments); diff != "" {
		t.Errorf("segments after (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"vip-lounge"}, d.offerIDs()); diff != "" {
		t.Errorf("offers after (-want +got):\n%s", diff)
	}
}

func TestServeBadInput(t *testing.T) {
	s := startServer(t, t.TempDir())
	tests := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
		header                   []string
	}{
		{"malformed JSON", "POST", "/v1/decide", `{"customer_id":"c",`, 400, "invalid_request", "malformed JSON", nil},
		{"unknown channel", "POST", "/v1/decide", `{"customer_id":"c","channel":"fax"}`, 400, "invalid_request", `channel: "fax" is not one of web, app, call_center, email, sms`, nil},
		{"missing customer id", "POST", "/v1/decide", `{"channel":"web"}`, 400, "invalid_request", "customer_id: is required", nil},
		// A client that sends a large body waits for 100 Continue (curl
		// does), so it gets the answer rather than a reset mid-upload.
		{"oversized body", "POST", "/v1/events", `{"customer_id":"c","type":"x","properties":{"blob":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, "payload_too_large", "larger than", []string{"Expect", "100-continue"}},
		{"non-JSON body", "POST", "/v1/events", `customer_id=c`, 415, "unsupported_media_type", "not JSON", []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"wrong-typed event field", "POST", "/v1/events", `{"events":[{"customer_id":"c","type":"purchase","properties":{"amount":"lots"}}]}`, 400, "invalid_request", `events[0].properties: property "amount"`, nil},
		{"wrong-typed event ts", "POST", "/v1/events", `{"events":[{"customer_id":"c","type":"purchase","ts":12}]}`, 400, "invalid_request", "events[0].ts: must be a string", nil},
		{"unknown feature in PUT", "PUT", "/v1/customers/c", `{"features":{"shoe_size":42}}`, 400, "invalid_request", "features.shoe_size: unknown feature", nil},
		{"wrong type in PUT", "PUT", "/v1/customers/c", `{"features":{"lifetime_value":"a lot"}}`, 400, "invalid_request", "features.lifetime_value: got a string, want number", nil},
		{"derived feature in PUT", "PUT", "/v1/customers/c", `{"features":{"page_views":3}}`, 400, "invalid_request", "is derived from", nil},
		{"unknown route", "GET", "/v1/nothing", "", 404, "not_found", "no route", nil},
		{"wrong method", "DELETE", "/v1/decide", "", 405, "method_not_allowed", "DELETE", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.call(tt.method, tt.path, tt.body, tt.header...)
			if status != tt.status {
				t.Fatalf("status: got %d, want %d (body %.300s)", status, tt.status, body)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.msg) {
				t.Errorf("error: got %+v, want code %q and a message containing %q", e.Error, tt.code, tt.msg)
			}
		})
	}
	// Nothing above changed customer c.
	if f := s.customerFeatures("c"); f["lifetime_value"] != 0.0 || f["spend_90d"] != 0.0 {
		t.Errorf("rejected requests changed c: %v", f)
	}
}

func TestServeRestartKeepsFeatures(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.mustCall("PUT", "/v1/customers/r-1", `{"features":{"tier":"gold"}}`, 200)
	s.mustCall("POST", "/v1/events", `{"events":[
		{"customer_id":"r-1","type":"purchase","properties":{"amount":40.5}},
		{"customer_id":"r-1","type":"purchase","properties":{"amount":2}},
		{"customer_id":"r-1","type":"page_view"}]}`, 202)
	before := s.customerFeatures("r-1")
	s.stop()

	s = startServer(t, dir)
	after := s.customerFeatures("r-1")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("features after restart (-before +after):\n%s", diff)
	}
	if after["tier"] != "gold" || after["spend_90d"] != 42.5 || after["page_views"] != 1.0 {
		t.Errorf("features after restart: got %v", after)
	}
}

func TestServeConcurrentEvents(t *testing.T) {
	s := startServer(t, t.TempDir())
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"event_id":"e-%d","customer_id":"busy","type":"page_view","channel":"web"}`, i)
			req, _ := http.NewRequest("POST", s.url+"/v1/events", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 202 {
				errs <- fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := s.customerFeatures("busy")["page_views"]; got != float64(n) {
		t.Errorf("page_views after %d concurrent events: got %v", n, got)
	}
}

// TestServeShutdownFinishesInflight: requests sent before SIGTERM are
// answered, then the process exits cleanly.
func TestServeShutdownFinishesInflight(t *testing.T) {
	s := startServer(t, t.TempDir())
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for range 50 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", s.url+"/v1/events", strings.NewReader(`{"customer_id":"sd","type":"page_view"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return // sent after the listener closed
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	time.Sleep(5 * time.Millisecond)
	s.stop()
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 202 {
			t.Errorf("in-flight request during shutdown: got %d, want 202", st)
		}
	}
}

// runBinary runs the binary with args and returns its exit code and output.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "NEXTBEST_CATALOG=", "NEXTBEST_DATA=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func TestValidateCommand(t *testing.T) {
	code, out, errs := runBinary(t, "validate", testCatalog)
	if code != 0 {
		t.Fatalf("good catalog: exit %d, stderr %s", code, errs)
	}
	for _, want := range []string{testCatalog + ": ok", "channels:", "web, app, call_center, email, sms", "features:", "segments:", "vip, unhappy", "offers:", "web", "call_center"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	code, _, errs = runBinary(t, "validate", "testdata/invalid.yaml")
	if code != 1 {
		t.Fatalf("bad catalog: exit %d, want 1", code)
	}
	wantLines := []string{
		`testdata/invalid.yaml:6:22: segment "vip": rule: invalid operation: == (mismatched types string and int)`,
		`testdata/invalid.yaml:9:21: offer "a": channels: channel "fax" is not one of web, app`,
		`testdata/invalid.yaml:10:24: offer "a": eligible: unknown field no_such_feature`,
		`testdata/invalid.yaml:15:30: offer "b": eligible: unexpected token EOF`,
		`testdata/invalid.yaml:18:9: offer "a": id: duplicate offer id`,
		`testdata/invalid.yaml: 5 errors`,
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) != len(wantLines) {
		t.Fatalf("errors: got %d lines, want %d:\n%s", len(lines), len(wantLines), errs)
	}
	for i, want := range wantLines {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("error line %d:\ngot  %s\nwant %s...", i, lines[i], want)
		}
	}

	if code, _, _ := runBinary(t, "validate"); code != 2 {
		t.Errorf("validate without a file: exit %d, want 2", code)
	}
	if code, _, errs := runBinary(t, "validate", "testdata/no-such.yaml"); code != 1 || !strings.Contains(errs, "no-such.yaml") {
		t.Errorf("missing file: exit %d %s, want 1 naming the file", code, errs)
	}
}

func TestDecideCommand(t *testing.T) {
	// Features written through a server, read by the CLI once it stopped.
	dir := t.TempDir()
	s := startServer(t, dir)
	s.mustCall("POST", "/v1/events", `{"customer_id":"d-1","type":"support_call","channel":"call_center"}`, 202)
	s.stop()

	tests := []struct {
		name   string
		args   []string
		offers []string
	}{
		{"defaults", []string{"--customer", "d-1", "--channel", "web"}, []string{"welcome"}},
		{"from the store", []string{"--customer", "d-1", "--channel", "web", "--data", dir, "--limit", "2"}, []string{"apology", "welcome"}},
		{"unknown in the store", []string{"--customer", "nobody", "--channel", "email", "--data", dir}, []string{"welcome"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"decide", "--catalog", testCatalog, "--now", "2026-11-22T10:00:00Z", "--explain"}, tt.args...)
			code, out, errs := runBinary(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var d decideResponse
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("output %s: %v", out, err)
			}
			if diff := cmp.Diff(tt.offers, d.offerIDs()); diff != "" {
				t.Errorf("offers (-want +got):\n%s", diff)
			}
			if d.Explain == nil || d.Segments == nil {
				t.Errorf("--explain: no explanation in %s", out)
			}
		})
	}

	usage := [][]string{
		{"decide", "--catalog", testCatalog, "--channel", "web"},
		{"decide", "--catalog", testCatalog, "--customer", "c", "--channel", "web", "--limit", "0"},
		{"decide", "--catalog", testCatalog, "--customer", "c", "--channel", "web", "--context", "[1]"},
		{"decide", "--catalog", testCatalog, "--customer", "c", "--channel", "web", "--now", "yesterday"},
	}
	for _, args := range usage {
		if code, _, errs := runBinary(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errs)
		}
	}
	if code, _, errs := runBinary(t, "decide", "--catalog", testCatalog, "--customer", "c", "--channel", "fax"); code != 1 || !strings.Contains(errs, `"fax" is not one of`) {
		t.Errorf("unknown channel: exit %d %s, want 1", code, errs)
	}
}

// storeBackends are the stores a test of the binary runs on: the
// embedded default, and a real redis-server (skipped without one, unless
// NEXTBEST_REQUIRE_REDIS=1); args gives the flags that choose it.
var storeBackends = []struct {
	name string
	args func(t *testing.T) []string
}{
	{"embedded", func(t *testing.T) []string { return nil }},
	{"redis", func(t *testing.T) []string {
		rs := redistest.Start(t, redistest.Options{})
		return []string{"--redis", "redis://" + rs.Addr + "/0"}
	}},
}
