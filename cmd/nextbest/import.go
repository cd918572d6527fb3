package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/featurestore/redisstore"
	"github.com/nextbest/nextbest/httpapi"
	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// importCmd loads customers in bulk: profiles and historical events, one
// customer a line (httpapi.ParseImportLine), into the embedded store of a
// stopped node (--data), into Redis (--redis), or through a running
// server (--url, POST /v1/customers:import in parts).
type importCmd struct {
	File         string        `arg:"" help:"NDJSON file, one customer a line (see docs/operations.md, Bulk import); - for standard input."`
	Catalog      string        `default:"examples/retail/catalog.yaml" env:"NEXTBEST_CATALOG" help:"Catalog file whose schema the lines are checked against (with --data or --redis)."`
	Data         string        `help:"Embedded store directory of a stopped node to write to (not while a server has it open)."`
	URL          string        `name:"url" help:"Base URL of a running server (http://127.0.0.1:8080) to import through, in parts of --part-size; its admin-scoped API key in NEXTBEST_API_KEY."`
	APIKey       string        `name:"api-key" env:"NEXTBEST_API_KEY" help:"API key with the admin scope, for --url; prefer the environment variable."`
	OnError      string        `name:"on-error" default:"skip" enum:"skip,fail" help:"A bad line is reported and skipped (skip), or ends the import, the lines before it written (fail)."`
	BatchSize    int           `name:"batch-size" default:"1000" help:"Customers written per store call (one pebble batch, one Redis pipeline); the embedded store syncs every 16 batches."`
	PartSize     byteSize      `name:"part-size" default:"16MiB" help:"Bytes of whole lines sent per request with --url (at most the server's --max-import-body)."`
	Timeout      time.Duration `default:"5m" help:"Time one request may take with --url."`
	Progress     bool          `negatable:"" default:"true" help:"Show a progress bar on a terminal."`
	DedupeWindow time.Duration `name:"dedupe-window" default:"24h" env:"NEXTBEST_DEDUPE_WINDOW" help:"How long the event_ids imported keep a re-import from applying the events again (as serve's)."`
	// The node's sampling, to tell which decisions it logged: the same
	// flag and variable as serve's.
	DecisionLogSample float64 `name:"decision-log-sample" default:"0" env:"NEXTBEST_DECISION_LOG_SAMPLE" help:"With --data, the node's --decision-log-sample: a click, conversion or dismiss naming a decision it logged is written to its decision log (<data>/decisions/) as an outcome line, as the server writes them, for nextbest evaluate (0: none). Through --url the server does so itself."`
	redisFlags
	budgetFlags
}

// maxReportedErrors bounds the bad lines printed (all are counted).
const maxReportedErrors = 100

func (c *importCmd) Run(ctx context.Context, e *env) error {
	targets := 0
	for _, set := range []bool{c.Data != "", c.Redis != "", c.URL != ""} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		return usagef("import needs exactly one of --data (a stopped node's store), --redis or --url (a running server)")
	}
	if c.BatchSize < 1 {
		return usagef("--batch-size must be at least 1, got %d", c.BatchSize)
	}
	if c.DecisionLogSample < 0 || c.DecisionLogSample > 1 {
		return usagef("--decision-log-sample %v: must be from 0 to 1", c.DecisionLogSample)
	}
	in, size, err := c.open(e)
	if err != nil {
		return err
	}
	defer in.Close()
	var r io.Reader = in
	bar := c.bar(e, size)
	if bar != nil {
		r = io.TeeReader(in, bar)
		defer bar.Exit()
	}
	start := time.Now()
	var res nextbest.ImportResult
	if c.URL != "" {
		res, err = c.post(ctx, r)
	} else {
		res, err = c.write(ctx, e, r)
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(e.stderr)
	}
	for _, le := range res.Errors {
		fmt.Fprintf(e.stderr, "%s: %v\n", c.File, &le)
	}
	if len(res.Errors) < res.Skipped && c.OnError == "skip" {
		fmt.Fprintf(e.stderr, "%s: %d more bad lines not shown\n", c.File, res.Skipped-len(res.Errors))
	}
	elapsed := time.Since(start)
	fmt.Fprintf(e.stdout, "imported %d customers (%d events applied, %d duplicate), skipped %d bad lines of %d, in %v (%.0f customers/s)\n",
		res.Imported, res.Events, res.Duplicates, res.Skipped, res.Lines, elapsed.Round(time.Millisecond), float64(res.Imported)/elapsed.Seconds())
	var ie *nextbest.ImportError
	if errors.As(err, &ie) {
		// Printed above with the other bad lines.
		return reportedError{err}
	}
	return err
}

