package main

import (
	"context"
	"encoding/json"
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

// summary is the final JSON line.
type summary struct {
	Mode            string   `json:"mode"`
	NextbestRPS     float64  `json:"nextbest_rps"`
	BaselineRPS     float64  `json:"baseline_rps"`
	Ratio           float64  `json:"ratio"`
	P50ms           float64  `json:"p50_ms"`
	P90ms           float64  `json:"p90_ms"`
	P99ms           float64  `json:"p99_ms"`
	P999ms          float64  `json:"p999_ms"`
	BaselineP50ms   float64  `json:"baseline_p50_ms"`
	BaselineP99ms   float64  `json:"baseline_p99_ms"`
	EventsPerSec    float64  `json:"events_per_s,omitempty"`
	Errors          int64    `json:"errors"`
	Rate            int      `json:"rate,omitempty"`
	Conns           int      `json:"conns"`
	Keys            string   `json:"keys"`
	Channels        []string `json:"channels,omitempty"`
	Customers       int      `json:"customers"`
	Pinned          bool     `json:"pinned"`
	RSSMiB          float64  `json:"rss_mib,omitempty"`
	DiskMiB         float64  `json:"disk_mib,omitempty"`
	LoadCustomersPS float64  `json:"load_customers_per_s,omitempty"`
}

// workDir returns the directory a run keeps its binaries, catalog and
// data in: --out, or a temporary one that cleanup removes.
func workDir(o *options) (dir string, cleanup func(), err error) {
	if o.Out != "" {
		return o.Out, func() {}, nil
	}
	d, err := os.MkdirTemp("", "nextbest-bench-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func drive(ctx context.Context, o *options, out io.Writer) error {
	pin, err := pinSelf(o, out)
	if err != nil {
		return err
	}

	dir, cleanup, err := workDir(o)
	if err != nil {
		return err
	}
	defer cleanup()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	base, err := start(ctx, "baseline", pin, self, "--serve-baseline", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer base.stop()

	sum := summary{Mode: o.Mode, Rate: o.Rate, Conns: o.Conns, Keys: o.Keys, Customers: o.Customers, Pinned: pin}
	if o.Mode != "events" {
		sum.Channels = o.Channels
	}
	var nb *process
	url := o.Target
	if url == "" {
		bin, err := buildNextbest(ctx, dir)
		if err != nil {
			return err
		}
		catalog := filepath.Join(dir, "catalog.yaml")
		if err := os.WriteFile(catalog, catalogtest.Generate(catalogtest.Options{Offers: o.Offers, Segments: o.Segments}), 0o644); err != nil {
			return err
		}
		// Without --auth the server runs without access control; with it,
		// every request carries a key of a five-key keyring.
		access := []string{"--insecure-no-auth"}
		if o.Auth {
			keys := filepath.Join(dir, "keys.yaml")
			if err := writeBenchKeys(keys); err != nil {
				return err
			}
			access = []string{"--keys", keys}
		}
		args := append([]string{bin, "serve", "--addr", "127.0.0.1:0", "--catalog", catalog, "--data", filepath.Join(dir, "data"), "--cache-size", "4GiB"}, access...)
		if o.Redis != "" {
			args = append(args, "--redis", o.Redis, "--store-timeout", "20ms")
		}
		args = append(args, o.ServerArg...)
		nb, err = start(ctx, "nextbest", pin, args...)
		if err != nil {
			return err
		}
		defer nb.stop()
		url = nb.url
		fmt.Fprintf(out, "nextbest: %s, generated catalog of %d offers / %d segments, store %s\n", url, o.Offers, o.Segments, storeName(o))
	} else {
		fmt.Fprintf(out, "nextbest: target %s (not started by this run)\n", url)
	}
	fmt.Fprintf(out, "baseline: %s (fasthttp, parses the JSON request, writes a decide-sized JSON response)\n", base.url)

	if o.Target == "" || o.Load {
		t0 := time.Now()
		if err := loadPopulation(ctx, url, o, out); err != nil {
			return err
		}
		took := time.Since(t0)
		sum.LoadCustomersPS = round1(float64(o.Customers) / took.Seconds())
		fmt.Fprintf(out, "population: %d customers loaded through the API in %.1fs (%.0f customers/s)\n", o.Customers, took.Seconds(), sum.LoadCustomersPS)
		if nb != nil {
			fmt.Fprintf(out, "after loading: nextbest RSS %.0f MiB, data on disk %.0f MiB (%.0f bytes/customer)\n",
				rssMiB(nb.pid()), dirMiB(filepath.Join(dir, "data")), dirMiB(filepath.Join(dir, "data"))*(1<<20)/float64(o.Customers))
		}
	}

	clients := map[string]*fasthttp.HostClient{"baseline": newClient(base.url, o.Conns), "nextbest": newClient(url, o.Conns)}
	for _, name := range []string{"baseline", "nextbest"} {
		round(ctx, clients[name], o, o.Warmup, 99) // warm up connections and caches, not measured
	}
	if nb != nil && o.Mode != "events" {
		fmt.Fprintf(out, "after warm-up: nextbest RSS %.0f MiB\n", rssMiB(nb.pid()))
	}

	mode := o.Mode
	if o.Rate > 0 {
		mode += fmt.Sprintf(" open loop at %d req/s", o.Rate)
	} else {
		mode += " closed loop"
	}
	if o.Mode != "events" {
		mode += ", channels " + strings.Join(o.Channels, ",")
	}
	fmt.Fprintf(out, "\nmode %s, %d conns, keys %s, %d rounds of %v per target, alternating\n", mode, o.Conns, o.Keys, o.Rounds, o.Duration)
	fmt.Fprintf(out, "%-6s %-9s %10s %10s %8s %8s %8s %8s %7s\n", "round", "target", "req/s", "events/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "errors")
	results := map[string][]*result{}
	for r := range o.Rounds {
		for _, name := range []string{"baseline", "nextbest"} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res := round(ctx, clients[name], o, o.Duration, uint64(r*1000+1))
			res.target = name
			results[name] = append(results[name], res)
			fmt.Fprintf(out, "%-6d %-9s %10.0f %10.0f %8.3f %8.3f %8.3f %8.3f %7d\n", r+1, name, res.rps(), res.eventsPerSec(),
				ms(percentile(res.lat, .5)), ms(percentile(res.lat, .9)), ms(percentile(res.lat, .99)), ms(percentile(res.lat, .999)), res.errors())
		}
	}
	b, n := median(results["baseline"]), median(results["nextbest"])
	fmt.Fprintf(out, "%-6s %-9s %10.0f %10.0f %8.3f %8.3f %8.3f %8.3f\n", "median", "baseline", b.rps(), b.eventsPerSec(),
		ms(percentile(b.lat, .5)), ms(percentile(b.lat, .9)), ms(percentile(b.lat, .99)), ms(percentile(b.lat, .999)))
	fmt.Fprintf(out, "%-6s %-9s %10.0f %10.0f %8.3f %8.3f %8.3f %8.3f\n", "median", "nextbest", n.rps(), n.eventsPerSec(),
		ms(percentile(n.lat, .5)), ms(percentile(n.lat, .9)), ms(percentile(n.lat, .99)), ms(percentile(n.lat, .999)))
	sum.NextbestRPS, sum.BaselineRPS = round1(n.rps()), round1(b.rps())
	if b.rps() > 0 {
		sum.Ratio = round3(n.rps() / b.rps())
	}
	sum.P50ms, sum.P90ms, sum.P99ms, sum.P999ms = round3(ms(percentile(n.lat, .5))), round3(ms(percentile(n.lat, .9))), round3(ms(percentile(n.lat, .99))), round3(ms(percentile(n.lat, .999)))
	sum.BaselineP50ms, sum.BaselineP99ms = round3(ms(percentile(b.lat, .5))), round3(ms(percentile(b.lat, .99)))
	if o.Mode != "decide" {
		sum.EventsPerSec = round1(n.eventsPerSec())
	}
	for _, name := range []string{"baseline", "nextbest"} {
		for _, r := range results[name] {
			sum.Errors += r.errors()
		}
	}
	if nb != nil {
		sum.RSSMiB = round1(rssMiB(nb.pid()))
		sum.DiskMiB = round1(dirMiB(filepath.Join(dir, "data")))
	}
	fmt.Fprintf(out, "ratio nextbest/baseline: %.2f (req/s, medians); nextbest p99 %.3f ms vs baseline %.3f ms\n", sum.Ratio, sum.P99ms, sum.BaselineP99ms)
	line, _ := json.Marshal(sum)
	fmt.Fprintln(out, string(line))
	if sum.Errors > 0 {
		return fmt.Errorf("%d errors", sum.Errors)
	}
	return nil
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
		fmt.Fprintln(out, "pinned: servers (baseline, nextbest) on CPU 0 via taskset; this load generator on CPU 1 (GOMAXPROCS=1)")
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
func median(rs []*result) *result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b *result) int {
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
