package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// dockerfile is the repository's Dockerfile read as instructions: one
// per line once continuations are joined, keyed by keyword.
type dockerfile map[string][]string

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{}
	var cur string
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") && cur == "" {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		cur += strings.TrimSuffix(line, "\\")
		if cont {
			continue
		}
		if f := strings.Fields(cur); len(f) > 0 {
			d[strings.ToUpper(f[0])] = append(d[strings.ToUpper(f[0])], strings.TrimSpace(cur[len(f[0]):]))
		}
		cur = ""
	}
	return d
}

// env returns the variables the image sets.
func (d dockerfile) env() map[string]string {
	out := map[string]string{}
	for _, e := range d["ENV"] {
		for _, kv := range strings.Fields(e) {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

// exec returns the arguments of an exec-form instruction such as
// CMD ["serve"].
func execForm(t *testing.T, instr string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(instr), &args); err != nil {
		t.Fatalf("%s: not the exec form: %v", instr, err)
	}
	return args
}

// TestDockerfile checks what the image promises: base images pinned by
// digest, the binary stamped with its version, configuration through
// NEXTBEST_* variables that serve reads (no flags in CMD to override
// them), a HEALTHCHECK the distroless image can run, and a
// .dockerignore keeping the repository's history, data and binaries out
// of the build context.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	pinned := regexp.MustCompile(`^\S+:\S+@sha256:[0-9a-f]{64}( AS \w+)?$`)
	if len(d["FROM"]) != 2 {
		t.Errorf("FROM: %q, want a build and a runtime stage", d["FROM"])
	}
	for _, from := range d["FROM"] {
		if !pinned.MatchString(from) {
			t.Errorf("FROM %s: not pinned as image:tag@sha256:digest", from)
		}
	}
	if run := strings.Join(d["RUN"], "\n"); !strings.Contains(run, "CGO_ENABLED=0 go build") || !strings.Contains(run, "-X main.version=${VERSION} -X main.commit=${COMMIT}") {
		t.Errorf("RUN: %q, want a static build stamped with VERSION and COMMIT", d["RUN"])
	}

	var c cli
	parser, err := newParser(&c, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	serveEnv := map[string]bool{}
	for _, n := range parser.Model.Children {
		if n.Name == "serve" {
			for _, f := range n.Flags {
				for _, e := range f.Envs {
					serveEnv[e] = true
				}
			}
		}
	}
	env := d.env()
	for _, want := range []string{"NEXTBEST_ADDR", "NEXTBEST_CATALOG", "NEXTBEST_DATA"} {
		if env[want] == "" {
			t.Errorf("ENV lacks %s", want)
		}
	}
	for k := range env {
		if !serveEnv[k] {
			t.Errorf("ENV %s is not a variable serve reads", k)
		}
	}
	if len(d["CMD"]) != 1 || len(d["ENTRYPOINT"]) != 1 || len(d["HEALTHCHECK"]) != 1 {
		t.Fatalf("want one CMD, ENTRYPOINT and HEALTHCHECK: %q %q %q", d["CMD"], d["ENTRYPOINT"], d["HEALTHCHECK"])
	}
	for _, arg := range execForm(t, d["CMD"][0]) {
		if strings.HasPrefix(arg, "-") {
			t.Errorf("CMD passes %s, which overrides its environment variable", arg)
		}
	}
	hc := d["HEALTHCHECK"][0]
	if _, after, ok := strings.Cut(hc, "CMD "); !ok || !strings.Contains(after, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK %s: want CMD [nextbest, healthcheck]", hc)
	}

	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(ignore))
	for _, want := range []string{".git", "data", "/bench/out", "/nextbest", "/sim", "/keys.yaml"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// TestDockerfileRuns runs the image's ENTRYPOINT and CMD with its ENV, the
// paths moved from the image's to this repository's, then its
// HEALTHCHECK: the configuration the image carries works with the binary.
func TestDockerfileRuns(t *testing.T) {
	d := readDockerfile(t)
	env := d.env()
	examples, _ := filepath.Abs("../../examples")
	env["NEXTBEST_CATALOG"] = strings.Replace(env["NEXTBEST_CATALOG"], "/examples", examples, 1)
	env["NEXTBEST_DATA"] = t.TempDir()
	image := env["NEXTBEST_ADDR"]
	env["NEXTBEST_ADDR"] = "127.0.0.1:0"      // loopback only in tests
	env["NEXTBEST_INSECURE_NO_AUTH"] = "true" // no keys to mount here
	environ := func() []string {
		var out []string
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		return out
	}
	entry := execForm(t, d["ENTRYPOINT"][0])
	cmd := exec.Command(binary, append(entry[1:], execForm(t, d["CMD"][0])...)...)
	cmd.Env = append(os.Environ(), environ()...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	re := regexp.MustCompile(`msg=listening addr=127\.0\.0\.1:(\d+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
			}
		}
	}()
	var p string
	select {
	case p = <-port:
	case <-time.After(15 * time.Second):
		t.Fatal("the image's command did not listen within 15s")
	}

	// The check runs with the image's address (0.0.0.0), on the port the
	// server got.
	_, hc, _ := strings.Cut(d["HEALTHCHECK"][0], "CMD ")
	check := execForm(t, hc)
	host, _, _ := strings.Cut(image, ":")
	env["NEXTBEST_ADDR"] = host + ":" + p
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errs := runEnv(t, binary, environ(), check[1:]...)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HEALTHCHECK %q: exit %d %s %s", check, code, out, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
