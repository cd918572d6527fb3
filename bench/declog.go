package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// The decision log's cost (issue 14): --mode declog starts two nextbest
// servers on the same catalog and population, one with the decision log
// off (--decision-log-sample=0, the default) and one logging every
// decision (=1), and drives decisions at both with the same load, round
// by round, their order swapped every round so drift hits both alike.
// Each round gives the logged server's throughput and CPU per request
// against the unlogged one's measured beside it; the medians of those
// per-round ratios are the cost. The logged server's /metrics say how
// many entries were written and dropped: a dropped entry costs nothing,
// so a run that drops is not a measure of logging everything and says
// so.

// declogSummary is --mode declog's final JSON line.
type declogSummary struct {
	Mode      string  `json:"mode"`
	Driver    string  `json:"driver"`
	Pinned    bool    `json:"pinned"`
	Conns     int     `json:"conns"`
	Customers int     `json:"customers"`
	Rounds    int     `json:"rounds"`
	OffRPS    float64 `json:"off_rps"` // medians of the rounds
	OnRPS     float64 `json:"on_rps"`
	OffCPUus  float64 `json:"off_cpu_us_per_req"`
	OnCPUus   float64 `json:"on_cpu_us_per_req"`
	OffBusy   float64 `json:"off_busy"`
	OnBusy    float64 `json:"on_busy"`
	// ThroughputCost is 1 - on/off req/s and CPUCost on/off CPU per
	// request - 1, medians of the rounds' ratios.
	ThroughputCost float64 `json:"throughput_cost"`
	CPUCost        float64 `json:"cpu_cost"`
	// Written and Dropped are the logged server's entries over the
	// measured rounds.
	Written int64 `json:"written"`
	Dropped int64 `json:"dropped"`
	Errors  int64 `json:"errors"`
}

