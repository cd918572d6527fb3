package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

func TestPercentile(t *testing.T) {
	ds := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ds(7), 0.99, 7},
		{"median of 100", hundred, 0.5, 50},
		{"p99 of 100", hundred, 0.99, 99},
		{"p99.9 of 100 is the max", hundred, 0.999, 100},
		{"p0 is the min", hundred, 0, 1},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

// TestScheduleCountsFromScheduledTime checks the open loop's accounting:
// a request due at t but sent late has its latency counted from t.
func TestScheduleCountsFromScheduledTime(t *testing.T) {
	start := time.Unix(1000, 0)
	s := newSchedule(start, 10*time.Millisecond, 100)
	tests := []struct {
		i    int
		want time.Time
	}{{0, start}, {1, start.Add(10 * time.Millisecond)}, {99, start.Add(990 * time.Millisecond)}}
	for _, tt := range tests {
		if got := s.at(tt.i); !got.Equal(tt.want) {
			t.Errorf("at(%d) = %v, want %v", tt.i, got, tt.want)
		}
	}
	// A server that stalls 100ms at the first request: in an open loop the
	// ten requests due meanwhile wait, and their latency includes it.
	done := start.Add(100 * time.Millisecond)
	for i := range 10 {
		lat := done.Sub(s.at(i))
		if want := time.Duration(100-10*i) * time.Millisecond; lat != want {
			t.Errorf("request %d: latency %v, want %v", i, lat, want)
		}
	}
}

func TestKeysInRange(t *testing.T) {
	for _, kind := range []string{"uniform", "zipf"} {
		k := newKeys(kind, 1.1, 1000, 1)
		hits := map[int]int{}
		for range 100000 {
			n := k.next()
			if n < 0 || n >= 1000 {
				t.Fatalf("%s: key %d out of [0, 1000)", kind, n)
			}
			hits[n]++
		}
		if kind == "zipf" && hits[0] < 100000/20 {
			t.Errorf("zipf: key 0 drawn %d times in 100000, want it hot", hits[0])
		}
		if kind == "uniform" && len(hits) < 990 {
			t.Errorf("uniform: only %d distinct keys of 1000", len(hits))
		}
	}
}

func TestRequestBodiesAreValidJSON(t *testing.T) {
	for _, mode := range []string{"decide", "events", "mixed"} {
		k := newKeys("uniform", 1.1, 100, 1)
		for i := range 20 {
			body, path, n := request(nil, mode, 5, channels, k, i)
			if err := fastjson.ValidateBytes(body); err != nil {
				t.Fatalf("%s #%d: %v in %s", mode, i, err, body)
			}
			if (path == "/v1/events") != (n > 0) {
				t.Errorf("%s #%d: path %s with %d events", mode, i, path, n)
			}
		}
	}
}

