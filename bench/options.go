package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

type options struct {
	Mode      string        `default:"all" enum:"all,decide,events,mixed,memory,declog" help:"all: decisions, then events in batches of --batch, then single events, then the memory slope (as --mode memory); decide: decisions; events: event ingest; mixed: 90% decide, 10% events; memory: bytes per cached customer, the RSS slope between --memory-points loaded through the bulk import (bench/memory.go); declog: the decision log's cost, decisions at two servers, --decision-log-sample=0 and =1, rounds interleaved (bench/declog.go)."`
	Driver    string        `default:"auto" enum:"auto,wrk,builtin" help:"Load generator: wrk (one thread on the generator's core; install it with apt-get install -y wrk), builtin (this process's Go client, which saturates before a fast server does), or auto: wrk when installed, builtin for --quick and --rate."`
	Rate      int           `help:"Open loop: requests per second, sent on schedule; latency counts from the scheduled time (no coordinated omission). 0: closed loop, as fast as the server answers."`
	Duration  time.Duration `default:"5s" help:"Length of one measurement round per target."`
	Rounds    int           `default:"3" help:"Rounds per target (at least 3); targets alternate within a round and the median round is reported."`
	Warmup    time.Duration `default:"1s" help:"Load before the first round, not measured."`
	Conns     int           `default:"32" help:"Client connections (and, closed loop, concurrent requests)."`
	Customers int           `default:"100000" help:"Customers in the generated population, loaded through the API before measuring."`
	Offers    int           `default:"100" help:"Offers in the generated catalog."`
	Segments  int           `default:"20" help:"Segments in the generated catalog."`
	Channels  []string      `default:"web,app,call_center,email,sms" help:"Channels decisions cycle through. On email and sms (decision_is_impression) a decision also writes an impression to the store."`
	Keys      string        `default:"uniform" enum:"uniform,zipf" help:"Which customers requests are for: uniform, or zipf (s=--zipf-s, a few hot customers) for realistic cache hit ratios."`
	ZipfS     float64       `name:"zipf-s" default:"1.1" help:"Skew of the zipf key distribution (> 1)."`
	Batch     int           `default:"100" help:"Events per request in events mode (1: single events)."`
	Target    string        `help:"Drive an already running nextbest at this URL instead of starting one (its population is not loaded unless --load)."`
	Load      bool          `help:"With --target: load the generated population into it first."`
	Redis     string        `help:"Run the started nextbest on this Redis URL instead of its embedded store."`
	Auth      bool          `help:"Run nextbest with API keys (five, every scope) and send one with every request, to measure access control end to end."`
	ServerArg []string      `name:"server-arg" help:"Extra argument for the started nextbest serve (repeatable), e.g. --server-arg=--cache-size=1KiB to measure cache misses."`
	Pin       string        `default:"auto" enum:"auto,on,off" help:"Pin servers to CPU 0 and the load generator to CPU 1 with taskset (auto: when taskset exists and there are 2+ CPUs)."`
	Quick     bool          `help:"Short smoke run for CI: 2,000 customers, 3 rounds of 300 ms, the built-in generator unless --driver wrk; fails only on errors."`
	Out       string        `help:"Directory for the nextbest binary, catalog and data (default: a temporary one, removed at exit)."`

	Overload       bool          `help:"Overload run, for decisions then events: measure capacity (closed loop, --conns), then drive nextbest with admission control off and with it on in an open loop at --overload-factor × capacity for --duration, followed at once by --recovery at half capacity; report goodput, p99 of admitted requests, share shed and recovery against the p99 at half capacity (unloaded) in the same run, --rounds times per server, one server at a time (the round with the median admitted p99 is reported). Ignores --mode and --rate."`
	OverloadFactor float64       `default:"2" help:"With --overload: the overload rate as a multiple of the measured capacity."`
	OverloadConns  int           `default:"1024" help:"With --overload: client connections of the open loops, enough that requests wait in the server (where admission control sees them), not in this client."`
	Recovery       time.Duration `default:"1s" help:"With --overload: length of the half-capacity phase right after the overload."`

	MemoryPoints  []int  `name:"memory-points" default:"100000,1000000" help:"With --mode memory: the populations measured, ascending; the slope is between the first two."`
	Memory10M     bool   `name:"memory-10m" help:"With --mode memory: also load 10,000,000 customers (slow, and about 10 GiB of memory at 1 KiB each; not in CI)."`
	MemoryCache   string `name:"memory-cache" default:"4GiB" help:"With --mode memory: the server's --cache-size, enough for every customer of the points."`
	MemoryOffline int    `name:"memory-offline-from" default:"5000000" help:"With --mode memory: a point of this many customers or more is written offline (nextbest import --data into the stopped node's store), then the node restarts on it (start-up time reported) and decides once for every customer."`

	DeclogProfile string `name:"declog-profile" help:"With --mode declog: write CPU profiles (pprof) of each server over its last round to this path prefix (PREFIX-off.pprof, PREFIX-on.pprof)."`

	ServeBaseline string `hidden:"" help:"Internal: serve the fastjson baseline on this address."`
	ServeEcho     string `hidden:"" help:"Internal: serve the encoding/json echo baseline on this address."`
}