// open opens the file (or standard input) and returns its size, -1 if
// unknown.
func (c *importCmd) open(e *env) (io.ReadCloser, int64, error) {
	if c.File == "-" {
		return io.NopCloser(os.Stdin), -1, nil
	}
	f, err := os.Open(c.File)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// bar is the progress bar over the bytes read, on a terminal only.
func (c *importCmd) bar(e *env, size int64) *progressbar.ProgressBar {
	f, ok := e.stderr.(*os.File)
	if !c.Progress || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
	)
}

// write imports r into the store of --data or --redis through the
// service, as a server would.
func (c *importCmd) write(ctx context.Context, e *env, r io.Reader) (nextbest.ImportResult, error) {
	src, err := os.ReadFile(c.Catalog)
	if err != nil {
		return nextbest.ImportResult{}, fmt.Errorf("catalog: %w", err)
	}
	budget, err := c.budget()
	if err != nil {
		return nextbest.ImportResult{}, err
	}
	cat, _, err := budget.Compile(c.Catalog, src, time.Now())
	if err != nil {
		return nextbest.ImportResult{}, catalogError(c.Catalog, err)
	}
	cat.Version = catalogs.VersionOf(src)
	var current atomic.Pointer[rules.Catalog]
	current.Store(cat)

	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	var store interface {
		nextbest.RecordStore
		featurestore.StatsStore
	}
	if c.Data != "" {
		if fi, err := os.Stat(c.Data); err != nil || !fi.IsDir() {
			return nextbest.ImportResult{}, fmt.Errorf("--data %s: not a directory", c.Data)
		}
		st, err := embedded.Open(embedded.Options{Dir: c.Data, Logger: log, DedupeWindow: c.DedupeWindow})
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nextbest.ImportResult{}, fmt.Errorf("open store: %w (is a server using %s? import it through the server with --url)", err, c.Data)
		}
		if err != nil {
			return nextbest.ImportResult{}, fmt.Errorf("open store: %w", err)
		}
		defer st.Close()
		store = st
	} else {
		tlsConf, err := c.redisTLS()
		if err != nil {
			return nextbest.ImportResult{}, usageError{err}
		}
		client, err := redisstore.NewClient(c.Redis, redisstore.ClientOptions{
			Username: c.RedisUsername, Password: c.RedisPassword, PoolSize: c.RedisPoolSize,
			DialTimeout: c.RedisDialTimeout, ReadTimeout: c.RedisTimeout, WriteTimeout: c.RedisTimeout, TLS: tlsConf,
		})
		if err != nil {
			return nextbest.ImportResult{}, usageError{err}
		}
		defer client.Close()
		st, err := redisstore.New(redisstore.Options{Client: client, Prefix: c.RedisPrefix, DedupeWindow: c.DedupeWindow})
		if err != nil {
			return nextbest.ImportResult{}, err
		}
		store = st
	}
	// Outcome events credit the statistics as a server's do, flushed to
	// the store at the end.
	recorder := outcomes.New(store, outcomes.Options{Logger: log})
	opts := nextbest.Options{Catalog: &current, Store: store, Stats: recorder, Logger: log}
	if st, ok := store.(*embedded.Store); ok {
		// Through a small cache tier, as serve's: batches are written
		// visible and synced every few (nextbest.Service.Import).
		records, err := cache.New(st, cache.Options{MaxCost: 16 << 20})
		if err != nil {
			return nextbest.ImportResult{}, err
		}
		defer records.Close()
		opts.Store, opts.Cache = records, records
	}
	if c.Data != "" && c.DecisionLogSample > 0 {
		stop, err := c.outcomeLines(e, &opts, log)
		if err != nil {
			return nextbest.ImportResult{}, err
		}
		defer stop()
	}
	svc, err := nextbest.New(opts)
	if err != nil {
		return nextbest.ImportResult{}, err
	}
	res, err := svc.Import(ctx, r, nextbest.ImportOptions{
		Parse:     httpapi.ParseImportLine,
		FailFast:  c.OnError == "fail",
		BatchSize: c.BatchSize,
		MaxErrors: maxReportedErrors,
	})
	if ferr := recorder.Flush(ctx); ferr != nil && err == nil {
		err = fmt.Errorf("outcome statistics: %w", ferr)
	}
	return res, err
}

