package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeJSONLogs: with --log-format json, every line nextbest writes,
// on stderr or stdout, from start-up to shutdown, is a JSON object a log
// shipper can parse: no plain-text line from a library (the metrics
// library's "INFO: metrics: disable exposing PSI metrics ..." at start,
// when the kernel's pressure files cannot be read, broke it once). Where
// the test can (root, unshare), it runs the server in a mount namespace
// with an unreadable cpu.pressure, which is what made that line appear.
func TestServeJSONLogs(t *testing.T) {
	args := []string{"serve", "--log-format", "json", "--log-level", "debug", "--insecure-no-auth",
		"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog}
	cmd := psiFaultCommand(t, binary, args...)
	cmd.Env = append(os.Environ(), "NEXTBEST_ADDR=", "NEXTBEST_CATALOG=", "NEXTBEST_DATA=", "NEXTBEST_API_KEYS=", "NEXTBEST_KEYS_FILE=", "NEXTBEST_TOKEN_SECRET=")
	var stdout syncBuffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		for sc.Scan() {
			fmt.Fprintln(&stderr, sc.Text())
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
		}
	})
	s := &server{t: t, cmd: cmd, logs: &stderr}
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-done:
		t.Fatalf("server exited before listening: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not log its address within 15s")
	}
	s.waitReady(10 * time.Second)

	// Traffic that makes the server, fasthttp and the libraries talk.
	s.decide(`{"customer_id":"j-1","channel":"web"}`)
	s.mustCall("POST", "/v1/events", `{"customer_id":"j-1","type":"page-view"}`, 202)
	s.mustCall("GET", "/metrics", "", 200)
	s.call("POST", "/v1/admin/catalog", "channels: [web]\noffers: nope\n", "Content-Type", "application/yaml")
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "NOT HTTP\r\n\r\n") // fasthttp's own (debug) message
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(make([]byte, 512))
	c.Close()
	waitUntil(t, 5*time.Second, "fasthttp's message about the malformed request", func() bool {
		return strings.Contains(stderr.String(), `"component":"fasthttp"`)
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop within 15s of SIGTERM")
	}

	for name, out := range map[string]string{"stderr": stderr.String(), "stdout": stdout.String()} {
		for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if line == "" && out == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("%s line %d is not JSON (%v): %s", name, i+1, err, line)
				continue
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("%s line %d has no %q: %s", name, i+1, k, line)
				}
			}
		}
	}
	for _, want := range []string{`"msg":"listening"`, `"msg":"stopped"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// psiFaultCommand returns the command running binary args. As root with
// unshare(1) and a readable cgroup v2 cpu.pressure, it runs it in a mount
// namespace where that file holds garbage, so that libraries reading
// pressure stall information fail as they do in containers without PSI.
func psiFaultCommand(t *testing.T, binary string, args ...string) *exec.Cmd {
	plain := exec.Command(binary, args...)
	unshare, err := exec.LookPath("unshare")
	if os.Geteuid() != 0 || err != nil {
		t.Log("not root or no unshare: pressure stall information not broken for this run")
		return plain
	}
	target := cpuPressureFile()
	if target == "" {
		t.Log("no cgroup v2 cpu.pressure here: nothing to break")
		return plain
	}
	fake := filepath.Join(t.TempDir(), "cpu.pressure")
	if err := os.WriteFile(fake, []byte("some avg10=x total=notanumber\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(unshare, "-m", "mount", "--bind", fake, target).CombinedOutput(); err != nil {
		t.Logf("cannot bind-mount in a mount namespace (%v: %s): pressure stall information not broken for this run", err, out)
		return plain
	}
	return exec.Command(unshare, append([]string{"-m", "sh", "-c", `mount --bind "$1" "$2" && shift 2 && exec "$@"`, "sh", fake, target, binary}, args...)...)
}

// cpuPressureFile returns the cpu.pressure file of this process's cgroup
// v2, or "" when there is none.
func cpuPressureFile() string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	var rel string
	for line := range strings.Lines(string(data)) {
		if r, ok := strings.CutPrefix(line, "0::"); ok {
			rel = strings.TrimSpace(r)
		}
	}
	if rel == "" {
		return ""
	}
	for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st syscall.Statfs_t
		const cgroup2Magic = 0x63677270
		if syscall.Statfs(mount, &st) != nil || st.Type != cgroup2Magic {
			continue
		}
		f := filepath.Join(mount, rel, "cpu.pressure")
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}
