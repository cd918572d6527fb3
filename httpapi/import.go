package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// importPath is the bulk import's route.
const importPath = "/v1/customers:import"

// Import option defaults.
const (
	// DefaultMaxImportBytes bounds an import request's body, which is
	// held in memory while it is imported: about 200k customers of the
	// retail example's size.
	DefaultMaxImportBytes = 64 << 20
	// DefaultImportReadTimeout bounds the time to receive an import
	// request's body.
	DefaultImportReadTimeout = 5 * time.Minute
)

// maxImportErrors bounds the bad lines an import's answer lists (all are
// counted).
const maxImportErrors = 100

var importFields = []string{"customer_id", "features", "events"}

// ParseImportLine parses one line of an import (POST /v1/customers:import,
// nextbest import): a JSON object
//
//	{"customer_id":"c-1","features":{"tier":"gold"},"events":[{"type":"purchase","ts":"2026-11-01T10:00:00Z","properties":{"amount":40}}]}
//
// with customer_id and at least one of features and events. features is
// checked as the body of PUT /v1/customers/{id} is, each event as one of
// POST /v1/events (at now, against cat's schema); an event's customer_id
// may be left out and is the line's, any other is refused. It is a
// nextbest.ImportParser.
func ParseImportLine(line []byte, cat *rules.Catalog, now time.Time) (nextbest.ImportLine, error) {
	l, err := parseImportLine(bytes.TrimRight(line, "\r\n"), cat, now)
	var ae *apiError
	if errors.As(err, &ae) {
		return l, errors.New(ae.msg) // the field and why; the caller says where
	}
	return l, err
}

func parseImportLine(line []byte, cat *rules.Catalog, now time.Time) (nextbest.ImportLine, error) {
	var l nextbest.ImportLine
	p := parsers.Get()
	defer parsers.Put(p) // the line holds copies, not the parser's bytes
	o, err := parseObject(p, line)
	if err != nil {
		return l, err
	}
	if countFields(o, importFields) != o.Len() {
		return l, fieldsError(o, importFields)
	}
	idv := o.Get("customer_id")
	id, err := idField("customer_id", idv)
	if err != nil {
		return l, err
	}
	l.CustomerID = string(id)
	fv, evs := o.Get("features"), o.Get("events")
	if fv == nil && evs == nil {
		return l, invalid("a line sets features, events or both")
	}
	if fv != nil {
		if l.Attrs, err = featureAttrs(fv, cat.Schema); err != nil {
			return l, err
		}
	}
	if evs == nil {
		return l, nil
	}
	items, err := evs.Array()
	if err != nil {
		return l, invalid("events: must be an array, got %s", kind(evs))
	}
	l.Events = make([]featurestore.Event, len(items))
	for i, item := range items {
		eo, err := item.Object()
		if err != nil {
			return l, invalid("events[%d]: must be an object, got %s", i, kind(item))
		}
		switch c := eo.Get("customer_id"); {
		case c == nil:
			eo.Set("customer_id", idv)
		case c.Type() != fastjson.TypeString || !bytes.Equal(c.GetStringBytes(), id):
			return l, invalid("events[%d].customer_id: must be the line's customer_id (or left out)", i)
		}
		if l.Events[i], err = parseEvent(eo, cat, now, nil); err != nil {
			return l, atIndex(i, err)
		}
	}
	return l, nil
}

// customersImport answers POST /v1/customers:import: an NDJSON body of
// ParseImportLine's lines, parsed line by line in place and written in
// batches through the service (nextbest.Service.Import). ?on_error=skip (the
// default) skips bad lines, ?on_error=fail stops at the first, having
// written the lines before it. The answer is a summary (importSummary):
// 200 once every good line is durable; 400 with the bad line under
// on_error=fail, 503 if the store failed, each with what was done until
// then (413 past MaxImportBytes, before anything is done).
func (s *Server) customersImport(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	failFast := false
	switch v := string(ctx.QueryArgs().Peek("on_error")); v {
	case "", "skip":
	case "fail":
		failFast = true
	default:
		writeError(ctx, invalid("on_error: %q is neither skip nor fail", v))
		return
	}
	res, err := s.svc.Import(context.Background(), bytes.NewReader(ctx.PostBody()), nextbest.ImportOptions{
		Parse:        ParseImportLine,
		FailFast:     failFast,
		MaxLineBytes: s.maxBody,
		MaxErrors:    maxImportErrors,
	})
	s.metrics.GetOrCreateCounter("nextbest_import_customers_total").Add(res.Imported)
	s.metrics.GetOrCreateCounter("nextbest_import_lines_skipped_total").Add(res.Skipped)
	var ie *nextbest.ImportError
	var ae *apiError
	switch {
	case err == nil:
	case errors.As(err, &ie):
		ae = invalid("%s", ie.Error())
	default:
		s.storeErrs.error("import", err)
		ae = errStoreWrite
	}
	writeImport(ctx, res, ae)
}

