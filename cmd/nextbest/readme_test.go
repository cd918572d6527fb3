package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/redistest"
)

// readmeBlock returns the lines of the first sh block after the README
// heading.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatalf("README.md: no sh block under %q", heading)
	}
	block, _, _ = strings.Cut(block, "```")
	return strings.Split(strings.TrimSpace(block), "\n")
}

// TestReadmeSeveralNodes runs the README's "Running several nodes" recipe
// line by line, as a reader would type it, in an empty directory: the
// commands are read from README.md, only the ports are changed to free
// ones and ./nextbest is the binary under test. Both nodes must stay up,
// and node 2 must see the event sent to node 1.
func TestReadmeSeveralNodes(t *testing.T) {
	redistest.Binary(t, "redis-server") // skips without it, unless NEXTBEST_REQUIRE_REDIS=1
	lines := readmeBlock(t, "## Running several nodes")
	script := strings.Join(lines, "\n")
	for _, port := range []string{"6379", "8081", "8082"} {
		if !strings.Contains(script, port) {
			t.Fatalf("the recipe no longer uses port %s; update this test:\n%s", port, script)
		}
		script = strings.ReplaceAll(script, port, strconv.Itoa(redistest.FreePort(t)))
	}

	// An empty directory with what a checkout has: examples/ and,
	// instead of building it again, the binary under test.
	dir := t.TempDir()
	examples, _ := filepath.Abs("../../examples")
	if err := os.Symlink(examples, filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(dir, "nextbest")); err != nil {
		t.Fatal(err)
	}
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NEXTBEST_") {
			environ = append(environ, kv)
		}
	}

	var vars []string // shell assignments, such as json='...'
	var outputs []string
	port := regexp.MustCompile(`(?:--port |--addr 127\.0\.0\.1:)(\d+)`)
	for _, line := range strings.Split(script, "\n") {
		line, _, _ = strings.Cut(line, "   #") // a trailing comment
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "go build"):
			if line != "go build -o nextbest ./cmd/nextbest" {
				t.Fatalf("the recipe builds %q; update this test", line)
			}
		case regexp.MustCompile(`^\w+=`).MatchString(line):
			vars = append(vars, line)
		case strings.HasSuffix(line, "&"):
			cmd := exec.Command("bash", "-c", "exec "+strings.TrimSuffix(line, "&"))
			cmd.Dir, cmd.Env = dir, environ
			logs := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			var exitErr error
			go func() { exitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			m := port.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s: no port to wait for", line)
			}
			waitListening(t, "127.0.0.1:"+m[1], exited, func() error { return exitErr }, line, logs)
		default:
			cmd := exec.Command("bash", "-c", strings.Join(append(vars, line), "\n"))
			cmd.Dir, cmd.Env = dir, environ
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
			outputs = append(outputs, string(out))
		}
	}

	if len(outputs) != 3 {
		t.Fatalf("got %d outputs, want 3 (decide, event, decide): %q", len(outputs), outputs)
	}
	var before, after decideResponse
	var accepted struct{ Accepted int }
	for i, into := range []any{&before, &accepted, &after} {
		if err := json.Unmarshal([]byte(outputs[i]), into); err != nil {
			t.Fatalf("output %d: %v: %s", i+1, err, outputs[i])
		}
	}
	if accepted.Accepted != 1 {
		t.Errorf("event: %s, want 1 accepted", outputs[1])
	}
	if before.DecisionID == "" || after.DecisionID == "" {
		t.Errorf("decisions: %s %s", outputs[0], outputs[2])
	}
	if fmt.Sprint(before.offerIDs()) == fmt.Sprint(after.offerIDs()) {
		t.Errorf("node 2 does not see node 1's event: offers %v before and after", after.offerIDs())
	}
}

// waitListening waits until addr accepts connections, failing if the
// process started by line exits first.
func waitListening(t *testing.T, addr string, exited <-chan struct{}, exitErr func() error, line string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited: %v\n%s", line, exitErr(), logs)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not listening on %s within 15s:\n%s", line, addr, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
