package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// runEnv runs the binary with args and extra environment variables.
func runEnv(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// The version and commit TestMain stamps the binary under test with.
const (
	testVersion = "v9.8.7-test"
	testCommit  = "0123abcd"
)

// TestVersion checks `nextbest version` and `--version` print the
// version, commit and Go version stamped with -ldflags -X, as the
// Dockerfile builds it.
func TestVersion(t *testing.T) {
	want := "nextbest " + testVersion + " (commit " + testCommit + ", " + runtime.Version() + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"serve", "--version"}} {
		code, out, errs := runEnv(t, binary, nil, args...)
		if code != 0 || out != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0, stdout %q", args, code, out, errs, want)
		}
	}
}

// TestVersionUnstamped checks a binary built without -ldflags (go build,
// go install) reports what the toolchain recorded, and the Go version.
func TestVersionUnstamped(t *testing.T) {
	b := currentBuild() // the test binary is not stamped
	if b.Go != runtime.Version() || b.Version == "" || b.Commit == "" {
		t.Errorf("got %+v, want the Go version %s and a version and commit, if unknown", b, runtime.Version())
	}
	if got, want := (build{Version: "v1.0.0", Commit: "abc", Go: "go1.26.0", Modified: true}).String(), "nextbest v1.0.0 (commit abc-dirty, go1.26.0)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestHealthcheck runs `nextbest healthcheck` against a running server,
// configured by the same variables as the server, and against nothing.
func TestHealthcheck(t *testing.T) {
	s := startServer(t, t.TempDir())
	_, port, _ := strings.Cut(hostOf(s), ":")
	free := freeAddr(t)
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		out  string // in stdout
	}{
		{"live", []string{"NEXTBEST_ADDR=" + hostOf(s)}, nil, 0, `"status"`},
		{"ready", []string{"NEXTBEST_ADDR=" + hostOf(s)}, []string{"--ready"}, 0, `{"status":"ready"}`},
		{"unspecified host asks loopback", []string{"NEXTBEST_ADDR=0.0.0.0:" + port}, nil, 0, `"status"`},
		{"empty host asks loopback", nil, []string{"--addr", ":" + port}, 0, `"status"`},
		{"nothing listening", []string{"NEXTBEST_ADDR=" + free}, nil, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runEnv(t, binary, tt.env, append([]string{"healthcheck"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.out) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout containing %q", code, out, errs, tt.code, tt.out)
			}
		})
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	s := startServer(t, t.TempDir())
	addr := hostOf(s)
	s.stop()
	return addr
}

// TestKeysAuditInDataDir checks `nextbest keys` audits key management in
// the server's data directory (--data, NEXTBEST_DATA), as serve does, not
// in ./data of wherever it runs.
func TestKeysAuditInDataDir(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string // relative to the test's directory
	}{
		{"flag", nil, []string{"--data", "srv"}, "srv/audit.log"},
		{"env", []string{"NEXTBEST_DATA=srv"}, nil, "srv/audit.log"},
		{"audit log wins", []string{"NEXTBEST_DATA=srv"}, []string{"--audit-log", "elsewhere.log"}, "elsewhere.log"},
		{"default", nil, nil, "data/audit.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(binary, append([]string{"keys", "create", "--keys", "keys.yaml", "--name", "ops", "--scope", "admin"}, tt.args...)...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), append([]string{"NEXTBEST_DATA=", "NEXTBEST_AUDIT_LOG=", "NEXTBEST_KEYS_FILE="}, tt.env...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			audit, err := os.ReadFile(filepath.Join(dir, tt.want))
			if err != nil || !strings.Contains(string(audit), `"action":"key.create"`) {
				t.Errorf("audit log %s: %v %q, want the key.create event", tt.want, err, audit)
			}
			for _, other := range []string{"data/audit.log", "srv/audit.log", "elsewhere.log"} {
				if other == tt.want {
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, other)); err == nil {
					t.Errorf("%s written too", other)
				}
			}
		})
	}
}

// TestEmptyEnvIsUnset checks an empty NEXTBEST_* variable leaves its
// flag's default, as it always did (kong alone would take it as an empty
// value: an empty --addr listens on every interface).
func TestEmptyEnvIsUnset(t *testing.T) {
	code, _, errs := runEnv(t, binary, []string{"NEXTBEST_STORE_TIMEOUT=", "NEXTBEST_CACHE_SIZE=", "NEXTBEST_CATALOG=" + testCatalog},
		"serve", "--addr", "127.0.0.1:-1", "--insecure-no-auth", "--data", t.TempDir())
	// The address is bad on purpose: the command stops after its flags
	// and the catalog were read, at the listen.
	if code != 1 || !strings.Contains(errs, "invalid port") {
		t.Errorf("exit %d, stderr %s; want the listen error, past the flags", code, errs)
	}
}

// TestServeLastKnownGoodStart checks a catalog file with problems does
// not stop a restart: the server starts on the last good version kept in
// <data>/catalogs, says so in its log, /readyz (still 200) and
// nextbest_catalog_file_stale, and the fixed file takes over when saved.
// Without a good version, the bad file still stops the start.
func TestServeLastKnownGoodStart(t *testing.T) {
	src, headlines := liveCatalogs(t)
	dir, data := t.TempDir(), t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	bad := append(slices.Clone(src[1]), "\nofers: []\n"...)
	saveCatalog(t, file, src[0])

	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", data, "--catalog", file)
	if got := welcomeHeadline(s); got != headlines[0] {
		t.Fatalf("first start: headline %q, want %q", got, headlines[0])
	}
	s.stop()

	saveCatalog(t, file, bad)
	s = startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", data, "--catalog", file)
	if got := welcomeHeadline(s); got != headlines[0] {
		t.Errorf("restart on a bad file: headline %q, want the last good %q", got, headlines[0])
	}
	if logs := s.logs.String(); !strings.Contains(logs, "catalog file rejected; serving the last good version instead") || !strings.Contains(logs, "unknown field") {
		t.Errorf("the log does not say the file was rejected, and why:\n%s", logs)
	}
	check := func(when string, stale string, readyz string) {
		t.Helper()
		if status, body := s.call("GET", "/readyz", ""); status != 200 || !strings.Contains(body, readyz) {
			t.Errorf("%s: /readyz %d %s, want 200 with %q", when, status, body, readyz)
		}
		_, metrics := s.call("GET", "/metrics", "")
		if !strings.Contains(metrics, "\nnextbest_catalog_file_stale "+stale+"\n") {
			t.Errorf("%s: nextbest_catalog_file_stale is not %s:\n%s", when, stale, metrics)
		}
	}
	check("on the last good version", "1", `"warnings":["catalog file `+file+` is not in force: it has 1 error (nextbest validate `+file+`); version `)

	saveCatalog(t, file, src[1])
	deadline := time.Now().Add(15 * time.Second)
	for welcomeHeadline(s) != headlines[1] {
		if time.Now().After(deadline) {
			t.Fatalf("the fixed file was not loaded within 15s:\n%s", s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	check("after the fix", "0", `{"status":"ready"}`)
	s.stop()

	// A first start has no good version to fall back on.
	saveCatalog(t, file, bad)
	code, _, errs := runBinary(t, "serve", "--insecure-no-auth", "--addr", "127.0.0.1:0", "--catalog", file, "--data", t.TempDir())
	if code != 1 || !strings.Contains(errs, "has 1 error") || !strings.Contains(errs, "unknown field") {
		t.Errorf("first start on a bad file: exit %d, stderr %s; want exit 1 with the file's errors", code, errs)
	}
}