func TestSummaryJSONShape(t *testing.T) {
	r := 0.5
	b, err := json.Marshal(summary{phaseSummary: phaseSummary{Mode: "decide", NextbestRPS: 1, BaselineRPS: 2, Ratio: &r},
		Events: []phaseSummary{{Mode: "events", Batch: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mode", "nextbest_rps", "baseline_rps", "echo_rps", "ratio", "ratio_echo", "p50_ms", "p99_ms", "baseline_p99_ms", "echo_p99_ms", "p99_vs_echo",
		"nextbest_cpu_us_per_req", "baseline_cpu_us_per_req", "echo_cpu_us_per_req", "nextbest_busy", "baseline_busy", "echo_busy", "events", "driver", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary JSON lacks %q: %s", k, b)
		}
	}
	if m["ratio_echo"] != nil {
		t.Errorf("ratio_echo = %v, want null when unknown", m["ratio_echo"])
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "4242 (nextbest) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 4 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 0 0", 30 * time.Millisecond, false},
		{"truncated", "7 (x) R 1 7", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tt := range tests {
		got, err := parseStatCPU([]byte(tt.stat))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: parseStatCPU = %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 1s test @ http://x\nWRKJSON {\"requests\":100,\"duration_us\":1000000,\"connect\":0,\"read\":1,\"write\":0,\"status\":2,\"timeout\":0,\"p50_us\":120,\"p90_us\":200,\"p99_us\":900,\"p999_us\":1500}\n"
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 100 || r.Status != 2 || r.Read != 1 || r.P99us != 900 {
		t.Errorf("parseWrk = %+v", r)
	}
	if _, err := parseWrk([]byte("Running 1s test\n")); err == nil {
		t.Error("parseWrk without a report: no error")
	}
}

func TestPhases(t *testing.T) {
	tests := []struct {
		mode  string
		batch int
		want  []loadPhase
	}{
		{"all", 100, []loadPhase{{"decide", 100}, {"events", 100}, {"events", 1}}},
		{"all", 1, []loadPhase{{"decide", 1}, {"events", 1}}},
		{"decide", 100, []loadPhase{{"decide", 100}}},
		{"events", 10, []loadPhase{{"events", 10}}},
	}
	for _, tt := range tests {
		got := phases(&options{Mode: tt.mode, Batch: tt.batch})
		if !slices.Equal(got, tt.want) {
			t.Errorf("phases(%s, %d) = %v, want %v", tt.mode, tt.batch, got, tt.want)
		}
	}
}

// fakeGen returns canned rounds: busy is each target's busy share.
type fakeGen struct{ busy map[string]float64 }

func (g fakeGen) round(_ context.Context, t *target, _ loadPhase, d time.Duration, _ uint64) (*measure, error) {
	rps := map[string]int64{"fastjson": 90000, "echo": 50000, "nextbest": 60000}[t.name]
	return &measure{requests: rps, elapsed: time.Second, p99: time.Millisecond, cpu: time.Duration(g.busy[t.name] * float64(time.Second)), busy: g.busy[t.name]}, nil
}

// TestInvalidBaselineRounds checks that a baseline round under 95% busy
// is reported as invalid and gives no ratio.
func TestInvalidBaselineRounds(t *testing.T) {
	tests := []struct {
		name                string
		busy                map[string]float64
		wantRatio, wantEcho bool
		wantInvalid         int
	}{
		{"all saturated", map[string]float64{"fastjson": 0.99, "echo": 0.98, "nextbest": 0.99}, true, true, 0},
		{"fastjson starved", map[string]float64{"fastjson": 0.85, "echo": 0.98, "nextbest": 0.99}, false, true, 3},
		{"echo starved", map[string]float64{"fastjson": 0.99, "echo": 0.5, "nextbest": 0.99}, true, false, 3},
	}
	for _, tt := range tests {
		targets := []*target{{name: "fastjson", pid: 1}, {name: "echo", pid: 2}, {name: "nextbest", pid: 3}}
		var out bytes.Buffer
		res, err := drivePhase(context.Background(), fakeGen{tt.busy}, targets, &options{Rounds: 3, Duration: time.Second, Channels: []string{"web"}}, loadPhase{"decide", 1}, &out)
		if err != nil {
			t.Fatal(err)
		}
		s := res.summary
		if (s.Ratio != nil) != tt.wantRatio || (s.RatioEcho != nil) != tt.wantEcho || len(s.Invalid) != tt.wantInvalid {
			t.Errorf("%s: ratio %v, ratio_echo %v, invalid %v; want ratio %v, echo %v, %d invalid\n%s", tt.name, s.Ratio, s.RatioEcho, s.Invalid, tt.wantRatio, tt.wantEcho, tt.wantInvalid, out.String())
		}
		if got := strings.Count(out.String(), "INVALID"); got != tt.wantInvalid {
			t.Errorf("%s: %d rounds marked INVALID, want %d\n%s", tt.name, got, tt.wantInvalid, out.String())
		}
		if tt.wantEcho && *s.RatioEcho != 1.2 {
			t.Errorf("%s: ratio_echo %v, want 1.2", tt.name, *s.RatioEcho)
		}
	}
}

// TestWrkRound runs the wrk driver for one second against a loopback
// server: the script loads the requests file, sends them and reports.
func TestWrkRound(t *testing.T) {
	wrkBin, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (apt-get install -y wrk)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var decide, events atomic.Int64
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if fastjson.ValidateBytes(c.PostBody()) != nil {
			c.SetStatusCode(400)
			return
		}
		switch string(c.Path()) {
		case "/v1/decide":
			decide.Add(1)
		case "/v1/events":
			events.Add(1)
			c.SetStatusCode(202)
		default:
			c.SetStatusCode(404)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	dir := t.TempDir()
	script, err := writeWrkScript(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := &options{Customers: 50, Keys: "uniform", Channels: channels, Conns: 2}
	reqs, perReq, err := wrkRequests(dir, o, "mixed", 10)
	if err != nil {
		t.Fatal(err)
	}
	if perReq <= 0 || perReq >= 10 {
		t.Errorf("mixed: %v events per request, want between 0 and 10", perReq)
	}
	r, err := wrkRound(context.Background(), wrkBin, script, reqs, "http://"+ln.Addr().String(), 2, time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Status != 0 || r.Requests > decide.Load()+events.Load() || events.Load() == 0 {
		t.Errorf("wrk report %+v; server saw %d decide and %d events requests", r, decide.Load(), events.Load())
	}
}

// TestQuickRun runs the driver end to end in --quick mode, as CI does: it
// must print the table and end with the JSON line, with zero errors.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and drives load for several seconds")
	}
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--quick", "--pin", "off")
	cmd.Dir = ".." // the repository root, where ./cmd/nextbest is
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench --quick: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last line is not the JSON summary: %v\n%s", err, out.String())
	}
	if s.Errors != 0 || s.NextbestRPS <= 0 || s.BaselineRPS <= 0 {
		t.Errorf("summary %+v, want positive rates and no errors", s)
	}
	if !strings.Contains(out.String(), "median nextbest") {
		t.Errorf("no table in the output:\n%s", out.String())
	}
	if m := s.Memory; m == nil || len(m.Points) != 2 || m.Points[1].RSSMiB <= 0 || m.Errors != 0 {
		t.Errorf("memory summary %+v, want two points with their RSS and no errors", m)
	}
}

// TestPhasedCountsShedAndAdmitted runs the overload run's open loop
// against a loopback server that sheds every other request, alternately
// as a 503 overloaded and as a decision marked "reason":"overload": every
// scheduled request is counted once, as admitted or shed.
func TestPhasedCountsShedAndAdmitted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		switch n.Add(1) % 4 {
		case 1:
			c.Response.Header.Set("Retry-After", "1")
			c.SetStatusCode(503)
			c.SetBodyString(`{"error":{"code":"overloaded","message":"server overloaded"}}`)
		case 3:
			c.SetBodyString(`{"offers":[],"degraded":true,"reason":"overload"}`)
		default:
			c.SetBodyString(`{"offers":[{"id":"a"}],"degraded":false}`)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	o := &options{OverloadConns: 8, Customers: 10, Keys: "uniform", Channels: []string{"web"}, Batch: 1}
	c := newClient("http://"+ln.Addr().String(), 8)
	res := phased(context.Background(), c, o, "decide", []phase{{200, 250 * time.Millisecond}, {100, 100 * time.Millisecond}}, 1)
	var admitted, shed int64
	for i, r := range res {
		if got := r.admitted.Load() + r.shed.Load() + r.failed.Load() + r.unsent.Load(); got != int64(r.scheduled) {
			t.Errorf("phase %d: %d requests accounted for, %d scheduled", i, got, r.scheduled)
		}
		if r.failed.Load() > 0 {
			t.Errorf("phase %d: %d failed: %s", i, r.failed.Load(), *r.firstFailure.Load())
		}
		admitted += r.admitted.Load()
		shed += r.shed.Load()
	}
	if total := admitted + shed; total != 60 || admitted != 30 || shed != 30 {
		t.Errorf("admitted %d, shed %d; want 30 and 30 of 60", admitted, shed)
	}
}

// TestShedCounts: what admission control shed is read from nextbest's
// /metrics, every class and the refused ones apart, and a baseline has
// none.
func TestShedCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := "# HELP nextbest_requests_shed_total x\n" +
		"nextbest_requests_shed_total{class=\"decide\"} 7\n" +
		"nextbest_requests_shed_total{class=\"events\"} 3\n" +
		"nextbest_requests_shed_total{class=\"other\"} 1\n" +
		"nextbest_requests_shed_totals 100\n" +
		"go_memstats_heap_idle_bytes 3145728\n" +
		"go_memstats_heap_released_bytes 1048576\n"
	go fasthttp.Serve(ln, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(body) })
	url := "http://" + ln.Addr().String()
	shed, refused, ok := shedCounts(&target{name: "nextbest", url: url, client: newClient(url, 1)})
	if !ok || shed != 11 || refused != 4 {
		t.Errorf("shedCounts = %v, %v, %v; want 11, 4, true", shed, refused, ok)
	}
	if _, _, ok := shedCounts(&target{name: "echo", url: url, client: newClient(url, 1)}); ok {
		t.Error("shedCounts of a baseline: ok; want none")
	}
	if got := heapFreeMiB(newClient(url, 1)); got != 2 {
		t.Errorf("heapFreeMiB = %v, want 2", got)
	}
}
