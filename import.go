package nextbest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// ImportLine is one line of a bulk import: one customer's profile
// attributes and historical events, parsed and checked against the schema
// by the caller's ImportParser as SetProfile's attributes
// (featurestore.Coerce) and ApplyEvents's events (Schema.CheckEvent) are.
// What the events mean is checked by Import (CheckEvents).
type ImportLine struct {
	CustomerID string
	Attrs      map[string]featurestore.Value
	Events     []featurestore.Event // every one of CustomerID
}

// ImportParser parses one non-blank line of an import, read under the
// catalog cat at the service's clock now. Its error names the field at
// fault ("features.tier: ..."); Import prefixes the line number. The line
// is the reader's buffer: the result must not keep it.
type ImportParser func(line []byte, cat *rules.Catalog, now time.Time) (ImportLine, error)

// ImportOptions configure one Import.
type ImportOptions struct {
	// Parse parses a line. Required (httpapi.ParseImportLine reads the
	// NDJSON of POST /v1/customers:import).
	Parse ImportParser
	// FailFast stops the import at the first bad line, having written the
	// lines before it; the error returned is its *ImportError. Default:
	// false, a bad line is skipped and counted.
	FailFast bool
	// BatchSize is the customers (lines) written per store call: one
	// pebble batch, or one Redis pipeline; fewer when their events pass
	// 8 per customer. Default: DefaultImportBatch (1000).
	BatchSize int
	// WriteTimeout is the deadline of one batch's store write (and of the
	// sync of the batches before it). Default: one minute, or
	// Options.MutateTimeout if longer.
	WriteTimeout time.Duration
	// MaxLineBytes bounds a line; a longer one is a bad line. Default:
	// DefaultImportLineBytes (1 MiB, a PUT or POST body's default bound).
	MaxLineBytes int
	// MaxErrors bounds the bad lines kept in ImportResult.Errors (all are
	// counted in Skipped). Default: 100.
	MaxErrors int
	// Written, when not nil, is called after each batch is durable with
	// the result so far (for a progress display).
	Written func(ImportResult)
}

// Import option defaults.
const (
	DefaultImportBatch     = 1000
	DefaultImportLineBytes = 1 << 20
	defaultImportErrors    = 100
)

// ImportError is a bad line of an import: its number (from 1) and why.
type ImportError struct {
	Line int
	Err  error
}

func (e *ImportError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ImportError) Unwrap() error { return e.Err }

// ImportResult is what an Import did.
type ImportResult struct {
	// Lines is the lines read, blank ones included.
	Lines int
	// Imported is the lines written: each customer's attributes and
	// events, whole.
	Imported int
	// Skipped is the bad lines, none of whose contents was written.
	Skipped int
	// Events is the events of the imported lines that took effect;
	// Duplicates those skipped as already applied (an event_id applied
	// within the store's dedupe window: a re-import does not count it
	// twice).
	Events, Duplicates int
	// Errors are the first MaxErrors bad lines, in order.
	Errors []ImportError
}

// Import reads r, one customer per line, and writes the lines in batches:
// each batch is one store call (Mutate), which applies each customer's
// attributes then events atomically and durably, so a customer's line is
// applied whole or not at all. A line is checked exactly as SetProfile's
// attributes and ApplyEvents's events are (opts.Parse, then CheckEvents);
// a bad one is skipped (counted, the first MaxErrors kept) or, with
// FailFast, ends the import. Re-importing a file overwrites the
// attributes it sets and re-applies its events, but for those with an
// event_id applied within the store's dedupe window (deduplicated as
// POST /v1/events retries are). Events credit outcome statistics, and
// write the outcome lines of logged decisions, as ApplyEvents's do.
//
// With a Cache, batches are written visible and their durability awaited
// every few batches (one fsync for them all, while the next are parsed);
// Imported counts only lines known durable.
//
// It returns what was done so far with the error that stopped it: a bad
// line's *ImportError under FailFast, the store's error, ctx's or r's.
// The lines counted Imported or Skipped are then done; of the others,
// those of the batches written but not yet known durable may or may not
// be (a re-import of them is safe, see above).
func (s *Service) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportResult, error) {
	if opts.Parse == nil {
		return ImportResult{}, errors.New("nextbest: import: no parser")
	}
	if s.store == nil {
		return ImportResult{}, errNoStore
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultImportBatch
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultImportLineBytes
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = defaultImportErrors
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = max(time.Minute, s.mutateTimeout)
	}
	im := importer{s: s, opts: opts, cat: s.catalog.Load(), now: s.now()}
	defer func() { // an import that stopped early waits for no sync
		for _, cancel := range im.cancels {
			cancel()
		}
	}()
	// A line and its newline fit the buffer; ReadSlice says ErrBufferFull
	// of a longer one.
	br := bufio.NewReaderSize(r, opts.MaxLineBytes+1)
	for {
		if err := ctx.Err(); err != nil {
			return im.res, err
		}
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			im.res.Lines++
		}
		var ferr error
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of it
				_, err = br.ReadSlice('\n')
			}
			ferr = im.bad(fmt.Errorf("longer than %d bytes", opts.MaxLineBytes))
		case err != nil && err != io.EOF:
			return im.res, fmt.Errorf("read line %d: %w", im.res.Lines, err)
		case len(line) > 0:
			ferr = im.line(line)
		}
		if ferr != nil {
			return im.res, ferr
		}
		if len(im.batch) >= opts.BatchSize || im.events >= maxBatchEvents*opts.BatchSize {
			if werr := im.flush(ctx); werr != nil {
				return im.res, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return im.res, fmt.Errorf("read line %d: %w", im.res.Lines, err)
		}
	}
	if err := im.flush(ctx); err != nil {
		return im.res, err
	}
	return im.res, im.sync()
}

