// Package redistest starts real redis-server processes on random loopback
// ports for tests: a standalone server or a Redis Cluster.
//
// A test that needs Redis calls Start or StartCluster; when redis-server
// is not installed the test is skipped with a clear message, unless
// NEXTBEST_REQUIRE_REDIS=1 (set by .ci/run), where it fails. Servers run
// with persistence off unless the test asks for an append-only file, and
// are stopped by t.Cleanup.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	Addr     string // 127.0.0.1:port
	Dir      string // working directory (AOF lives here)
	args     []string
	cmd      *exec.Cmd
	t        testing.TB
	password string
}

// Options tune a server.
type Options struct {
	AppendOnly bool     // --appendonly yes --appendfsync always
	Port       int      // default: a free port
	Password   string   // --requirepass; default none
	Extra      []string // more redis-server arguments
}

// Binary returns the path of redis-server, skipping (or failing, under
// NEXTBEST_REQUIRE_REDIS=1) the test when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s not found in PATH: install it (apt-get install -y redis-server) to run the Redis tests", name)
		if os.Getenv("NEXTBEST_REQUIRE_REDIS") == "1" {
			t.Fatal(msg + " (NEXTBEST_REQUIRE_REDIS=1)")
		}
		t.Skip(msg)
	}
	return p
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a standalone redis-server on a random loopback port.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary(t, "redis-server")
	dir := t.TempDir()
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--protected-mode", "no"}
	if opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if opts.Password != "" {
		args = append(args, "--requirepass", opts.Password)
	}
	args = append(args, opts.Extra...)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, args: append([]string{bin}, args...), t: t, password: opts.Password}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Dir = s.Dir
	logf, err := os.Create(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	if err := waitPing(s.Addr, s.password, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
		s.t.Fatalf("redis-server on %s did not start: %v\n%s", s.Addr, err, log)
	}
}

// Stop kills the server (SIGKILL: a crash, as far as Redis knows) and
// waits for it. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again on the same port and directory,
// so an append-only file is replayed.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Freeze stops the process with SIGSTOP; Thaw resumes it.
func (s *Server) Freeze() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server.
func (s *Server) Thaw() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// waitPing waits until addr answers PING with PONG.
func waitPing(addr, password string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = ping(addr, password)
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if password != "" {
		fmt.Fprintf(c, "AUTH %s\r\n", password)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("AUTH: %q %v", line, err)
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Cluster is a running Redis Cluster of masters only.
type Cluster struct {
	Addrs   []string
	Servers []*Server
}

// StartCluster runs n cluster-enabled servers and joins them with
// redis-cli --cluster create, n masters and no replicas.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli := Binary(t, "redis-cli")
	c := &Cluster{}
	for range n {
		s := Start(t, Options{Extra: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}})
		c.Servers = append(c.Servers, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node reports the cluster ok.
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range c.Addrs {
		host, port, _ := net.SplitHostPort(addr)
		for {
			info, _ := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(info), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok:\n%s", addr, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}
