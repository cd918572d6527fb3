package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/nextbest/nextbest/decision"
)

// campaignCmd runs an outbound campaign through a running node: a batch
// of decisions over a segment (POST /v1/decide/batch), a page at a time,
// each page's decisions appended to --out and the place reached saved to
// a cursor file, so an interrupted campaign resumes (--resume) after the
// last customer written.
//
// It calls a running node rather than opening a stopped node's store
// (nextbest import's --data): a campaign runs beside the live traffic
// whose caps it must respect, and the node decides with its cache, its
// learned statistics and the impressions its web decisions just
// recorded; the embedded store of a running node is locked by it.
type campaignCmd struct {
	URL        string        `name:"url" required:"" help:"Base URL of a running server (http://127.0.0.1:8080); an API key with the decide scope in NEXTBEST_API_KEY."`
	APIKey     string        `name:"api-key" env:"NEXTBEST_API_KEY" help:"API key with the decide scope; prefer the environment variable."`
	Channel    string        `required:"" help:"Channel to decide for (email, sms, ...)."`
	Segment    string        `required:"" help:"Segment of the catalog: every stored customer in it gets one decision."`
	Placement  string        `help:"Placement on the channel."`
	Context    string        `help:"Request context of every decision, a JSON object, e.g. '{\"campaign\":\"winter\"}'."`
	Limit      int           `default:"1" help:"Offers per customer, 1 to 50."`
	Out        string        `required:"" help:"NDJSON file the decisions are written to, one per line as POST /v1/decide answers them (appended to with --resume)."`
	CursorFile string        `name:"cursor-file" help:"File recording where the campaign is (default: --out with .cursor appended)."`
	Resume     bool          `help:"Continue the campaign of the cursor file after the last customer written to --out."`
	PageSize   int           `name:"page-size" default:"1000" help:"Customers scanned per request (one page of the store's scan)."`
	Timeout    time.Duration `default:"5m" help:"Time one page's request may take."`
	Progress   bool          `negatable:"" default:"true" help:"Show a progress bar on a terminal."`
}

// campaignCursor is the cursor file: where a campaign is. Cursor is the
// page of the store's scan to ask for next, After the last customer
// written to the output (skipped if that page holds it: the page of an
// interrupted request is asked for again). On the embedded store the
// scan is ordered by id and a page's cursor is the id before it; on
// Redis it is SCAN's cursor (with the master's address on a cluster).
type campaignCursor struct {
	Channel string         `json:"channel"`
	Segment string         `json:"segment"`
	Cursor  string         `json:"cursor"`
	After   string         `json:"after"`
	Done    bool           `json:"done"`
	Totals  campaignTotals `json:"totals"`
}