// importer is the state of one Import.
type importer struct {
	s      *Service
	opts   ImportOptions
	cat    *rules.Catalog
	now    time.Time
	res    ImportResult
	batch  []ImportLine
	first  int // the line number of batch[0]
	events int // in batch

	// Written, not yet known durable: what they did, the durable func of
	// the last, and the cancels of their contexts.
	pending ImportResult
	durable func() error
	cancels []context.CancelFunc
}

// line parses and checks one line and adds it to the batch, or counts it
// bad; it returns an error only when the import must stop.
func (im *importer) line(b []byte) error {
	if isBlank(b) {
		return nil
	}
	l, err := im.opts.Parse(b, im.cat, im.now)
	if err == nil {
		err = checkAttrs(im.cat, l.Attrs)
	}
	if err == nil {
		err = CheckEvents(im.cat, l.Events)
		var ee *EventError
		if errors.As(err, &ee) {
			err = fmt.Errorf("events[%d].%s: %s", ee.Index, ee.Field, ee.Reason)
		}
	}
	if err != nil {
		return im.bad(err)
	}
	if len(im.batch) == 0 {
		im.first = im.res.Lines
	}
	im.batch = append(im.batch, l)
	im.events += len(l.Events)
	return nil
}

// bad counts the current line bad; under FailFast it writes the lines
// before it and returns its error.
func (im *importer) bad(err error) error {
	e := ImportError{Line: im.res.Lines, Err: err}
	im.res.Skipped++
	if len(im.res.Errors) < im.opts.MaxErrors {
		im.res.Errors = append(im.res.Errors, e)
	}
	if !im.opts.FailFast {
		return nil
	}
	if werr := im.flush(context.Background()); werr != nil {
		return werr
	}
	if werr := im.sync(); werr != nil {
		return werr
	}
	return &e
}

// flush writes the batch in one store call, durably.
func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	s, schema := im.s, im.cat.Schema
	var muts []featurestore.Mutation
	var flags [][]bool // by line: which events took effect
	var recs []*featurestore.Record
	var durable func() error
	for hops := 0; ; hops++ {
		muts, flags = muts[:0], make([][]bool, len(im.batch))
		for i := range im.batch {
			l := &im.batch[i]
			if len(l.Attrs) > 0 {
				muts = append(muts, featurestore.AttrsMutation(l.CustomerID, l.Attrs))
			}
			if len(l.Events) > 0 {
				flags[i] = make([]bool, len(l.Events))
				muts = append(muts, featurestore.EventMutationsApplied(schema, l.Events, im.now, flags[i])...)
			}
		}
		if len(muts) == 0 {
			break
		}
		start := time.Now()
		c, cancel := context.WithTimeout(ctx, im.opts.WriteTimeout)
		var err error
		if s.cache != nil {
			// Visible now, durable once a later sync covers it (sync).
			recs, durable, err = s.cache.MutateVisible(c, muts)
		} else {
			recs, err = s.store.Mutate(c, muts)
		}
		if s.obs.StoreWrite != nil {
			s.obs.StoreWrite(time.Since(start))
		}
		if err != nil && hops < featurestore.MaxAliasHops && redirectLines(im.batch, err) {
			// Lines of ids merged into other customers (identity.go):
			// nothing was written; they go to those customers.
			cancel()
			continue
		}
		if err != nil {
			cancel()
			s.storeError(err)
			return fmt.Errorf("write lines %d to %d: %w", im.first, im.res.Lines, err)
		}
		if durable == nil {
			cancel()
		} else {
			// Its durable func waits under c.
			im.durable, im.cancels = durable, append(im.cancels, cancel)
		}
		break
	}
	im.pending.Imported += len(im.batch)
	var events []featurestore.Event // of the batch, for the outcome statistics
	var applied []bool
	for i := range im.batch {
		events = append(events, im.batch[i].Events...)
		applied = append(applied, flags[i]...)
	}
	for i, a := range applied {
		if a {
			im.pending.Events++
		} else {
			im.pending.Duplicates++
		}
		if !im.cat.ReadsEvent(events[i].Type) && s.obs.IgnoredEvent != nil {
			s.obs.IgnoredEvent(events[i].Type)
		}
	}
	if len(events) > 0 {
		s.eventsWritten(im.cat, events, applied, muts, recs, im.now)
	}
	clear(im.batch)
	im.batch, im.events = im.batch[:0], 0
	if len(im.cancels) >= maxUnsynced || im.durable == nil {
		return im.sync()
	}
	return nil
}

// maxBatchEvents bounds the events of a batch, per customer of
// BatchSize: a batch of customers with long histories is cut short.
const maxBatchEvents = 8

// maxUnsynced bounds the batches an import writes before it waits for
// their durability: one fsync then covers them all, and the next batches
// are parsed and applied while the disk syncs no longer than that.
const maxUnsynced = 16

// sync waits until the batches written are durable (the last one's
// durable func: a sync of the write-ahead log covers every write before
// it), then counts them done.
func (im *importer) sync() error {
	if im.durable == nil && im.pending.Imported == 0 {
		return nil
	}
	var err error
	if im.durable != nil {
		err = im.durable()
	}
	for _, cancel := range im.cancels {
		cancel()
	}
	im.durable, im.cancels = nil, im.cancels[:0]
	if err != nil {
		im.s.storeError(err)
		return fmt.Errorf("sync the lines before line %d: %w", im.res.Lines+1, err)
	}
	im.res.Imported += im.pending.Imported
	im.res.Events += im.pending.Events
	im.res.Duplicates += im.pending.Duplicates
	im.pending = ImportResult{}
	if im.opts.Written != nil {
		im.opts.Written(im.res)
	}
	return nil
}

// isBlank reports whether a line holds only JSON whitespace.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
