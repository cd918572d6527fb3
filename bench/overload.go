package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The overload run (--overload) measures admission control, on one server
// at a time: first nextbest without admission control, which also measures
// each class's capacity in a closed loop, then nextbest with it. Each gets,
// --rounds times, in an open loop whose requests are sent at their
// scheduled time on as many connections as it takes (up to
// --overload-conns):
//
//   - half the capacity for --duration: the unloaded p99;
//   - --overload-factor × capacity for --duration, followed at once by half
//     the capacity for --recovery: goodput and p99 of the requests
//     admitted during the overload, the share shed, and the latency of the
//     requests due right after it (a lingering queue would show there).
//
// Latency runs from the scheduled send time. A request is admitted when it
// got its 2xx and, for decide, not the overload fallback; shed when it got
// the 503 overloaded answer or the fallback marked "reason":"overload".

// phase is a stretch of an open loop at one rate.
type phase struct {
	rate int
	d    time.Duration
}

// phaseResult is what one phase's requests got.
type phaseResult struct {
	scheduled                      int
	d                              time.Duration
	admitted, shed, failed, unsent atomic.Int64
	firstFailure                   atomic.Pointer[string]
	mu                             sync.Mutex
	lat, shedLat, early            []time.Duration // sorted after the run
}

func (r *phaseResult) goodput() float64 { return float64(r.admitted.Load()) / r.d.Seconds() }

func (r *phaseResult) shedShare() float64 {
	if r.scheduled == 0 {
		return 0
	}
	return float64(r.shed.Load()) / float64(r.scheduled)
}

func (r *phaseResult) share(n int64) float64 {
	if r.scheduled == 0 {
		return 0
	}
	return float64(n) / float64(r.scheduled)
}

// job is one scheduled request.
type job struct {
	at    time.Time
	phase int
	early bool // due in the first earlyWindow of its phase
}

// earlyWindow is the start of a phase whose latency is reported apart:
// right after an overload, a queue left behind would show there.
const earlyWindow = 250 * time.Millisecond

// overloadGrace is how long after the schedule's end queued requests are
// still sent; later ones count as unsent. Long enough for a server
// without admission control to work off a 5 s overload at 2×.
const overloadGrace = 10 * time.Second

var overloadMarker = []byte(`"reason":"overload"`)

