package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	// The IANA time zone database, embedded: channels' quiet hours read
	// customers' zones, and the static binary and the distroless image
	// carry no host tzdata (about 450 KB).
	_ "time/tzdata"

	"github.com/alecthomas/kong"
)

func main() {
	unsetEmptyEnv(os.Environ())
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// unsetEmptyEnv unsets the NEXTBEST_* variables of environ that are set
// but empty. Kong reads a flag's variable itself and takes an empty one
// as an empty value (an empty --addr listens on every interface), while
// nextbest has always read an empty variable as unset: a container
// template that leaves one blank keeps the flag's default.
func unsetEmptyEnv(environ []string) {
	for _, kv := range environ {
		if name, value, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "NEXTBEST_") && value == "" {
			os.Unsetenv(name)
		}
	}
}

// cli is the command line: one field per command.
type cli struct {
	Serve    serveCmd    `cmd:"" help:"Serve the HTTP API on the embedded feature store."`
	Validate validateCmd `cmd:"" help:"Check a catalog: print a summary, or every error."`
	Decide   decideCmd   `cmd:"" help:"Make one decision without a server and print the JSON a POST /v1/decide would answer."`
	Replay   replayCmd   `cmd:"" help:"Decide logged decisions again from a node's data directory (its decision log and catalog versions) and say whether each reproduces what it answered; with --catalog, what another catalog would have answered and why."`
	Import   importCmd   `cmd:"" help:"Load customers in bulk, profiles and historical events, from an NDJSON file: into a stopped node's store, Redis, or through a running server."`
	Keys     keysCmd     `cmd:"" help:"Manage API keys: create, list, revoke; compute customer tokens."`
	Campaign campaignCmd `cmd:"" help:"Run an outbound campaign through a running server: one decision per stored customer of a segment (POST /v1/decide/batch), written to an NDJSON file, resumable."`
	Health   healthCmd   `cmd:"" name:"healthcheck" help:"Ask a running server whether it is live (GET /healthz) or ready (--ready: GET /readyz): exit 0 if so, 1 if not. For container health checks, where there is no shell or curl."`
	Evaluate evaluateCmd `cmd:"" help:"Estimate what a new catalog would have earned on a stopped node's logged decisions (off-policy evaluation: IPS, SNIPS, doubly robust), before shipping it."`
	Version  versionCmd  `cmd:"" help:"Print the version, commit and Go version."`

	ShowVersion kong.VersionFlag `name:"version" help:"Print the version and exit."`
}

// env is what commands get from the outside world besides their flags.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// usageError is a command line that cannot be run: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// reportedError has already been printed (e.g. every catalog error, one
// per line): exit status 1 without another message.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }

// kongExit carries kong's exit status (after --help) out of its parser.
type kongExit int

// run runs the command line args. Flags fall back to the environment
// variables of their env tags, which kong reads from the process's
// environment; getenv reads the variables that are not flags
// (NEXTBEST_API_KEYS). Output goes to stdout, logs and errors to stderr.
// It returns when the command is done or ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	var c cli
	parser, err := newParser(&c, stdout, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			code, ok := p.(kongExit)
			if !ok {
				panic(p)
			}
			if code != 0 {
				err = usagef("usage error")
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		return usageError{err}
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	return kctx.Run(&env{getenv: getenv, stdout: stdout, stderr: stderr})
}

// newParser returns the command line parser filling c. Its exit (after
// --help or --version) panics with a kongExit that run recovers.
func newParser(c *cli, stdout, stderr io.Writer) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("nextbest"),
		kong.Description("Real-time next-best-offer decisions for every channel."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": currentBuild().String()},
	)
}

// exitCode prints err, if any, and returns the process's exit status:
// 0 success, 1 validation or runtime error, 2 usage error.
func exitCode(err error, stderr io.Writer) int {
	var usage usageError
	var reported reportedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &reported):
		return 1
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "nextbest: %v\nRun 'nextbest --help' for usage.\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "nextbest: %v\n", err)
	return 1
}