// importSummary is the answer of an import.
type importSummary struct {
	Lines      int           `json:"lines"`
	Imported   int           `json:"imported"`
	Skipped    int           `json:"skipped"`
	Events     int           `json:"events"`
	Duplicates int           `json:"duplicate_events"`
	Errors     []importError `json:"errors"`
	Error      *summaryError `json:"error,omitempty"`
}

type importError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

type summaryError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeImport(ctx *fasthttp.RequestCtx, res nextbest.ImportResult, ae *apiError) {
	sum := importSummary{Lines: res.Lines, Imported: res.Imported, Skipped: res.Skipped,
		Events: res.Events, Duplicates: res.Duplicates, Errors: make([]importError, len(res.Errors))}
	for i, e := range res.Errors {
		sum.Errors[i] = importError{Line: e.Line, Message: e.Err.Error()}
	}
	if ae != nil {
		// The error as writeError sets it, with the summary beside it.
		writeError(ctx, ae)
		sum.Error = &summaryError{Code: ae.code, Message: ae.msg}
	}
	b, _ := json.Marshal(sum)
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}

// checkImportBody checks an import's media type (NDJSON: application/x-ndjson,
// application/jsonl and their aliases, JSON, text/plain, or none) and
// declared size.
func (s *Server) checkImportBody(contentType []byte, size int) *apiError {
	if len(contentType) > 0 && !isJSON(contentType) && !isNDJSON(contentType) {
		return &apiError{code: CodeUnsupportedMediaType, msg: fmt.Sprintf("content type %q is not NDJSON; send application/x-ndjson", contentType)}
	}
	if size > s.maxImport {
		return importTooLarge(s.maxImport)
	}
	return nil
}

func isNDJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	for _, t := range [...]string{"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines", "text/plain"} {
		if bytes.EqualFold(ct, []byte(t)) {
			return true
		}
	}
	return false
}

// HandleHeaders gives an import (POST /v1/customers:import) its own body
// limit, MaxImportBytes, and read timeout, ImportReadTimeout; use it as
// fasthttp.Server.HeaderReceived, with the server's MaxRequestBodySize at
// MaxBodyBytes.
//
// The body is read whole before the handler runs: fasthttp's
// StreamRequestBody, which would stream it, is the whole server's
// setting, and with it every request's body is pre-read before its
// handler (a body declared larger than the limit but not sent then waits
// for the read timeout instead of getting its 413 at once) and read
// unbounded by PostBody. A larger file is sent in parts (nextbest import
// --url); a part's memory is bounded by MaxImportBytes.
func (s *Server) HandleHeaders(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if bytes.HasPrefix(h.RequestURI(), []byte(importPath)) {
		return fasthttp.RequestConfig{ReadTimeout: s.importTimeout, MaxRequestBodySize: s.maxImport}
	}
	if bytes.HasPrefix(h.RequestURI(), []byte(batchPath)) {
		// A batch streams its answer for longer than one decision's
		// write timeout.
		return fasthttp.RequestConfig{WriteTimeout: DefaultBatchWriteTimeout}
	}
	return fasthttp.RequestConfig{}
}

func importTooLarge(limit int) *apiError {
	return &apiError{code: CodePayloadTooLarge, msg: fmt.Sprintf("import body is larger than %d bytes; send the file in parts of whole lines (nextbest import --url does)", limit)}
}
