package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrk is the load generator of a trustworthy run: a C client that keeps
// --conns connections busy from one thread on the generator's core while
// using a fraction of the CPU a server needs per request, so the server
// under test, not the client, is what saturates. bench hands it a file of
// ready-made requests (varying customers, channels and events, built by
// the same code as the built-in driver's) and a Lua script that cycles
// through them and prints the round's counts and latency percentiles as
// one line of JSON.

// wrkScript loads the requests file named by its first argument (records
// of "<length>\n<raw request>") and sends them in turn; done prints the
// round as one line prefixed WRKJSON.
const wrkScript = `
local reqs = {}
local n = 0
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
end
local i = 0
request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"p999_us":%.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
`

// wrkReport is the line the script's done prints.
type wrkReport struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"` // answers with a status >= 400
	Timeout    int64   `json:"timeout"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
}

// maxWrkRequestBytes bounds the requests file: enough distinct requests
// that a decide phase covers a 100k-customer population, few enough that
// wrk's Lua state stays small.
const maxWrkRequestBytes = 32 << 20

// wrkRequests writes the requests file of mode (decide, events or mixed)
// into dir and returns its path and the events each request carries on
// average. Requests are drawn exactly as the built-in driver draws them.
func wrkRequests(dir string, o *options, mode string, batch int) (string, float64, error) {
	k := newKeys(o.Keys, o.ZipfS, o.Customers, 7)
	var file, body, raw []byte
	var events int64
	n := 0
	for i := 0; n < o.Customers && len(file) < maxWrkRequestBytes; i++ {
		var path string
		var ev int
		body, path, ev = request(body[:0], mode, batch, o.Channels, k, i)
		raw = append(raw[:0], "POST "...)
		raw = append(raw, path...)
		raw = append(raw, " HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"...)
		if authorization != "" {
			raw = append(raw, "Authorization: "+authorization+"\r\n"...)
		}
		raw = append(raw, "Content-Length: "...)
		raw = strconv.AppendInt(raw, int64(len(body)), 10)
		raw = append(raw, "\r\n\r\n"...)
		raw = append(raw, body...)
		file = strconv.AppendInt(file, int64(len(raw)), 10)
		file = append(file, '\n')
		file = append(file, raw...)
		events += int64(ev)
		n++
	}
	name := filepath.Join(dir, fmt.Sprintf("wrk-%s-%d.req", mode, batch))
	if err := os.WriteFile(name, file, 0o644); err != nil {
		return "", 0, err
	}
	return name, float64(events) / float64(n), nil
}

// wrkRound runs wrk against url for d (whole seconds, at least one) with
// conns connections from one thread, pinned to CPU 1 when pin is set, and
// returns its report.
func wrkRound(ctx context.Context, wrkBin, script, requests, url string, conns int, d time.Duration, pin bool) (*wrkReport, error) {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	argv := []string{wrkBin, "-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(secs) + "s", "--timeout", "10s", "-s", script, url, "--", requests}
	if pin {
		argv = append([]string{"taskset", "-c", "1"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %v: %s%s", err, stderr.String(), stdout.String())
	}
	return parseWrk(stdout.Bytes())
}

// parseWrk finds the script's WRKJSON line in wrk's output.
func parseWrk(out []byte) (*wrkReport, error) {
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "WRKJSON "); ok {
			var r wrkReport
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return nil, fmt.Errorf("wrk report %q: %w", rest, err)
			}
			return &r, nil
		}
	}
	return nil, fmt.Errorf("wrk printed no report:\n%s", out)
}

// writeWrkScript writes the Lua script into dir.
func writeWrkScript(dir string) (string, error) {
	name := filepath.Join(dir, "bench.lua")
	return name, os.WriteFile(name, []byte(wrkScript), 0o644)
}