// campaignTotals adds up the pages' summaries.
type campaignTotals struct {
	Scanned    int            `json:"scanned"`
	Decided    int            `json:"decided"`
	Offered    int            `json:"offered"`
	Fallback   int            `json:"fallback"`
	Suppressed map[string]int `json:"suppressed"`
	Deferred   int            `json:"deferred"`
	Errors     int            `json:"errors"`
	Done       bool           `json:"done"`
	Last       *string        `json:"last"`
	Cursor     *string        `json:"cursor"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (t *campaignTotals) add(s *campaignTotals) {
	t.Scanned += s.Scanned
	t.Decided += s.Decided
	t.Offered += s.Offered
	t.Fallback += s.Fallback
	t.Deferred += s.Deferred
	t.Errors += s.Errors
	if t.Suppressed == nil {
		t.Suppressed = map[string]int{}
	}
	for r, n := range s.Suppressed {
		t.Suppressed[r] += n
	}
}

func (c *campaignCmd) Run(ctx context.Context, e *env) error {
	if c.Limit < 1 || c.Limit > decision.MaxLimit {
		return usagef("--limit must be from 1 to %d, got %d", decision.MaxLimit, c.Limit)
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		return usagef("--page-size must be from 1 to 10000, got %d", c.PageSize)
	}
	u, err := url.Parse(strings.TrimSuffix(c.URL, "/") + "/v1/decide/batch")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return usagef("--url %q: not an http(s) URL", c.URL)
	}
	var reqContext map[string]any
	if c.Context != "" {
		if err := json.Unmarshal([]byte(c.Context), &reqContext); err != nil {
			return usagef("--context: not a JSON object: %v", err)
		}
	}
	if c.CursorFile == "" {
		c.CursorFile = c.Out + ".cursor"
	}
	state := campaignCursor{Channel: c.Channel, Segment: c.Segment}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if c.Resume {
		if state, err = c.readCursor(); err != nil {
			return err
		}
		if state.Done {
			fmt.Fprintf(e.stdout, "campaign already done: %s\n", c.CursorFile)
			return nil
		}
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(c.Out, flags, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	out := bufio.NewWriterSize(f, 256<<10)

	bar := c.bar(e)
	start, decided := time.Now(), state.Totals.Decided
	client := &http.Client{Timeout: c.Timeout}
	for !state.Done {
		sum, err := c.page(ctx, client, u.String(), reqContext, &state, out)
		// What was written is on disk before the cursor says so.
		if ferr := errors.Join(out.Flush(), f.Sync()); ferr != nil && err == nil {
			err = fmt.Errorf("%s: %w", c.Out, ferr)
		}
		if sum != nil {
			state.Totals.add(sum)
			if err == nil {
				switch {
				case sum.Done:
					state.Done = true
				case sum.Cursor == nil:
					err = errors.New("answer: a summary neither done nor with a cursor")
				default:
					state.Cursor, state.After = *sum.Cursor, ""
					if sum.Last != nil {
						state.After = *sum.Last
					}
				}
			}
		}
		if werr := c.writeCursor(&state); werr != nil && err == nil {
			err = werr
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("decided %d of %d scanned", state.Totals.Decided, state.Totals.Scanned))
			_ = bar.Set(state.Totals.Decided)
		}
		if err != nil {
			if bar != nil {
				_ = bar.Exit()
				fmt.Fprintln(e.stderr)
			}
			c.report(e, &state, start, decided)
			return fmt.Errorf("campaign stopped (continue it with --resume): %w", err)
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(e.stderr)
	}
	c.report(e, &state, start, decided)
	return nil
}

// page asks for the next page of the campaign and writes its decisions
// to out, moving state.After past each. It returns the page's summary,
// nil if the answer ended before it (with the error).
func (c *campaignCmd) page(ctx context.Context, client *http.Client, u string, reqContext map[string]any, state *campaignCursor, out *bufio.Writer) (*campaignTotals, error) {
	body, _ := json.Marshal(map[string]any{
		"channel": c.Channel, "segment": c.Segment, "placement": nilIfEmpty(c.Placement), "context": reqContext,
		"limit": c.Limit, "cursor": nilIfEmpty(state.Cursor), "after": nilIfEmpty(state.After),
		"max_pages": 1, "page_size": c.PageSize,
	})
	resp, err := post(ctx, client, u, "application/json", c.APIKey, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var ae struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(b, &ae) == nil && ae.Error.Message != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, ae.Error.Message)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var head struct {
				CustomerID *string         `json:"customer_id"`
				Summary    *campaignTotals `json:"summary"`
			}
			if jerr := json.Unmarshal(line, &head); jerr != nil {
				return nil, fmt.Errorf("answer: %v in %.200q", jerr, line)
			}
			if head.Summary != nil {
				if e := head.Summary.Error; e != nil {
					return head.Summary, fmt.Errorf("%s: %s", e.Code, e.Message)
				}
				return head.Summary, nil
			}
			if head.CustomerID == nil {
				return nil, fmt.Errorf("answer: a line that is neither a decision nor the summary: %.200q", line)
			}
			if _, werr := out.Write(line); werr != nil {
				return nil, fmt.Errorf("%s: %w", c.Out, werr)
			}
			state.After = *head.CustomerID
			continue
		}
		if err == nil || err == io.EOF {
			return nil, errors.New("answer ended before its summary")
		}
		return nil, err
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c *campaignCmd) readCursor() (campaignCursor, error) {
	var st campaignCursor
	b, err := os.ReadFile(c.CursorFile)
	if err != nil {
		return st, fmt.Errorf("--resume: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", c.CursorFile, err)
	}
	if st.Channel != c.Channel || st.Segment != c.Segment {
		return st, usagef("--resume: %s is the campaign of channel %q, segment %q, not of --channel %q --segment %q", c.CursorFile, st.Channel, st.Segment, c.Channel, c.Segment)
	}
	return st, nil
}

// writeCursor replaces the cursor file, whole or not at all.
func (c *campaignCmd) writeCursor(st *campaignCursor) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(c.CursorFile), filepath.Base(c.CursorFile)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.CursorFile)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cursor file: %w", err)
	}
	return nil
}

// bar is a progress bar of the decisions made (the segment's size is
// known only once scanned), on a terminal only.
func (c *campaignCmd) bar(e *env) *progressbar.ProgressBar {
	f, ok := e.stderr.(*os.File)
	if !c.Progress || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("campaign"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("decisions"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
	)
}

func (c *campaignCmd) report(e *env, st *campaignCursor, start time.Time, before int) {
	t := &st.Totals
	elapsed := time.Since(start)
	var sup []string
	for _, r := range slices.Sorted(maps.Keys(t.Suppressed)) {
		sup = append(sup, fmt.Sprintf("%s %d", r, t.Suppressed[r]))
	}
	fmt.Fprintf(e.stdout, "decided %d customers of %d scanned: %d with offers, %d fallback, %d deferred (quiet hours), suppressed: %s; %d errors; %d this run in %v (%.0f decisions/s); cursor %s\n",
		t.Decided, t.Scanned, t.Offered, t.Fallback, t.Deferred, strings.Join(sup, ", "), t.Errors,
		t.Decided-before, elapsed.Round(time.Millisecond), float64(t.Decided-before)/elapsed.Seconds(), c.CursorFile)
}
