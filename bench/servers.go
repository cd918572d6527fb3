package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nextbest/nextbest/internal/catalogtest"
)

// process is a server the driver started: the baseline or nextbest.
type process struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex // guards logs while the process runs
	logs strings.Builder
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)

// start runs argv (pinned with taskset when pin is set), waits for its
// "listening addr=" log line and for /readyz.
func start(ctx context.Context, name string, pin bool, argv ...string) (*process, error) {
	if pin {
		argv = append([]string{"taskset", "-c", "0"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			if p.logs.Len() < 1<<16 {
				p.logs.WriteString(line + "\n")
			}
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening:\n%s", name, p.logs.String())
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not listen within 30s", name)
	}
	if err := waitReady(ctx, p.url, 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// awaitLog waits up to within for a line of the process's log matching
// re and returns its submatches; nil if none came.
func (p *process) awaitLog(re *regexp.Regexp, within time.Duration) []string {
	deadline := time.Now().Add(within)
	for {
		p.mu.Lock()
		m := re.FindStringSubmatch(p.logs.String())
		p.mu.Unlock()
		if m != nil || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitReady(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %v", within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits a little, then kills.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// pid returns the server's process id (the child of taskset, if pinned:
// taskset execs, so it is the same process).
func (p *process) pid() int { return p.cmd.Process.Pid }

// rssMiB reads the resident set size of pid from /proc.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// dirMiB returns the bytes under dir, in MiB.
func dirMiB(dir string) float64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return float64(n) / (1 << 20)
}

// prepareNextbest compiles ./cmd/nextbest into dir and writes there the
// generated catalog of --offers and --segments the server is started on.
func prepareNextbest(ctx context.Context, o *options, dir string) (bin, catalog string, err error) {
	if bin, err = buildNextbest(ctx, dir); err != nil {
		return "", "", err
	}
	catalog = filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catalog, catalogtest.Generate(catalogtest.Options{Offers: o.Offers, Segments: o.Segments}), 0o644); err != nil {
		return "", "", err
	}
	return bin, catalog, nil
}

// buildNextbest compiles ./cmd/nextbest into dir.
func buildNextbest(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "nextbest")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/nextbest")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build nextbest (run bench from the repository root): %w", err)
	}
	return bin, nil
}
