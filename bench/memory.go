package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

// memorySummary is the final JSON line of --mode memory.
type memorySummary struct {
	Mode string `json:"mode"`
	// Points are the populations measured, each loaded through
	// POST /v1/customers:import and decided once per customer.
	Points []memoryPoint `json:"points"`
	// BytesPerCustomer is the RSS slope between the first two points:
	// what one more cached customer costs the server.
	BytesPerCustomer float64 `json:"bytes_per_customer"`
	// HeapBytesPerCustomer is the same slope of the Go heap in use.
	HeapBytesPerCustomer float64 `json:"heap_bytes_per_customer"`
	// PutPerSec and ImportPerSec load the same profiles, one PUT
	// /v1/customers/{id} per customer (--conns at once) and through the
	// import (one part at a time), in the same run; ImportVsPut is their
	// ratio.
	PutPerSec    float64 `json:"put_customers_per_s"`
	ImportPerSec float64 `json:"import_customers_per_s"`
	ImportVsPut  float64 `json:"import_vs_put"`
	Pinned       bool    `json:"pinned"`
	Errors       int64   `json:"errors"`
}

type memoryPoint struct {
	Customers int `json:"customers"`
	// ImportPerSec is the import of this point's new customers, with
	// their event history; DecidePerSec the decisions, one per new
	// customer, from --conns connections.
	ImportPerSec float64 `json:"import_customers_per_s"`
	DecidePerSec float64 `json:"decide_per_s"`
	RSSMiB       float64 `json:"rss_mib"`
	HeapMiB      float64 `json:"heap_inuse_mib"`
	// HeapFreeMiB is heap memory free but not yet returned to the
	// system: resident, holding nothing.
	HeapFreeMiB float64 `json:"heap_free_mib"`
	// Offline: this point's customers were written by nextbest import
	// --data into the stopped node's store; StartupS is the node's
	// restart on that data dir (to /readyz 200), DiskMiB its size, and
	// DecidePerSec covers every customer, from an empty cache.
	Offline  bool    `json:"offline,omitempty"`
	StartupS float64 `json:"startup_s,omitempty"`
	DiskMiB  float64 `json:"disk_mib,omitempty"`
}

// settleMax bounds the wait for a server's resident set to settle.
const settleMax = 90 * time.Second

// settledRSS returns the resident set of process pid, in MiB, once the
// collector's tuning settled (nextbest_gc_percent, read through c, the
// same for 5 seconds: the server lowers GOGC step by step once a load
// ends, then returns the free heap) and the resident set shrank by less
// than 1% over those 5 seconds; or after limit.
func settledRSS(ctx context.Context, c *fasthttp.HostClient, pid int, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	last := rssMiB(pid)
	gc, _ := metricSum(c, "nextbest_gc_percent")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Second)
		now := rssMiB(pid)
		nowGC, _ := metricSum(c, "nextbest_gc_percent")
		if now > last*0.99 && nowGC == gc {
			return now
		}
		last, gc = now, nowGC
	}
	return last
}

