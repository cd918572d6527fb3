package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
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
// environment through getenv, and cancelling ctx stops it cleanly.
func TestRunServe(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"NEXTBEST_ADDR":    "127.0.0.1:0",
		"NEXTBEST_CATALOG": "testdata/catalog.yaml",
		"NEXTBEST_DATA":    dir,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--insecure-no-auth"}, func(k string) string { return env[k] }, &stdout, stderr)
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
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of cancel")
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
