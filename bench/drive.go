package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/nextbest/nextbest/internal/catalogtest"
	apikeys "github.com/nextbest/nextbest/internal/keys" // bench has its own keys (customer keys)
)

// summary is the final JSON line: the decide phase's figures (or, with
// --mode events or mixed, that phase's) at the top level, the events
// phases of a full run under "events".
type summary struct {
	phaseSummary
	Events []phaseSummary `json:"events,omitempty"`
	Driver string         `json:"driver"`
	Errors int64          `json:"errors"`
	// Shed is what nextbest's admission control shed (not errors).
	Shed            int64    `json:"shed"`
	Rate            int      `json:"rate,omitempty"`
	Conns           int      `json:"conns"`
	Keys            string   `json:"keys"`
	Channels        []string `json:"channels,omitempty"`
	Customers       int      `json:"customers"`
	Pinned          bool     `json:"pinned"`
	RSSMiB          float64  `json:"rss_mib,omitempty"`
	DiskMiB         float64  `json:"disk_mib,omitempty"`
	LoadCustomersPS float64  `json:"load_customers_per_s,omitempty"`
	// Memory is the memory run's summary (--mode all).
	Memory *memorySummary `json:"memory,omitempty"`
}

// phaseSummary is one phase's medians. The baseline is the fastjson one;
// echo, the naive encoding/json one. A ratio is null when its baseline had
// no valid round (one where the baseline's core was at least minBusy busy).
type phaseSummary struct {
	Mode          string   `json:"mode"`
	Batch         int      `json:"batch,omitempty"`
	NextbestRPS   float64  `json:"nextbest_rps"`
	BaselineRPS   float64  `json:"baseline_rps"`
	EchoRPS       float64  `json:"echo_rps"`
	Ratio         *float64 `json:"ratio"`      // nextbest/fastjson req/s
	RatioEcho     *float64 `json:"ratio_echo"` // nextbest/echo req/s
	P50ms         float64  `json:"p50_ms"`
	P90ms         float64  `json:"p90_ms"`
	P99ms         float64  `json:"p99_ms"`
	P999ms        float64  `json:"p999_ms"`
	BaselineP50ms float64  `json:"baseline_p50_ms"`
	BaselineP99ms float64  `json:"baseline_p99_ms"`
	EchoP99ms     float64  `json:"echo_p99_ms"`
	P99VsEcho     *float64 `json:"p99_vs_echo"` // nextbest p99 / echo p99
	EventsPerSec  float64  `json:"events_per_s,omitempty"`
	// Server CPU (user + system) per request, in microseconds, and the
	// share of its core each server was busy, medians of the rounds.
	NextbestCPUus float64 `json:"nextbest_cpu_us_per_req"`
	BaselineCPUus float64 `json:"baseline_cpu_us_per_req"`
	EchoCPUus     float64 `json:"echo_cpu_us_per_req"`
	NextbestBusy  float64 `json:"nextbest_busy"`
	BaselineBusy  float64 `json:"baseline_busy"`
	EchoBusy      float64 `json:"echo_busy"`
	// Invalid lists the baseline rounds left out for being under minBusy.
	Invalid []string `json:"invalid,omitempty"`
}

