package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"help", []string{"--help"}, 0, "Usage: nextbest <command>"},
		{"command help", []string{"serve", "--help"}, 0, "NEXTBEST_ADDR"},
		{"no command", nil, 2, "expected one of"},
		{"unknown command", []string{"bogus"}, 2, "unexpected argument bogus"},
		{"unknown flag", []string{"serve", "--nope"}, 2, "unknown flag --nope"},
		{"bad enum", []string{"serve", "--log-format", "xml"}, 2, "--log-format"},
		{"bad size", []string{"serve", "--cache-size", "lots"}, 2, `"lots" is not a size`},
		{"decide without customer", []string{"decide", "--channel", "web"}, 2, "--customer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			code := exitCode(err, &stderr)
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d (err %v)", code, tt.code, err)
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want byteSize
	}{
		{"0", 0}, {"512", 512}, {"64KiB", 64 << 10}, {"256MiB", 256 << 20}, {"1GiB", 1 << 30}, {"2 MB", 2 << 20}, {"3G", 3 << 30}, {"10B", 10},
	}
	for _, tt := range tests {
		var b byteSize
		if err := b.UnmarshalText([]byte(tt.in)); err != nil || b != tt.want {
			t.Errorf("%q: got %d, %v; want %d", tt.in, b, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GiB", "MiB", "1TiB", "99999999999GiB"} {
		var b byteSize
		if err := b.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: got %d, want an error", bad, b)
		}
	}
}

func TestDiskFloor(t *testing.T) {
	tests := []struct {
		in      string
		bytes   int64
		percent float64
	}{
		{"256MiB,5%", 256 << 20, 5}, {"5%", 0, 5}, {" 2.5 % ", 0, 2.5}, {"1GiB", 1 << 30, 0}, {"10%, 64MiB", 64 << 20, 10},
		{"0", -1, 0}, {"0%", -1, 0}, {"0,0%", -1, 0},
	}
	for _, tt := range tests {
		var f diskFloor
		if err := f.UnmarshalText([]byte(tt.in)); err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if b, p := f.options(); b != tt.bytes || p != tt.percent {
			t.Errorf("%q: got %d bytes, %g%%; want %d, %g%%", tt.in, b, p, tt.bytes, tt.percent)
		}
	}
	for _, bad := range []string{"", "-1", "100%", "-5%", "NaN%", "x%", "1MiB,2MiB", "1%,2%", "1MiB,5%,1GiB", "1.5GiB"} {
		var f diskFloor
		if err := f.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: got %+v, want an error", bad, f)
		}
	}
}

// TestRunServe runs the server in-process: flags come from the
// environment, and cancelling ctx stops it cleanly.
func TestRunServe(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("NEXTBEST_ADDR", "127.0.0.1:0")
	t.Setenv("NEXTBEST_CATALOG", "testdata/catalog.yaml")
	t.Setenv("NEXTBEST_DATA", dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		// A small budget: the default (a third of the machine's memory)
		// sizes the cache's admission sketch for millions of customers,
		// which ristretto clears on Close: seconds under -race.
		done <- run(ctx, []string{"serve", "--insecure-no-auth", "--memory", "64MiB"}, func(string) string { return "" }, &stdout, stderr)
	}()

	addr := regexp.MustCompile(`addr=127\.0\.0\.1:\d+ tls=false catalog=testdata/catalog.yaml store="embedded ` + regexp.QuoteMeta(dir))
	deadline := time.Now().Add(10 * time.Second)
	for !addr.MatchString(stderr.String()) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within 10s:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not return within a minute of cancel")
	}
}

// TestRunServeCancelledAtOnce: a stop that comes before the HTTP server
// has started serving (here: ctx cancelled before run) still stops it;
// fasthttp's Shutdown alone would find no listener yet and Serve would
// then run forever.
func TestRunServeCancelledAtOnce(t *testing.T) {
	t.Setenv("NEXTBEST_ADDR", "127.0.0.1:0")
	for i := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--insecure-no-auth", "--memory", "64MiB", "--catalog", "testdata/catalog.yaml", "--data", t.TempDir()},
				func(string) string { return "" }, io.Discard, io.Discard)
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("run %d with a cancelled context did not return within a minute", i)
		}
	}
}