// phased runs phases back to back in one open loop against c.
func phased(ctx context.Context, c *fasthttp.HostClient, o *options, mode string, phases []phase, seed uint64) []*phaseResult {
	res := make([]*phaseResult, len(phases))
	total := 0
	for i, p := range phases {
		n := int(p.d * time.Duration(p.rate) / time.Second)
		res[i] = &phaseResult{scheduled: n, d: p.d}
		total += n
	}
	jobs := make(chan job, total)
	start := time.Now()
	go func() {
		defer close(jobs)
		t0 := start
		for i, p := range phases {
			interval := time.Second / time.Duration(p.rate)
			for k := range res[i].scheduled {
				off := time.Duration(k) * interval
				at := t0.Add(off)
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
				if ctx.Err() != nil {
					return
				}
				jobs <- job{at: at, phase: i, early: off < earlyWindow}
			}
			t0 = t0.Add(p.d)
		}
	}()
	var end time.Duration
	for _, p := range phases {
		end += p.d
	}
	grace := start.Add(end + overloadGrace)
	var wg sync.WaitGroup
	for w := range o.OverloadConns {
		wg.Go(func() {
			k := newKeys(o.Keys, o.ZipfS, o.Customers, seed+uint64(w))
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			lat, shedLat, early := make([][]time.Duration, len(phases)), make([][]time.Duration, len(phases)), make([][]time.Duration, len(phases))
			var body []byte
			i := w
			for j := range jobs {
				r := res[j.phase]
				if time.Now().After(grace) || ctx.Err() != nil {
					r.unsent.Add(1)
					continue
				}
				var path string
				body, path, _ = request(body[:0], mode, o.Batch, o.Channels, k, i)
				i += o.OverloadConns
				prepare(req, c.Addr, path, body)
				err := c.DoTimeout(req, resp, overloadGrace)
				took := time.Since(j.at)
				switch status := resp.StatusCode(); {
				case err != nil:
					r.failed.Add(1)
					r.noteFailure(err.Error())
				case status == fasthttp.StatusServiceUnavailable && len(resp.Header.Peek(fasthttp.HeaderRetryAfter)) > 0 && bytes.Contains(resp.Body(), []byte(`"overloaded"`)):
					r.shed.Add(1)
					shedLat[j.phase] = append(shedLat[j.phase], took)
				case status == fasthttp.StatusOK && path == "/v1/decide" && bytes.Contains(resp.Body(), overloadMarker):
					r.shed.Add(1)
					shedLat[j.phase] = append(shedLat[j.phase], took)
				case status >= 200 && status < 300:
					r.admitted.Add(1)
					lat[j.phase] = append(lat[j.phase], took)
					if j.early {
						early[j.phase] = append(early[j.phase], took)
					}
				default:
					r.failed.Add(1)
					r.noteFailure(fmt.Sprintf("%d %s", status, resp.Body()))
				}
			}
			for p, r := range res {
				r.mu.Lock()
				r.lat = append(r.lat, lat[p]...)
				r.shedLat = append(r.shedLat, shedLat[p]...)
				r.early = append(r.early, early[p]...)
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, r := range res {
		slices.Sort(r.lat)
		slices.Sort(r.shedLat)
		slices.Sort(r.early)
	}
	return res
}

// measureTarget measures one server for one round: the unloaded phase,
// then the overload followed by the recovery.
func measureTarget(ctx context.Context, c *fasthttp.HostClient, o *options, mode string, half, over int, seed uint64, out io.Writer, name string) overloadTarget {
	settle(ctx)
	unl := phased(ctx, c, o, mode, []phase{{half, o.Duration}}, seed)[0]
	settle(ctx)
	rs := phased(ctx, c, o, mode, []phase{{over, o.Duration}, {half, o.Recovery}}, seed+1)
	ov, rec := rs[0], rs[1]
	for _, r := range []*phaseResult{unl, ov, rec} {
		if f := r.firstFailure.Load(); f != nil {
			fmt.Fprintf(out, "  %s, admission %s: %d failed, first: %s\n", mode, name, r.failed.Load(), *f)
		}
	}
	ts := overloadTarget{
		UnloadedP99ms:     round3(ms(percentile(unl.lat, .99))),
		UnloadedShedShare: round3(unl.shedShare()),
		GoodputRPS:        round1(ov.goodput()),
		AdmittedP50ms:     round3(ms(percentile(ov.lat, .5))),
		AdmittedP99ms:     round3(ms(percentile(ov.lat, .99))),
		ShedShare:         round3(ov.shedShare()),
		ShedP99ms:         round3(ms(percentile(ov.shedLat, .99))),
		FailedShare:       round3(ov.share(ov.failed.Load())),
		UnsentShare:       round3(ov.share(ov.unsent.Load())),
		RecoveryP99ms:     round3(ms(percentile(rec.lat, .99))),
		RecoveryEarlyP99:  round3(ms(percentile(rec.early, .99))),
		RecoveryShedShare: round3(rec.shedShare()),
	}
	if ts.UnloadedP99ms > 0 {
		ts.P99OverUnloaded = round1(ts.AdmittedP99ms / ts.UnloadedP99ms)
	}
	return ts
}

func printTarget(out io.Writer, class, round, name string, ts overloadTarget) {
	fmt.Fprintf(out, "%-6s %-5s %-9s %9.3f %7.1f%% %10.0f %9.3f %9.3f %8.1f %7.1f%% %7.1f%% %9.3f %9.3f %8.1f%%\n", class, round, name, ts.UnloadedP99ms, 100*ts.UnloadedShedShare, ts.GoodputRPS,
		ts.AdmittedP50ms, ts.AdmittedP99ms, ts.P99OverUnloaded, 100*ts.ShedShare, 100*ts.UnsentShare, ts.RecoveryP99ms, ts.RecoveryEarlyP99, 100*ts.RecoveryShedShare)
}

// settle pauses between phases, so the server's background work after
// one (flushes, compactions) does not land in the next.
func settle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(settlePause):
	}
}

const settlePause = 2 * time.Second

// medianTarget returns the round with the median admitted p99.
func medianTarget(rs []overloadTarget) overloadTarget {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b overloadTarget) int {
		switch {
		case a.AdmittedP99ms < b.AdmittedP99ms:
			return -1
		case a.AdmittedP99ms > b.AdmittedP99ms:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func (r *phaseResult) noteFailure(s string) {
	if len(s) > 200 {
		s = s[:200]
	}
	r.firstFailure.CompareAndSwap(nil, &s)
}

// overloadTarget is one server's figures in the summary.
type overloadTarget struct {
	UnloadedP99ms     float64 `json:"unloaded_p99_ms"`
	UnloadedShedShare float64 `json:"unloaded_shed_share"`
	GoodputRPS        float64 `json:"goodput_rps"`
	AdmittedP50ms     float64 `json:"admitted_p50_ms"`
	AdmittedP99ms     float64 `json:"admitted_p99_ms"`
	P99OverUnloaded   float64 `json:"admitted_p99_over_unloaded_p99"`
	ShedShare         float64 `json:"shed_share"`
	ShedP99ms         float64 `json:"shed_p99_ms"`
	FailedShare       float64 `json:"failed_share"`
	UnsentShare       float64 `json:"unsent_share"`
	RecoveryP99ms     float64 `json:"recovery_p99_ms"`
	RecoveryEarlyP99  float64 `json:"recovery_first_250ms_p99_ms"`
	RecoveryShedShare float64 `json:"recovery_shed_share"`
}

type overloadClass struct {
	Class       string         `json:"class"`
	CapacityRPS float64        `json:"capacity_rps"`
	RateRPS     int            `json:"overload_rps"`
	On          overloadTarget `json:"admission_on"`
	Off         overloadTarget `json:"admission_off"`
}

type overloadSummary struct {
	Mode      string          `json:"mode"`
	Factor    float64         `json:"factor"`
	Duration  string          `json:"duration"`
	Conns     int             `json:"conns"`
	Customers int             `json:"customers"`
	Batch     int             `json:"batch"`
	Pinned    bool            `json:"pinned"`
	Classes   []overloadClass `json:"classes"`
}

func driveOverload(ctx context.Context, o *options, out io.Writer) error {
	pin, err := pinSelf(o, out)
	if err != nil {
		return err
	}
	dir, cleanup, err := workDir(o)
	if err != nil {
		return err
	}
	defer cleanup()
	bin, catalog, err := prepareNextbest(ctx, o, dir)
	if err != nil {
		return err
	}
	// One server at a time: an idle server's compactions after its own
	// load would otherwise disturb the one measured, on the same CPU. The
	// server without admission control goes first and measures capacity.
	targets := []struct{ name, flag string }{{"off", "--no-admission"}, {"on", "--admission"}}
	modes := []string{"decide", "events"}
	sum := overloadSummary{Mode: "overload", Factor: o.OverloadFactor, Duration: o.Duration.String(), Conns: o.OverloadConns,
		Customers: o.Customers, Batch: o.Batch, Pinned: pin}
	classes := make([]overloadClass, len(modes))
	rates := make([][2]int, len(modes)) // half, over
	for ti, t := range targets {
		args := []string{bin, "serve", "--addr", "127.0.0.1:0", "--catalog", catalog, "--data", filepath.Join(dir, "data-"+t.name),
			"--cache-size", "4GiB", "--insecure-no-auth", t.flag}
		if o.Redis != "" {
			args = append(args, "--redis", o.Redis, "--store-timeout", "20ms")
		}
		args = append(args, o.ServerArg...)
		p, err := start(ctx, "nextbest admission "+t.name, pin, args...)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nnextbest, admission %s: %s (%s)\n", t.name, p.url, t.flag)
		err = func() error {
			defer p.stop()
			if err := loadPopulation(ctx, p.url, o, out); err != nil {
				return err
			}
			c := newClient(p.url, max(o.Conns, o.OverloadConns))
			wo := *o
			wo.Mode = "mixed"
			round(ctx, c, &wo, o.Warmup, 99)
			for ci, mode := range modes {
				mo := *o
				mo.Mode, mo.Rate = mode, 0
				oc := &classes[ci]
				if ti == 0 { // capacity: closed loop, without admission control
					settle(ctx)
					capRes := round(ctx, c, &mo, o.Duration, uint64(ci*7919+1))
					if capRes.errors() > 0 {
						return fmt.Errorf("%s capacity round: %d errors", mode, capRes.errors())
					}
					capacity := capRes.rps()
					rates[ci] = [2]int{max(1, int(capacity/2)), max(1, int(capacity*o.OverloadFactor))}
					*oc = overloadClass{Class: mode, CapacityRPS: round1(capacity), RateRPS: rates[ci][1]}
					fmt.Fprintf(out, "%s: capacity %.0f req/s (closed loop, %d conns, p99 %.3f ms); unloaded at %d req/s, overload at %d req/s (%.1f×) for %v, then %d req/s for %v; open loop on up to %d conns\n",
						mode, capacity, o.Conns, ms(percentile(capRes.lat, .99)), rates[ci][0], rates[ci][1], o.OverloadFactor, o.Duration, rates[ci][0], o.Recovery, o.OverloadConns)
				}
				fmt.Fprintf(out, "%-6s %-5s %-9s %9s %8s %10s %9s %9s %8s %8s %8s %9s %9s %9s\n", "class", "round", "admission", "unl. p99", "unl.shed", "goodput/s", "adm. p50", "adm. p99", "×unl.", "shed", "unsent", "rec. p99", "rec.250ms", "rec. shed")
				var rs []overloadTarget
				for r := range o.Rounds {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					ts := measureTarget(ctx, c, &mo, mode, rates[ci][0], rates[ci][1], uint64(ci*1000+r*100+ti*10+2), out, t.name)
					rs = append(rs, ts)
					printTarget(out, mode, fmt.Sprint(r+1), t.name, ts)
				}
				ts := medianTarget(rs)
				printTarget(out, mode, "med.", t.name, ts)
				if t.name == "on" {
					oc.On = ts
				} else {
					oc.Off = ts
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nmedians\n%-6s %-5s %-9s %9s %8s %10s %9s %9s %8s %8s %8s %9s %9s %9s\n", "class", "", "admission", "unl. p99", "unl.shed", "goodput/s", "adm. p50", "adm. p99", "×unl.", "shed", "unsent", "rec. p99", "rec.250ms", "rec. shed")
	for _, oc := range classes {
		printTarget(out, oc.Class, "med.", "off", oc.Off)
		printTarget(out, oc.Class, "med.", "on", oc.On)
	}
	sum.Classes = classes
	line, _ := json.Marshal(sum)
	fmt.Fprintln(out, string(line))
	return nil
}
