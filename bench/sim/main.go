package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "ope" { // off-policy evaluation (ope.go)
		return runOPE(args[1:], stdout)
	}
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if cfg.Seeds > 1 || cfg.Population == "all" {
		return runSeeds(cfg, stdout)
	}
	r, err := simulate(cfg)
	if err != nil {
		return err
	}
	return r.write(stdout)
}

// parse reads the command line; no arguments give the defaults.
func parse(args []string) (config, error) {
	var cfg config
	parser, err := kong.New(&cfg, kong.Name("sim"),
		kong.Description("Simulates a retailer's website whose customers' true conversion probabilities are known, and reports how close nextbest's learned ranking comes to the oracle, against random and static ranking. The last line of output is one JSON object."))
	if err != nil {
		return config{}, err
	}
	if _, err := parser.Parse(args); err != nil {
		return config{}, err
	}
	return cfg, nil
}