// importOffline writes customers lo to hi-1 of pop into the embedded
// store at dataDir with nextbest import --data (the node stopped), the
// lines streamed to its standard input.
func importOffline(ctx context.Context, bin, catalog, dataDir string, pop catalogtest.Population, prefix string, lo, hi int) error {
	cmd := exec.CommandContext(ctx, bin, "import", "--data", dataDir, "--catalog", catalog, "--on-error", "fail", "--no-progress", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	var werr error
	for part := range generateParts(ctx, pop, prefix, lo, hi, true) {
		if werr == nil {
			_, werr = stdin.Write(part)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("nextbest import --data: %w\n%s", err, out.String())
	}
	if werr != nil {
		return fmt.Errorf("nextbest import --data: %w", werr)
	}
	return ctx.Err()
}

// importPartBytes is the body of one import request, under the server's
// default --max-import-body (64 MiB).
const importPartBytes = 16 << 20

// measureMemory starts nextbest with a cache large
// enough for every customer, measures the bulk path against one PUT per
// customer, then loads the generated population up to each of the
// --memory-points through POST /v1/customers:import, decides once for
// each new customer and reads the server's resident set size
// (/proc/<pid>/status VmRSS) and Go heap in use (its /metrics): the slope
// between the first two points is the bytes a cached customer costs.
// --mode memory and --mode all run it.
func measureMemory(ctx context.Context, o *options, out io.Writer) (*memorySummary, error) {
	points := o.MemoryPoints
	if o.Quick {
		points = []int{2000, 20000}
	}
	if o.Memory10M {
		points = append(points, 10_000_000)
	}
	pin, err := pinSelf(o, out)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := workDir(o)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	bin, catalog, err := prepareNextbest(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data-memory")
	args := []string{bin, "serve", "--addr", "127.0.0.1:0", "--catalog", catalog, "--data", dataDir,
		"--cache-size", o.MemoryCache, "--insecure-no-auth"}
	if o.Redis != "" {
		args = append(args, "--redis", o.Redis)
	}
	args = append(args, o.ServerArg...)
	nb, err := start(ctx, "nextbest", pin, args...)
	if err != nil {
		return nil, err
	}
	defer func() { nb.stop() }()
	fmt.Fprintf(out, "nextbest: %s, generated catalog of %d offers / %d segments, store %s, cache %s\n", nb.url, o.Offers, o.Segments, storeName(o), o.MemoryCache)
	c := newClient(nb.url, o.Conns)
	sum := memorySummary{Mode: "memory", Pinned: pin}
	var errs atomic.Int64

	// The bulk path against one PUT per customer, same profiles, same
	// server, before the population (their customers add the same
	// offset to every point).
	n := min(20000, points[0])
	pop := catalogtest.Population{Now: time.Now().UTC().Add(-time.Minute)}
	t0 := time.Now()
	if err := putProfiles(ctx, c, pop, n, o.Conns, &errs); err != nil {
		return nil, err
	}
	sum.PutPerSec = round1(float64(n) / time.Since(t0).Seconds())
	t0 = time.Now()
	if _, err := importCustomers(ctx, c, pop, "i-", 0, n, false); err != nil {
		return nil, err
	}
	sum.ImportPerSec = round1(float64(n) / time.Since(t0).Seconds())
	sum.ImportVsPut = round1(sum.ImportPerSec / sum.PutPerSec)
	fmt.Fprintf(out, "profiles of %d customers: %.0f/s with one PUT each (%d conns), %.0f/s through the import: %.1f×\n",
		n, sum.PutPerSec, o.Conns, sum.ImportPerSec, sum.ImportVsPut)

	fmt.Fprintf(out, "\n%12s %14s %12s %10s %10s %10s\n", "customers", "import cust/s", "decide/s", "RSS MiB", "heap MiB", "heap free")
	loaded := 0
	for _, target := range points {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p := memoryPoint{Customers: target}
		decideFrom := loaded
		if target >= o.MemoryOffline {
			// Through the stopped node's store, then a restart on it:
			// the start-up on a data dir of this size, and every
			// customer decided once from an empty cache.
			nb.stop()
			t0 := time.Now()
			if err := importOffline(ctx, bin, catalog, dataDir, pop, "c-", loaded, target); err != nil {
				return nil, err
			}
			p.Offline = true
			p.ImportPerSec = round1(float64(target-loaded) / time.Since(t0).Seconds())
			t0 = time.Now()
			if nb, err = start(ctx, "nextbest", pin, args...); err != nil {
				return nil, err
			}
			p.StartupS = round1(time.Since(t0).Seconds())
			p.DiskMiB = round1(dirMiB(dataDir))
			c = newClient(nb.url, o.Conns)
			decideFrom = 0
			fmt.Fprintf(out, "%d customers: imported offline (nextbest import --data) at %.0f/s; %.0f MiB on disk; the node restarted on it in %.1f s (to /readyz 200)\n",
				target, p.ImportPerSec, p.DiskMiB, p.StartupS)
		} else {
			t0 := time.Now()
			if _, err := importCustomers(ctx, c, pop, "c-", loaded, target, true); err != nil {
				return nil, err
			}
			p.ImportPerSec = round1(float64(target-loaded) / time.Since(t0).Seconds())
		}
		t0 := time.Now()
		decideOnce(ctx, c, decideFrom, target, o.Conns, &errs)
		p.DecidePerSec = round1(float64(target-decideFrom) / time.Since(t0).Seconds())
		loaded = target
		// What a node holding these customers keeps: after the load,
		// the collector's headroom comes down (the server's tuning
		// lowers GOGC within seconds once the load is decisions) and the
		// runtime returns freed spans to the system; wait until the
		// resident set stops shrinking.
		p.RSSMiB = round1(settledRSS(ctx, c, nb.pid(), settleMax))
		p.HeapMiB = round1(heapInuseMiB(c))
		p.HeapFreeMiB = round1(heapFreeMiB(c))
		sum.Points = append(sum.Points, p)
		fmt.Fprintf(out, "%12d %14.0f %12.0f %10.1f %10.1f %10.1f\n", p.Customers, p.ImportPerSec, p.DecidePerSec, p.RSSMiB, p.HeapMiB, p.HeapFreeMiB)
	}
	if len(sum.Points) >= 2 {
		a, b := sum.Points[0], sum.Points[1]
		d := float64(b.Customers - a.Customers)
		sum.BytesPerCustomer = round1((b.RSSMiB - a.RSSMiB) * (1 << 20) / d)
		sum.HeapBytesPerCustomer = round1((b.HeapMiB - a.HeapMiB) * (1 << 20) / d)
		fmt.Fprintf(out, "RSS slope %d→%d customers: %.0f bytes per cached customer (Go heap in use: %.0f)\n",
			a.Customers, b.Customers, sum.BytesPerCustomer, sum.HeapBytesPerCustomer)
	}
	sum.Errors = errs.Load()
	return &sum, nil
}

// driveMemory is --mode memory: measureMemory, then its summary as the
// last line.
func driveMemory(ctx context.Context, o *options, out io.Writer) error {
	sum, err := measureMemory(ctx, o, out)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(sum)
	fmt.Fprintln(out, string(line))
	if sum.Errors > 0 {
		return fmt.Errorf("%d errors", sum.Errors)
	}
	return nil
}

// putProfiles sets the profiles of customers p-0 to p-(n-1) with one PUT
// /v1/customers/{id} each, from conns workers.
func putProfiles(ctx context.Context, c *fasthttp.HostClient, pop catalogtest.Population, n, conns int, errs *atomic.Int64) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				cust := pop.Customer(i)
				body, _ := json.Marshal(map[string]any{"features": cust.AttrsJSON()})
				prepareMethod(req, c.Addr, fasthttp.MethodPut, "/v1/customers/p-"+strconv.Itoa(i), body)
				if err := doRetrying(ctx, c, req, resp); err != nil || resp.StatusCode() != 200 {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// generateParts generates the import lines of customers lo to hi-1 of
// pop, named prefix+i, with their profiles and, with events, their event
// history, in parts of about importPartBytes of whole lines, in any
// order; the channel closes after the last part or when ctx ends.
func generateParts(ctx context.Context, pop catalogtest.Population, prefix string, lo, hi int, events bool) <-chan []byte {
	// Lines are generated by two workers (generating one costs about what
	// importing it does).
	const chunk = 2000
	var next atomic.Int64
	next.Store(int64(lo))
	parts := make(chan []byte, 2)
	var gen sync.WaitGroup
	for range 2 {
		gen.Go(func() {
			var b bytes.Buffer
			flush := func() bool {
				select {
				case parts <- bytes.Clone(b.Bytes()):
					b.Reset()
					return true
				case <-ctx.Done():
					return false
				}
			}
			for ctx.Err() == nil {
				from := int(next.Add(chunk)) - chunk
				if from >= hi {
					break
				}
				for i := from; i < min(from+chunk, hi); i++ {
					b.Write(importLine(pop, prefix, i, events))
					b.WriteByte('\n')
					if b.Len() >= importPartBytes && !flush() {
						return
					}
				}
			}
			if b.Len() > 0 {
				flush()
			}
		})
	}
	go func() {
		gen.Wait()
		close(parts)
	}()
	return parts
}

// importCustomers imports customers lo to hi-1 of pop, named prefix+i,
// with their profiles and, with events, their event history, through
// POST /v1/customers:import in parts of importPartBytes, generating the
// next part while the server imports one.
func importCustomers(ctx context.Context, c *fasthttp.HostClient, pop catalogtest.Population, prefix string, lo, hi int, events bool) (int, error) {
	parts := generateParts(ctx, pop, prefix, lo, hi, events)
	// A part takes the server a while to import before it answers.
	c = newClient("http://"+c.Addr, 1)
	c.ReadTimeout = 10 * time.Minute
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	imported := 0
	var err error
	for part := range parts {
		if err != nil {
			continue // drain: the generators stop with ctx
		}
		prepare(req, c.Addr, "/v1/customers:import?on_error=fail", part)
		req.Header.SetContentType("application/x-ndjson")
		if err = c.DoTimeout(req, resp, 10*time.Minute); err != nil {
			err = fmt.Errorf("import: %w", err)
			continue
		}
		var sum struct{ Imported int }
		if resp.StatusCode() != 200 {
			err = fmt.Errorf("import: %d %s", resp.StatusCode(), resp.Body())
		} else if jerr := json.Unmarshal(resp.Body(), &sum); jerr != nil {
			err = fmt.Errorf("import answer %s: %w", resp.Body(), jerr)
		}
		imported += sum.Imported
	}
	if err == nil && imported != hi-lo {
		err = fmt.Errorf("import: %d customers imported of %d", imported, hi-lo)
	}
	if err == nil {
		err = ctx.Err()
	}
	return imported, err
}

// importLine is customer i of pop as a line of POST /v1/customers:import.
func importLine(pop catalogtest.Population, prefix string, i int, events bool) []byte {
	cust := pop.Customer(i)
	line := map[string]any{"customer_id": prefix + strconv.Itoa(i), "features": cust.AttrsJSON()}
	if events && len(cust.Events) > 0 {
		evs := make([]map[string]any, len(cust.Events))
		for j, ev := range cust.Events {
			e := map[string]any{"type": ev.Type, "ts": ev.Time.UTC().Format(time.RFC3339Nano)}
			if ev.Channel != "" {
				e["channel"] = ev.Channel
			}
			if len(ev.Properties) > 0 {
				e["properties"] = ev.Properties
			}
			evs[j] = e
		}
		line["events"] = evs
	}
	b, _ := json.Marshal(line)
	return b
}

// decideOnce decides once for each of customers c-lo to c-(hi-1), on the
// web channel, from conns workers.
func decideOnce(ctx context.Context, c *fasthttp.HostClient, lo, hi, conns int, errs *atomic.Int64) {
	var next atomic.Int64
	next.Store(int64(lo))
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var body []byte
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= hi {
					return
				}
				body = append(append(body[:0], `{"customer_id":"c-`...), strconv.Itoa(i)...)
				body = append(body, `","channel":"web"}`...)
				prepare(req, c.Addr, "/v1/decide", body)
				if err := c.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// heapInuseMiB reads go_memstats_heap_inuse_bytes from the server's
// /metrics; 0 if it cannot.
func heapInuseMiB(c *fasthttp.HostClient) float64 {
	v, _ := metricSum(c, "go_memstats_heap_inuse_bytes")
	return v / (1 << 20)
}

// heapFreeMiB reads the heap's free memory the runtime has not returned
// to the system (go_memstats_heap_idle_bytes − heap_released_bytes): the
// part of the RSS the heap holds for nothing.
func heapFreeMiB(c *fasthttp.HostClient) float64 {
	idle, _ := metricSum(c, "go_memstats_heap_idle_bytes")
	released, _ := metricSum(c, "go_memstats_heap_released_bytes")
	return max(idle-released, 0) / (1 << 20)
}

// metricSum reads the server's /metrics and sums the samples of the metric
// called name (every label set); ok is false if it cannot read them or
// the metric is absent.
func metricSum(c *fasthttp.HostClient, name string) (sum float64, ok bool) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI("/metrics")
	req.Header.SetHost(c.Addr)
	if authorization != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, authorization)
	}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			if f, err := strconv.ParseFloat(strings.TrimSpace(rest[i+1:]), 64); err == nil {
				sum, ok = sum+f, true
			}
		}
	}
	return sum, ok
}