func (o *options) applyQuick() {
	if !o.Quick {
		return
	}
	o.Customers = min(o.Customers, 2000)
	o.Duration = 300 * time.Millisecond
	o.Warmup = 100 * time.Millisecond
	o.Rounds = 3
	o.Conns = min(o.Conns, 8)
}

func (o *options) validate() error {
	switch {
	case o.Rounds < 3:
		return errors.New("--rounds must be at least 3")
	case o.Conns < 1 || o.Conns > 4096:
		return errors.New("--conns must be between 1 and 4096")
	case o.Duration <= 0 || o.Duration > 10*time.Minute:
		return errors.New("--duration must be between 0 and 10m")
	case o.Customers < 1:
		return errors.New("--customers must be positive")
	case o.Batch < 1 || o.Batch > 1000:
		return errors.New("--batch must be between 1 and 1000 (the server's per-request limit)")
	case o.Rate < 0:
		return errors.New("--rate must not be negative")
	case o.ZipfS <= 1:
		return errors.New("--zipf-s must be greater than 1")
	case o.Rate > 0 && o.Driver == "wrk":
		return errors.New("--rate needs the built-in generator (wrk has no open loop): --driver builtin")
	case o.Load && o.Target == "":
		return errors.New("--load goes with --target")
	case o.Overload && (o.OverloadFactor <= 0 || o.OverloadFactor > 10):
		return errors.New("--overload-factor must be in (0, 10]")
	case o.Overload && (o.OverloadConns < 1 || o.OverloadConns > 8192):
		return errors.New("--overload-conns must be between 1 and 8192")
	case o.Overload && (o.Recovery <= 0 || o.Recovery > time.Minute):
		return errors.New("--recovery must be between 0 and 1m")
	case o.Overload && o.Target != "":
		return errors.New("--overload starts its own servers (admission on and off); it does not take --target")
	case o.Mode == "memory" && (len(o.MemoryPoints) < 2 || !slices.IsSorted(o.MemoryPoints) || o.MemoryPoints[0] < 1):
		return errors.New("--memory-points must be two or more ascending populations")
	case o.Mode == "memory" && o.Target != "":
		return errors.New("--mode memory starts its own nextbest (it reads its RSS); it does not take --target")
	case o.Mode == "declog" && (o.Target != "" || o.Rate > 0):
		return errors.New("--mode declog starts its own two servers in a closed loop; it takes neither --target nor --rate")
	case len(o.Channels) == 0:
		return errors.New("--channels must name at least one channel")
	}
	for _, ch := range o.Channels {
		if !slices.Contains(channels, ch) {
			return fmt.Errorf("--channels: %q is not one of %s", ch, strings.Join(channels, ", "))
		}
	}
	if o.Rate > 0 && o.Rate > 1_000_000 {
		return fmt.Errorf("--rate %d is beyond what this driver can schedule", o.Rate)
	}
	return nil
}