func TestRunServeBadCatalog(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--insecure-no-auth", "--catalog", "testdata/invalid.yaml", "--data", t.TempDir()}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "catalog testdata/invalid.yaml has 5 errors:\ntestdata/invalid.yaml:6:22:") {
		t.Errorf("got %v, want every catalog error", err)
	}
	var usage usageError
	if errors.As(err, &usage) {
		t.Error("a bad catalog is not a usage error")
	}
}

// TestFlagEnv checks flags take their value from their environment
// variable, that the command line wins over it, and that the variables
// named before kong's env tags (issue 10) keep working.
func TestFlagEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		got  func(c *cli) any
		want any
	}{
		{"addr", map[string]string{"NEXTBEST_ADDR": "0.0.0.0:9000"}, []string{"serve"}, func(c *cli) any { return c.Serve.Addr }, "0.0.0.0:9000"},
		{"flag wins", map[string]string{"NEXTBEST_ADDR": "0.0.0.0:9000"}, []string{"serve", "--addr", "127.0.0.1:1"}, func(c *cli) any { return c.Serve.Addr }, "127.0.0.1:1"},
		{"catalog", map[string]string{"NEXTBEST_CATALOG": "/examples/x.yaml"}, []string{"serve"}, func(c *cli) any { return c.Serve.Catalog }, "/examples/x.yaml"},
		{"data", map[string]string{"NEXTBEST_DATA": "/data"}, []string{"serve"}, func(c *cli) any { return c.Serve.Data }, "/data"},
		{"cache size", map[string]string{"NEXTBEST_CACHE_SIZE": "1GiB"}, []string{"serve"}, func(c *cli) any { return c.Serve.CacheSize }, byteSize(1 << 30)},
		{"memory", map[string]string{"NEXTBEST_MEMORY": "8GiB"}, []string{"serve"}, func(c *cli) any { return c.Serve.Memory }, byteSize(8 << 30)},
		{"block cache size", map[string]string{"NEXTBEST_BLOCK_CACHE_SIZE": "128MiB"}, []string{"serve"}, func(c *cli) any { return c.Serve.BlockCacheSize }, byteSize(128 << 20)},
		{"log format", map[string]string{"NEXTBEST_LOG_FORMAT": "json"}, []string{"serve"}, func(c *cli) any { return c.Serve.LogFormat }, "json"},
		{"read timeout", map[string]string{"NEXTBEST_READ_TIMEOUT": "3s"}, []string{"serve"}, func(c *cli) any { return c.Serve.ReadTimeout }, 3 * time.Second},
		{"store timeout", map[string]string{"NEXTBEST_STORE_TIMEOUT": "20ms"}, []string{"serve"}, func(c *cli) any { return c.Serve.StoreTimeout }, 20 * time.Millisecond},
		{"redis url", map[string]string{"NEXTBEST_REDIS_URL": "redis://r:6379/0"}, []string{"serve"}, func(c *cli) any { return c.Serve.Redis }, "redis://r:6379/0"},
		{"keys file", map[string]string{"NEXTBEST_KEYS_FILE": "/k.yaml"}, []string{"serve"}, func(c *cli) any { return c.Serve.Keys }, "/k.yaml"},
		{"no watch", map[string]string{"NEXTBEST_WATCH_CATALOG": "false"}, []string{"serve"}, func(c *cli) any { return c.Serve.WatchCatalog }, false},
		{"insecure", map[string]string{"NEXTBEST_INSECURE_NO_AUTH": "true"}, []string{"serve"}, func(c *cli) any { return c.Serve.InsecureNoAuth }, true},
		{"tls cert", map[string]string{"NEXTBEST_TLS_CERT": "/c.pem"}, []string{"serve"}, func(c *cli) any { return c.Serve.TLSCert }, "/c.pem"},
		{"keys data", map[string]string{"NEXTBEST_DATA": "/srv/data"}, []string{"keys", "list"}, func(c *cli) any { return c.Keys.List.auditPath() }, "/srv/data/audit.log"},
		{"keys audit log", map[string]string{"NEXTBEST_DATA": "/srv/data", "NEXTBEST_AUDIT_LOG": "/a.log"}, []string{"keys", "list"}, func(c *cli) any { return c.Keys.List.auditPath() }, "/a.log"},
		{"keys default", nil, []string{"keys", "list"}, func(c *cli) any { return c.Keys.List.auditPath() }, "data/audit.log"},
		{"healthcheck addr", map[string]string{"NEXTBEST_ADDR": "0.0.0.0:8080"}, []string{"healthcheck"}, func(c *cli) any { return c.Health.Addr }, "0.0.0.0:8080"},
		{"decide catalog", map[string]string{"NEXTBEST_CATALOG": "/c.yaml"}, []string{"decide", "--customer", "c", "--channel", "web"}, func(c *cli) any { return c.Decide.Catalog }, "/c.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var c cli
			parser, err := newParser(&c, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parser.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got := tt.got(&c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// noEnv lists the flags with no environment variable: per-invocation
// arguments, not configuration.
var noEnv = map[string]bool{
	"help": true, "version": true,
	"decide.data": true, "decide.customer": true, "decide.channel": true, "decide.placement": true, "decide.context": true,
	"decide.limit": true, "decide.explain": true, "decide.now": true, "decide.decision-id": true,
	"keys.create.name": true, "keys.create.scope": true, "keys.create.public": true, "keys.create.origin": true,
	"import.data": true, "import.url": true, "import.on-error": true, "import.batch-size": true, "import.part-size": true,
	"import.timeout": true, "import.progress": true,
	"campaign.url": true, "campaign.channel": true, "campaign.segment": true, "campaign.placement": true, "campaign.context": true,
	"campaign.limit": true, "campaign.out": true, "campaign.cursor-file": true, "campaign.resume": true, "campaign.page-size": true,
	"campaign.timeout": true, "campaign.progress": true,
	"replay.data": true, "replay.all": true, "replay.catalog": true, "replay.json": true,
	// evaluate: one evaluation's inputs and thresholds, per invocation.
	"evaluate.log": true, "evaluate.catalog": true, "evaluate.seeds": true, "evaluate.json": true,
	"evaluate.floor": true, "evaluate.max-weight": true, "evaluate.min-ess-share": true,
	"keys.create.rate": true, "keys.create.burst": true, "keys.create.client-rate": true, "keys.create.client-burst": true, "keys.create.created": true, "keys.token.customer": true,
}

// TestEveryFlagHasEnv checks every configuration flag of every command
// has an environment variable, named NEXTBEST_*, and that its --help
// shows it. A flag added with the old envvar tag, which nothing reads
// any more, fails here.
func TestEveryFlagHasEnv(t *testing.T) {
	var c cli
	parser, err := newParser(&c, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		if len(n.Children) > 0 {
			for _, child := range n.Children {
				walk(child)
			}
			return
		}
		path := strings.Fields(n.FullPath())[1:] // without "nextbest"
		var help bytes.Buffer
		if err := run(context.Background(), append(slices.Clone(path), "--help"), func(string) string { return "" }, &help, &help); err != nil {
			t.Fatalf("%s --help: %v", n.FullPath(), err)
		}
		for _, f := range n.AllFlags(true) {
			for _, flag := range f {
				key := strings.Join(append(slices.Clone(path), flag.Name), ".")
				if noEnv[flag.Name] || noEnv[key] {
					continue
				}
				if flag.Tag.Has("envvar") {
					t.Errorf("%s --%s: envvar tag, which nothing reads: use env", n.FullPath(), flag.Name)
				}
				if len(flag.Envs) == 0 {
					t.Errorf("%s --%s has no environment variable", n.FullPath(), flag.Name)
					continue
				}
				for _, name := range flag.Envs {
					if !strings.HasPrefix(name, "NEXTBEST_") {
						t.Errorf("%s --%s: variable %s, want NEXTBEST_*", n.FullPath(), flag.Name, name)
					}
					if !strings.Contains(help.String(), "$"+name) {
						t.Errorf("%s --help does not show $%s", n.FullPath(), name)
					}
				}
			}
		}
	}
	walk(parser.Model.Node)
}
