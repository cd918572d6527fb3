// Command bench is nextbest's end-to-end load driver. In one run it starts
// two baselines and nextbest itself on a generated catalog and population:
// fastjson, a fasthttp server that parses a decide-sized JSON request and
// appends a decide-sized JSON response (the physical limit of a JSON API
// on this machine), and echo, a naive net/http + encoding/json service
// doing the same. It drives the three with the same load generator (wrk
// when installed), the servers pinned to CPU 0 and the generator to CPU 1,
// alternating them round by round so machine drift hits all alike, and
// reports medians, each server's CPU per request and busy share (a
// baseline round under 95% busy is invalid and left out) and the
// nextbest/baseline ratios. The last line of its output is one JSON object.
//
//	go run ./bench                         # decide, events (batches, single), closed loop; memory slope
//	go run ./bench --mode decide
//	go run ./bench --mode decide --driver builtin --rate 20000
//	go run ./bench --mode events --batch 100
//	go run ./bench --mode mixed --keys zipf
//	go run ./bench --quick                 # CI smoke run
//	go run ./bench --overload              # admission control at 2× capacity
//	go run ./bench --mode memory           # bytes per cached customer, 100k → 1M
//	go run ./bench --mode declog           # the decision log's cost: sample 1 vs 0, same run
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var o options
	parser, err := kong.New(&o, kong.Name("bench"),
		kong.Description("nextbest's load driver: nextbest against a bare fasthttp JSON baseline, same client, alternating rounds."))
	if err != nil {
		return err
	}
	if _, err := parser.Parse(args); err != nil {
		return err
	}
	if o.ServeBaseline != "" {
		return serveBaseline(ctx, o.ServeBaseline)
	}
	if o.ServeEcho != "" {
		return serveEcho(ctx, o.ServeEcho)
	}
	o.applyQuick()
	if err := o.validate(); err != nil {
		return err
	}
	if o.Overload {
		return driveOverload(ctx, &o, os.Stdout)
	}
	if o.Mode == "declog" {
		sum, err := driveDeclog(ctx, &o, os.Stdout)
		if err != nil {
			return err
		}
		line, _ := json.Marshal(sum)
		fmt.Println(string(line))
		if sum.Errors > 0 {
			return fmt.Errorf("%d errors", sum.Errors)
		}
		return nil
	}
	if o.Mode == "memory" {
		return driveMemory(ctx, &o, os.Stdout)
	}
	sum, err := drive(ctx, &o, os.Stdout)
	if err != nil {
		return err
	}
	if o.Mode == "all" && o.Target == "" {
		// The memory slope, on a server of its own (after the others
		// stopped: their data and CPU do not count).
		fmt.Println()
		if sum.Memory, err = measureMemory(ctx, &o, os.Stdout); err != nil {
			return err
		}
		sum.Errors += sum.Memory.Errors
	}
	line, _ := json.Marshal(sum)
	fmt.Println(string(line))
	if sum.Errors > 0 {
		return fmt.Errorf("%d errors", sum.Errors)
	}
	return nil
}