// workDir returns the directory a run keeps its binaries, catalog and
// data in: --out, or a temporary one that cleanup removes.
func workDir(o *options) (dir string, cleanup func(), err error) {
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return "", nil, fmt.Errorf("--out: %w", err)
		}
		return o.Out, func() {}, nil
	}
	d, err := os.MkdirTemp("", "nextbest-bench-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

// minBusy is the share of its core a baseline server must be busy in a
// round for the round to count: below it, the load generator (or another
// process on the machine), not the server, set the pace.
const minBusy = 0.95

// target is a server a run drives.
type target struct {
	name   string // fastjson, echo or nextbest
	url    string
	pid    int // 0: not started by this run, CPU unknown
	client *fasthttp.HostClient
}

// measure is one round of one target.
type measure struct {
	requests, events, errors int64
	// shed is what nextbest's admission control shed in the round (its
	// /metrics): decisions answered degraded, and events or other
	// requests answered 503 with Retry-After, which are not counted in
	// errors: they are the server's documented answer to a load past its
	// bounds, and a closed loop is such a load.
	shed                int64
	elapsed             time.Duration
	p50, p90, p99, p999 time.Duration
	cpu                 time.Duration // the server's, user + system
	busy                float64       // cpu / elapsed; 0 when unknown
}

func (m *measure) rps() float64          { return float64(m.requests) / m.elapsed.Seconds() }
func (m *measure) eventsPerSec() float64 { return float64(m.events) / m.elapsed.Seconds() }

// cpuPerReq is the server's CPU per answered request, in microseconds.
func (m *measure) cpuPerReq() float64 {
	if m.requests == 0 {
		return 0
	}
	return float64(m.cpu.Microseconds()) / float64(m.requests)
}

// loadPhase is one kind of load of a run.
type loadPhase struct {
	mode  string
	batch int
}

// phases are the loads --mode asks for: all is decide, then events in
// batches of --batch, then single events.
func phases(o *options) []loadPhase {
	if o.Mode != "all" {
		return []loadPhase{{o.Mode, o.Batch}}
	}
	ps := []loadPhase{{"decide", o.Batch}, {"events", o.Batch}}
	if o.Batch != 1 {
		ps = append(ps, loadPhase{"events", 1})
	}
	return ps
}

// generator sends one round of a loadPhase to a target.
type generator interface {
	round(ctx context.Context, t *target, p loadPhase, d time.Duration, seed uint64) (*measure, error)
}

// builtinGen is the Go client of this process: it works everywhere, but on
// a pinned core it saturates before a fast server does.
type builtinGen struct{ o *options }

func (g builtinGen) round(ctx context.Context, t *target, p loadPhase, d time.Duration, seed uint64) (*measure, error) {
	o := *g.o
	o.Mode, o.Batch = p.mode, p.batch
	m := startCPU(t.pid)
	r := round(ctx, t.client, &o, d, seed)
	cpu, busy := m.stop()
	return &measure{requests: r.requests, events: r.events, errors: r.errors(), elapsed: r.elapsed,
		p50: percentile(r.lat, .5), p90: percentile(r.lat, .9), p99: percentile(r.lat, .99), p999: percentile(r.lat, .999),
		cpu: cpu, busy: busy}, nil
}

// wrkGen drives targets with wrk, one thread on the generator's core.
type wrkGen struct {
	bin, script, dir string
	o                *options
	pin              bool
	files            map[loadPhase]wrkFile
}

type wrkFile struct {
	path   string
	events float64 // per request
}

func (g *wrkGen) round(ctx context.Context, t *target, p loadPhase, d time.Duration, _ uint64) (*measure, error) {
	f, ok := g.files[p]
	if !ok {
		path, ev, err := wrkRequests(g.dir, g.o, p.mode, p.batch)
		if err != nil {
			return nil, err
		}
		f = wrkFile{path, ev}
		g.files[p] = f
	}
	m := startCPU(t.pid)
	r, err := wrkRound(ctx, g.bin, g.script, f.path, t.url, g.o.Conns, d, g.pin)
	if err != nil {
		return nil, err
	}
	cpu, busy := m.stop()
	us := func(f float64) time.Duration { return time.Duration(f * float64(time.Microsecond)) }
	ok2xx := r.Requests - r.Status
	return &measure{requests: ok2xx, events: int64(float64(ok2xx) * f.events),
		errors: r.Connect + r.Read + r.Write + r.Status + r.Timeout, elapsed: time.Duration(r.DurationUS) * time.Microsecond,
		p50: us(r.P50us), p90: us(r.P90us), p99: us(r.P99us), p999: us(r.P999us), cpu: cpu, busy: busy}, nil
}

// newGenerator picks the load generator --driver asks for: wrk when it is
// installed (auto), else the built-in one, saying what that means.
func newGenerator(o *options, dir string, pin bool, out io.Writer) (generator, string, error) {
	driver := o.Driver
	wrkBin, lookErr := exec.LookPath("wrk")
	if driver == "auto" {
		driver = "wrk"
		if lookErr != nil || o.Quick || o.Rate > 0 {
			driver = "builtin"
		}
		switch {
		case o.Rate > 0:
			fmt.Fprintln(out, "driver: built-in (--rate: wrk has no open loop)")
		case o.Quick:
			fmt.Fprintln(out, "driver: built-in (--quick smoke run; figures are not comparable)")
		case lookErr != nil:
			fmt.Fprintln(out, "driver: built-in: wrk is not installed (apt-get install -y wrk). The built-in generator saturates its core before a fast server does: baseline rounds will likely be under 95% busy and left out; install wrk for trustworthy ratios")
		}
	}
	if driver == "builtin" {
		return builtinGen{o}, "builtin", nil
	}
	if lookErr != nil {
		return nil, "", fmt.Errorf("--driver wrk: wrk is not installed (apt-get install -y wrk): %w", lookErr)
	}
	if o.Rate > 0 {
		return nil, "", errors.New("--driver wrk has no open loop: use --driver builtin with --rate")
	}
	script, err := writeWrkScript(dir)
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintf(out, "driver: wrk (%s), 1 thread, %d connections%s\n", wrkBin, o.Conns, map[bool]string{true: ", pinned to CPU 1", false: ""}[pin])
	return &wrkGen{bin: wrkBin, script: script, dir: dir, o: o, pin: pin, files: map[loadPhase]wrkFile{}}, "wrk", nil
}

func drive(ctx context.Context, o *options, out io.Writer) (*summary, error) {
	pin, err := pinSelf(o, out)
	if err != nil {
		return nil, err
	}

	dir, cleanup, err := workDir(o)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	gen, driver, err := newGenerator(o, dir, pin, out)
	if err != nil {
		return nil, err
	}
	base, err := start(ctx, "baseline", pin, self, "--serve-baseline", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer base.stop()
	echo, err := start(ctx, "echo", pin, self, "--serve-echo", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer echo.stop()

	sum := summary{Driver: driver, Rate: o.Rate, Conns: o.Conns, Keys: o.Keys, Customers: o.Customers, Pinned: pin}
	if o.Mode != "events" {
		sum.Channels = o.Channels
	}
	var nb *process
	url := o.Target
	if url == "" {
		bin, catalog, err := prepareNextbest(ctx, o, dir)
		if err != nil {
			return nil, err
		}
		// Without --auth the server runs without access control; with it,
		// every request carries a key of a five-key keyring.
		access := []string{"--insecure-no-auth"}
		if o.Auth {
			keys := filepath.Join(dir, "keys.yaml")
			if err := writeBenchKeys(keys); err != nil {
				return nil, err
			}
			access = []string{"--keys", keys}
		}
		args := append([]string{bin, "serve", "--addr", "127.0.0.1:0", "--catalog", catalog, "--data", filepath.Join(dir, "data"), "--cache-size", "4GiB"}, access...)
		if o.Redis != "" {
			args = append(args, "--redis", o.Redis, "--store-timeout", "20ms")
		}
		if o.Quick {
			// A smoke run on a busy machine (CI): admission control
			// would shed requests the run counts as errors.
			args = append(args, "--no-admission")
		}
		args = append(args, o.ServerArg...)
		nb, err = start(ctx, "nextbest", pin, args...)
		if err != nil {
			return nil, err
		}
		defer nb.stop()
		url = nb.url
		fmt.Fprintf(out, "nextbest: %s, generated catalog of %d offers / %d segments, store %s\n", url, o.Offers, o.Segments, storeName(o))
	} else {
		fmt.Fprintf(out, "nextbest: target %s (not started by this run: its CPU is not measured)\n", url)
	}
	fmt.Fprintf(out, "baseline fastjson: %s (fasthttp + fastjson: parses the JSON request, appends a decide-sized JSON response)\n", base.url)
	fmt.Fprintf(out, "baseline echo:     %s (net/http + encoding/json: decodes the request into a struct, encodes a decide-sized response)\n", echo.url)

	if o.Target == "" || o.Load {
		t0 := time.Now()
		if err := loadPopulation(ctx, url, o, out); err != nil {
			return nil, err
		}
		took := time.Since(t0)
		sum.LoadCustomersPS = round1(float64(o.Customers) / took.Seconds())
		fmt.Fprintf(out, "population: %d customers loaded through the API in %.1fs (%.0f customers/s)\n", o.Customers, took.Seconds(), sum.LoadCustomersPS)
		if nb != nil {
			fmt.Fprintf(out, "after loading: nextbest RSS %.0f MiB, data on disk %.0f MiB (%.0f bytes/customer)\n",
				rssMiB(nb.pid()), dirMiB(filepath.Join(dir, "data")), dirMiB(filepath.Join(dir, "data"))*(1<<20)/float64(o.Customers))
		}
	}

	targets := []*target{
		{name: "fastjson", url: base.url, pid: base.pid(), client: newClient(base.url, o.Conns)},
		{name: "echo", url: echo.url, pid: echo.pid(), client: newClient(echo.url, o.Conns)},
		{name: "nextbest", url: url, client: newClient(url, o.Conns)},
	}
	if nb != nil {
		targets[2].pid = nb.pid()
	}
	for i, p := range phases(o) {
		ps, err := drivePhase(ctx, gen, targets, o, p, out)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			sum.phaseSummary = *ps.summary
			if nb != nil && p.mode != "events" {
				fmt.Fprintf(out, "after the %s phase: nextbest RSS %.0f MiB\n", p.mode, rssMiB(nb.pid()))
			}
		} else {
			sum.Events = append(sum.Events, *ps.summary)
		}
		sum.Errors += ps.errors
		sum.Shed += ps.shed
	}
	if nb != nil {
		sum.RSSMiB = round1(rssMiB(nb.pid()))
		sum.DiskMiB = round1(dirMiB(filepath.Join(dir, "data")))
	}
	return &sum, nil
}

type phaseOutcome struct {
	summary *phaseSummary
	errors  int64
	shed    int64
}

// shedCounts reads what nextbest's admission control has shed so far:
// every class, and the classes whose shed requests are refused (503)
// rather than answered degraded. ok is false for a baseline or when the
// server's /metrics cannot be read.
func shedCounts(t *target) (shed, refused float64, ok bool) {
	if t.name != "nextbest" || t.client == nil {
		return 0, 0, false
	}
	const name = "nextbest_requests_shed_total"
	shed, ok = metricSum(t.client, name)
	if !ok {
		return 0, 0, false
	}
	events, _ := metricSum(t.client, name+`{class="events"}`)
	other, _ := metricSum(t.client, name+`{class="other"}`)
	return shed, events + other, true
}

// drivePhase warms every target up, then measures o.Rounds rounds of p
// per target, alternating targets within a round so machine drift hits
// them alike, and prints the rounds, the medians and the ratios.
func drivePhase(ctx context.Context, gen generator, targets []*target, o *options, p loadPhase, out io.Writer) (*phaseOutcome, error) {
	for _, t := range targets {
		if _, err := gen.round(ctx, t, p, o.Warmup, 99); err != nil { // connections and caches, not measured
			return nil, fmt.Errorf("warm-up %s: %w", t.name, err)
		}
	}
	desc := p.mode
	if p.mode != "decide" {
		desc += fmt.Sprintf(" (batches of %d)", p.batch)
	}
	if o.Rate > 0 {
		desc += fmt.Sprintf(", open loop at %d req/s", o.Rate)
	} else {
		desc += ", closed loop"
	}
	if p.mode != "events" {
		desc += ", channels " + strings.Join(o.Channels, ",")
	}
	fmt.Fprintf(out, "\nphase %s, %d conns, keys %s, %d rounds of %v per target, alternating\n", desc, o.Conns, o.Keys, o.Rounds, o.Duration)
	fmt.Fprintf(out, "%-6s %-9s %10s %10s %8s %8s %8s %8s %11s %6s %7s %6s\n", "round", "target", "req/s", "events/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "cpu us/req", "busy", "errors", "shed")
	row := func(label string, t *target, m *measure, note string) {
		cpu, busy := "-", "-"
		if t.pid > 0 {
			cpu, busy = fmt.Sprintf("%.1f", m.cpuPerReq()), fmt.Sprintf("%.0f%%", m.busy*100)
		}
		fmt.Fprintf(out, "%-6s %-9s %10.0f %10.0f %8.3f %8.3f %8.3f %8.3f %11s %6s %7d %6d%s\n", label, t.name, m.rps(), m.eventsPerSec(),
			ms(m.p50), ms(m.p90), ms(m.p99), ms(m.p999), cpu, busy, m.errors, m.shed, note)
	}
	res := &phaseOutcome{summary: &phaseSummary{Mode: p.mode}}
	if p.mode != "decide" {
		res.summary.Batch = p.batch
	}
	valid, all := map[string][]*measure{}, map[string][]*measure{}
	for r := range o.Rounds {
		for _, t := range targets {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			shedBefore, refusedBefore, counted := shedCounts(t)
			m, err := gen.round(ctx, t, p, o.Duration, uint64(r*1000+1))
			if err != nil {
				return nil, fmt.Errorf("round %d %s: %w", r+1, t.name, err)
			}
			if counted {
				if shed, refused, ok := shedCounts(t); ok {
					m.shed = int64(shed - shedBefore)
					m.errors -= min(m.errors, int64(refused-refusedBefore))
				}
			}
			res.shed += m.shed
			res.errors += m.errors
			all[t.name] = append(all[t.name], m)
			note := ""
			if t.pid > 0 && t.name != "nextbest" && m.busy < minBusy {
				note = fmt.Sprintf("  INVALID: %s was %.0f%% busy (< %.0f%%): the generator or another process set the pace", t.name, m.busy*100, minBusy*100)
				res.summary.Invalid = append(res.summary.Invalid, fmt.Sprintf("round %d %s %.0f%% busy", r+1, t.name, m.busy*100))
			} else {
				valid[t.name] = append(valid[t.name], m)
			}
			if t.pid > 0 && t.name == "nextbest" && m.busy < minBusy {
				note = fmt.Sprintf("  (%.0f%% busy: it waited, on store writes or on the generator)", m.busy*100)
			}
			row(strconv.Itoa(r+1), t, m, note)
		}
	}
	// The medians of a target without a valid round are still shown (and
	// its figures summarised), but give no ratio.
	med := map[string]*measure{}
	for _, t := range targets {
		if rs := valid[t.name]; len(rs) > 0 {
			med[t.name] = median(rs)
			row("median", t, med[t.name], "")
		} else {
			med[t.name] = median(all[t.name])
			row("median", t, med[t.name], "  (of invalid rounds: no ratio)")
		}
	}
	s := res.summary
	n, b, e := med["nextbest"], med["fastjson"], med["echo"]
	{
		s.NextbestRPS, s.P50ms, s.P90ms, s.P99ms, s.P999ms = round1(n.rps()), round3(ms(n.p50)), round3(ms(n.p90)), round3(ms(n.p99)), round3(ms(n.p999))
		s.NextbestCPUus, s.NextbestBusy = round1(n.cpuPerReq()), round3(n.busy)
		if p.mode != "decide" {
			s.EventsPerSec = round1(n.eventsPerSec())
		}
	}
	{
		s.BaselineRPS, s.BaselineP50ms, s.BaselineP99ms = round1(b.rps()), round3(ms(b.p50)), round3(ms(b.p99))
		s.BaselineCPUus, s.BaselineBusy = round1(b.cpuPerReq()), round3(b.busy)
	}
	{
		s.EchoRPS, s.EchoP99ms = round1(e.rps()), round3(ms(e.p99))
		s.EchoCPUus, s.EchoBusy = round1(e.cpuPerReq()), round3(e.busy)
	}
	ratio := func(num, den float64) *float64 {
		if num <= 0 || den <= 0 {
			return nil
		}
		r := round3(num / den)
		return &r
	}
	if len(valid["fastjson"]) > 0 {
		s.Ratio = ratio(n.rps(), b.rps())
	}
	if len(valid["echo"]) > 0 {
		s.RatioEcho = ratio(n.rps(), e.rps())
		s.P99VsEcho = ratio(ms(n.p99), ms(e.p99))
	}
	fmt.Fprintf(out, "ratio nextbest/echo: %s (target >= 1.0); nextbest/fastjson: %s (target >= 0.6); req/s, medians of valid rounds\n", fmtRatio(s.RatioEcho), fmtRatio(s.Ratio))
	if n.cpuPerReq() > 0 {
		fmt.Fprintf(out, "server CPU per request: nextbest %.1f us, echo %.1f us, fastjson %.1f us\n", s.NextbestCPUus, s.EchoCPUus, s.BaselineCPUus)
	}
	fmt.Fprintf(out, "p99: nextbest %.3f ms, echo %.3f ms (ratio %s, target <= 1.0), fastjson %.3f ms\n", s.P99ms, s.EchoP99ms, fmtRatio(s.P99VsEcho), s.BaselineP99ms)
	return res, nil
}

func fmtRatio(r *float64) string {
	if r == nil {
		return "none (no valid baseline round)"
	}
	return fmt.Sprintf("%.2f", *r)
}

// pinSelf pins this load generator to CPU 1 when o asks for it (servers
// then go to CPU 0) and reports whether it did.
func pinSelf(o *options, out io.Writer) (bool, error) {
	pin := o.Pin == "on"
	if o.Pin == "auto" {
		_, err := exec.LookPath("taskset")
		pin = err == nil && runtime.NumCPU() >= 2
	}
	if pin {
		var set unix.CPUSet
		set.Set(1)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return false, fmt.Errorf("pin the load generator to CPU 1: %w", err)
		}
		runtime.GOMAXPROCS(1)
		fmt.Fprintln(out, "pinned: servers (fastjson, echo, nextbest) on CPU 0 via taskset (GOMAXPROCS=1); this process and wrk on CPU 1")
	} else {
		fmt.Fprintln(out, "not pinned: servers and load generator share all CPUs")
	}
	return pin, nil
}

func storeName(o *options) string {
	if o.Redis != "" {
		return "redis " + o.Redis
	}
	return "embedded"
}

// median returns the round with the median throughput.
func median(rs []*measure) *measure {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b *measure) int {
		switch {
		case a.rps() < b.rps():
			return -1
		case a.rps() > b.rps():
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// loadPopulation writes the generated population through the real API:
// each customer's profile with PUT /v1/customers/{id}, their event history
// with batched POST /v1/events, from o.Conns concurrent workers.
func loadPopulation(ctx context.Context, url string, o *options, out io.Writer) error {
	c := newClient(url, o.Conns)
	pop := catalogtest.Population{Now: time.Now().UTC().Add(-time.Minute)}
	const perBatch = 50 // customers per events request
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err }) }
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				fmt.Fprintf(out, "  loading population: %d/%d customers\n", done.Load(), o.Customers)
			}
		}
	}()
	defer close(stopProgress)
	var wg sync.WaitGroup
	for range o.Conns {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil && firstErr == nil {
				lo := int(next.Add(perBatch)) - perBatch
				if lo >= o.Customers {
					return
				}
				hi := min(lo+perBatch, o.Customers)
				var events []map[string]any
				for i := lo; i < hi; i++ {
					cust := pop.Customer(i)
					body, _ := json.Marshal(map[string]any{"features": cust.AttrsJSON()})
					prepareMethod(req, c.Addr, fasthttp.MethodPut, "/v1/customers/"+cust.ID, body)
					if err := doRetrying(ctx, c, req, resp); err != nil || resp.StatusCode() != 200 {
						fail(fmt.Errorf("PUT customer %s: %v %d %s", cust.ID, err, resp.StatusCode(), resp.Body()))
						return
					}
					for _, ev := range cust.Events {
						e := map[string]any{"customer_id": ev.CustomerID, "type": ev.Type, "ts": ev.Time.UTC().Format(time.RFC3339Nano)}
						if ev.Channel != "" {
							e["channel"] = ev.Channel
						}
						if len(ev.Properties) > 0 {
							e["properties"] = ev.Properties
						}
						events = append(events, e)
					}
				}
				for len(events) > 0 {
					n := min(len(events), 1000)
					body, _ := json.Marshal(map[string]any{"events": events[:n]})
					events = events[n:]
					prepareMethod(req, c.Addr, fasthttp.MethodPost, "/v1/events", body)
					if err := doRetrying(ctx, c, req, resp); err != nil || resp.StatusCode() != 202 {
						fail(fmt.Errorf("POST events: %v %d %s", err, resp.StatusCode(), resp.Body()))
						return
					}
				}
				done.Add(int64(hi - lo))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// doRetrying sends req as a well-behaved bulk client does: a 503 with
// Retry-After (the server shed the request, or its store is briefly
// unavailable) is retried after the time it asks for, a few times.
func doRetrying(ctx context.Context, c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) error {
	for try := 0; ; try++ {
		err := c.DoTimeout(req, resp, 30*time.Second)
		after := resp.Header.Peek(fasthttp.HeaderRetryAfter)
		if err != nil || resp.StatusCode() != fasthttp.StatusServiceUnavailable || len(after) == 0 || try == 10 {
			return err
		}
		secs, _ := strconv.Atoi(string(after))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(max(secs, 1)) * time.Second):
		}
	}
}

func prepareMethod(req *fasthttp.Request, host, method, path string, body []byte) {
	prepare(req, host, path, body)
	req.Header.SetMethod(method)
}

// writeBenchKeys writes a keys file of five keys with every scope and sets
// the Authorization header to the fourth.
func writeBenchKeys(file string) error {
	var b strings.Builder
	b.WriteString("keys:\n")
	for i := range 5 {
		key := apikeys.Generate()
		if i == 3 {
			authorization = "Bearer " + key
		}
		fmt.Fprintf(&b, "  - {name: bench-%d, hash: %q, scopes: [decide, events, profiles, admin]}\n", i, apikeys.Hash(key))
	}
	return os.WriteFile(file, []byte(b.String()), 0o600)
}