// driveDeclog runs --mode declog and prints its rounds, medians and the
// summary line.
func driveDeclog(ctx context.Context, o *options, out io.Writer) (*declogSummary, error) {
	pin, err := pinSelf(o, out)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := workDir(o)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	gen, driver, err := newGenerator(o, dir, pin, out)
	if err != nil {
		return nil, err
	}
	bin, catalog, err := prepareNextbest(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	sum := declogSummary{Mode: "declog", Driver: driver, Pinned: pin, Conns: o.Conns, Customers: o.Customers, Rounds: o.Rounds}
	var targets [2]*target // off, on
	var admin [2]string    // their pprof listeners, with --declog-profile
	for i, sample := range []string{"0", "1"} {
		name := "log=" + sample
		data := filepath.Join(dir, "data-"+sample)
		args := []string{bin, "serve", "--addr", "127.0.0.1:0", "--catalog", catalog, "--data", data, "--cache-size", "4GiB", "--insecure-no-auth"}
		if o.Redis != "" {
			// Two servers on one Redis would share their customers and
			// learning: each gets a database of its own, 10 and 11.
			u, err := url.Parse(o.Redis)
			if err != nil {
				return nil, fmt.Errorf("--redis: %w", err)
			}
			u.Path = fmt.Sprintf("/%d", 10+i)
			args = append(args, "--redis", u.String(), "--store-timeout", "20ms")
		}
		args = append(args, o.ServerArg...)
		args = append(args, "--decision-log-sample="+sample)
		if o.DeclogProfile != "" {
			args = append(args, "--admin-addr", "127.0.0.1:0")
		}
		p, err := start(ctx, name, pin, args...)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		fmt.Fprintf(out, "nextbest %s: %s, --decision-log-sample=%s, data %s\n", name, p.url, sample, data)
		t0 := time.Now()
		if err := loadPopulation(ctx, p.url, o, out); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(out, "population: %d customers loaded into %s in %.1fs\n", o.Customers, name, time.Since(t0).Seconds())
		targets[i] = &target{name: name, url: p.url, pid: p.pid(), client: newClient(p.url, o.Conns)}
		if o.DeclogProfile != "" {
			if m := p.awaitLog(adminRE, 10*time.Second); m != nil {
				admin[i] = "http://" + m[1]
			}
		}
	}
	off, on := targets[0], targets[1]
	p := loadPhase{mode: "decide", batch: o.Batch}
	for _, t := range targets {
		if _, err := gen.round(ctx, t, p, o.Warmup, 99); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", t.name, err)
		}
	}
	written0, _ := metricSum(on.client, "nextbest_decision_log_written_total")
	dropped0, _ := metricSum(on.client, "nextbest_decision_log_dropped_total")

	fmt.Fprintf(out, "\nphase decide, closed loop, %d conns, keys %s, channels %v, %d rounds of %v per server, order swapped every round\n",
		o.Conns, o.Keys, o.Channels, o.Rounds, o.Duration)
	fmt.Fprintf(out, "%-6s %-6s %10s %8s %11s %6s %7s\n", "round", "server", "req/s", "p99 ms", "cpu us/req", "busy", "errors")
	row := func(label, name string, m *measure) {
		fmt.Fprintf(out, "%-6s %-6s %10.0f %8.3f %11.2f %5.0f%% %7d\n", label, name, m.rps(), ms(m.p99), m.cpuPerReq(), m.busy*100, m.errors)
	}
	var offs, ons []*measure
	var tputCost, cpuCost []float64
	for r := range o.Rounds {
		order := []*target{off, on}
		if r%2 == 1 {
			order = []*target{on, off}
		}
		got := map[*target]*measure{}
		for _, t := range order {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var prof chan error
			if i := slices.Index(targets[:], t); r == o.Rounds-1 && admin[i] != "" {
				prof = make(chan error, 1)
				file := fmt.Sprintf("%s-%s.pprof", o.DeclogProfile, []string{"off", "on"}[i])
				go func() { prof <- fetchProfile(ctx, admin[i], o.Duration, file) }()
			}
			m, err := gen.round(ctx, t, p, o.Duration, uint64(r*1000+1))
			if prof != nil {
				if err := <-prof; err != nil {
					fmt.Fprintf(out, "profile of %s: %v\n", t.name, err)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("round %d %s: %w", r+1, t.name, err)
			}
			got[t] = m
			sum.Errors += m.errors
			row(fmt.Sprint(r+1), t.name[4:], m)
		}
		mOff, mOn := got[off], got[on]
		offs, ons = append(offs, mOff), append(ons, mOn)
		if mOff.rps() > 0 && mOff.cpuPerReq() > 0 {
			tputCost = append(tputCost, 1-mOn.rps()/mOff.rps())
			cpuCost = append(cpuCost, mOn.cpuPerReq()/mOff.cpuPerReq()-1)
		}
	}
	mOff, mOn := median(offs), median(ons)
	row("median", "0", mOff)
	row("median", "1", mOn)
	written1, _ := metricSum(on.client, "nextbest_decision_log_written_total")
	dropped1, _ := metricSum(on.client, "nextbest_decision_log_dropped_total")
	sum.OffRPS, sum.OnRPS = round1(mOff.rps()), round1(mOn.rps())
	sum.OffCPUus, sum.OnCPUus = round3(mOff.cpuPerReq()), round3(mOn.cpuPerReq())
	sum.OffBusy, sum.OnBusy = round3(mOff.busy), round3(mOn.busy)
	sum.ThroughputCost, sum.CPUCost = round3(medianOf(tputCost)), round3(medianOf(cpuCost))
	sum.Written, sum.Dropped = int64(written1-written0), int64(dropped1-dropped0)
	fmt.Fprintf(out, "decision log at sample 1 vs 0: throughput cost %.1f%% (1 - on/off req/s), CPU per request +%.1f%% (%.2f vs %.2f us), medians of the rounds' ratios (target < 10%%)\n",
		sum.ThroughputCost*100, sum.CPUCost*100, sum.OnCPUus, sum.OffCPUus)
	fmt.Fprintf(out, "logged server: %d entries written, %d dropped during the rounds\n", sum.Written, sum.Dropped)
	if sum.Dropped > 0 {
		fmt.Fprintf(out, "WARNING: the log dropped %d entries (%.1f%%): a dropped entry costs nothing, so the cost above is a lower bound\n",
			sum.Dropped, 100*float64(sum.Dropped)/float64(max(1, sum.Written+sum.Dropped)))
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "data-1", "decisions")); err == nil {
		fmt.Fprintf(out, "log segments: %d files, %.0f MiB\n", len(entries), dirMiB(filepath.Join(dir, "data-1", "decisions")))
	}
	return &sum, nil
}

var adminRE = regexp.MustCompile(`admin listening[^\n]* addr=(127\.0\.0\.1:\d+)`)

// fetchProfile writes a CPU profile of the server whose admin listener
// is at admin, over d (rounded down to whole seconds, at least one), to
// file.
func fetchProfile(ctx context.Context, admin string, d time.Duration, file string) error {
	secs := max(1, int(d/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// medianOf returns the median of xs, 0 for none.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