// outcomeLines opens the decision log of --data for the outcome lines
// of the events imported (nextbest.Service.Import writes them as the
// server does) and sets it in opts; stop writes what is queued, closes
// the log and reports on e's stderr any line dropped. The queue is
// large: an import applies events faster than a server takes them.
func (c *importCmd) outcomeLines(e *env, opts *nextbest.Options, log *slog.Logger) (stop func(), err error) {
	dir := filepath.Join(c.Data, "decisions")
	dl, err := decisionlog.Open(decisionlog.Options{Dir: dir, Buffer: 1 << 16, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--decision-log-sample: %w", err)
	}
	opts.DecisionLog, opts.DecisionLogSample = dl, c.DecisionLogSample
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dl.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(e.stderr, "decision log %s: %v\n", dir, err)
		}
		if n := dl.Dropped(); n > 0 {
			fmt.Fprintf(e.stderr, "decision log %s: %d outcome lines dropped (its queue was full)\n", dir, n)
		}
	}, nil
}

// post imports r through a running server: POST /v1/customers:import in
// parts of whole lines of at most --part-size bytes, one after the
// other, adding up their summaries with the line numbers of the file.
func (c *importCmd) post(ctx context.Context, r io.Reader) (nextbest.ImportResult, error) {
	u, err := url.Parse(strings.TrimSuffix(c.URL, "/") + "/v1/customers:import?on_error=" + c.OnError)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nextbest.ImportResult{}, usagef("--url %q: not an http(s) URL", c.URL)
	}
	client := &http.Client{Timeout: c.Timeout}
	var total nextbest.ImportResult
	br := bufio.NewReaderSize(r, 1<<20)
	part := make([]byte, 0, int(c.PartSize))
	for done := false; !done; {
		part = part[:0]
		lines := 0
		for len(part) < int(c.PartSize) {
			line, err := br.ReadSlice('\n')
			for errors.Is(err, bufio.ErrBufferFull) { // a long line stays whole; the server judges it
				part = append(part, line...)
				line, err = br.ReadSlice('\n')
			}
			part = append(part, line...)
			if len(line) > 0 {
				lines++
			}
			if err == io.EOF {
				done = true
				break
			}
			if err != nil {
				return total, err
			}
		}
		if lines == 0 {
			break
		}
		sum, err := c.send(ctx, client, u.String(), part)
		offset := total.Lines
		total.Lines += sum.Lines
		total.Imported += sum.Imported
		total.Skipped += sum.Skipped
		total.Events += sum.Events
		total.Duplicates += sum.Duplicates
		for _, le := range sum.Errors {
			if len(total.Errors) < maxReportedErrors {
				total.Errors = append(total.Errors, nextbest.ImportError{Line: offset + le.Line, Err: errors.New(le.Message)})
			}
		}
		if err != nil {
			if sum.Error != nil && sum.Error.Code == httpapi.CodeInvalidRequest && len(sum.Errors) > 0 {
				last := total.Errors[len(total.Errors)-1]
				return total, &last
			}
			return total, fmt.Errorf("lines %d to %d: %w", offset+1, offset+lines, err)
		}
	}
	return total, nil
}

// importAnswer is the summary POST /v1/customers:import answers.
type importAnswer struct {
	Lines      int `json:"lines"`
	Imported   int `json:"imported"`
	Skipped    int `json:"skipped"`
	Events     int `json:"events"`
	Duplicates int `json:"duplicate_events"`
	Errors     []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"errors"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// post sends body to a running node's url with the API key, if any.
func post(ctx context.Context, client *http.Client, url, contentType, apiKey string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	return client.Do(req)
}

// send posts one part and returns the server's summary, with an error
// unless it answered 200.
func (c *importCmd) send(ctx context.Context, client *http.Client, u string, part []byte) (importAnswer, error) {
	var sum importAnswer
	resp, err := post(ctx, client, u, "application/x-ndjson", c.APIKey, part)
	if err != nil {
		return sum, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return sum, err
	}
	if jerr := json.Unmarshal(body, &sum); jerr != nil {
		return sum, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if resp.StatusCode != http.StatusOK {
		if sum.Error != nil {
			return sum, fmt.Errorf("%s: %s", resp.Status, sum.Error.Message)
		}
		return sum, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return sum, nil
}
