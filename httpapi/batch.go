package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// batchPath is the route of a batch of decisions.
const batchPath = "/v1/decide/batch"

// DefaultBatchWriteTimeout bounds the time a batch's answer may take to
// stream (the server's WriteTimeout, meant for one decision, would cut
// it): 100k decisions on the embedded store take seconds, a million on
// Redis minutes. A longer campaign is run in parts (max_pages and
// cursor; nextbest campaign does).
const DefaultBatchWriteTimeout = time.Hour

// Batch bounds.
const (
	// maxBatchPage bounds page_size: the ids of one page are what a batch
	// holds in memory.
	maxBatchPage = 10000
	// batchFlushBytes is the answer buffered before it is sent: a client
	// that went away is noticed within that much.
	batchFlushBytes = 32 << 10
)

// batchOnlyFields are the fields of a batch request that a decide
// request has not; the others (channel, placement, context, limit,
// explain) are a decide request's, checked by parseDecide.
var batchOnlyFields = []string{"customer_ids", "segment", "cursor", "after", "max_pages", "page_size"}

var batchFields = append(slices.Clone(batchOnlyFields), "channel", "placement", "context", "limit", "explain")

// parseBatch parses and validates the body of POST /v1/decide/batch
// against catalog c. Every string it returns is a copy: the batch runs
// after the handler has returned.
func parseBatch(body []byte, c *rules.Catalog) (*nextbest.BatchRequest, error) {
	var p fastjson.Parser // not pooled: the batch outlives the handler
	o, err := parseObject(&p, body)
	if err != nil {
		return nil, err
	}
	if countFields(o, batchFields) != o.Len() {
		return nil, fieldsError(o, batchFields)
	}
	r := &nextbest.BatchRequest{Catalog: c}
	if v := o.Get("customer_ids"); v != nil && v.Type() != fastjson.TypeNull {
		items, err := v.Array()
		if err != nil {
			return nil, invalid("customer_ids: must be an array, got %s", kind(v))
		}
		r.CustomerIDs = make([]string, len(items))
		for i, item := range items {
			id, err := idField("customer_ids["+strconv.Itoa(i)+"]", item)
			if err != nil {
				return nil, err
			}
			r.CustomerIDs[i] = string(id)
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"segment", &r.Segment}, {"cursor", &r.Cursor}, {"after", &r.After}} {
		if v := o.Get(f.name); v != nil && v.Type() != fastjson.TypeNull {
			b, err := stringValue(f.name, v)
			if err != nil {
				return nil, err
			}
			if len(b) > 4*maxIDLen {
				return nil, invalid("%s: longer than %d bytes", f.name, 4*maxIDLen)
			}
			*f.dst = string(b)
		}
	}
	for _, f := range []struct {
		name   string
		dst    *int
		lo, hi int
	}{{"max_pages", &r.MaxPages, 0, 1 << 30}, {"page_size", &r.PageSize, 1, maxBatchPage}} {
		if v := o.Get(f.name); v != nil && v.Type() != fastjson.TypeNull {
			n, err := v.Int()
			if v.Type() != fastjson.TypeNumber || err != nil || n < f.lo || n > f.hi {
				return nil, invalid("%s: must be an integer from %d to %d, got %s", f.name, f.lo, f.hi, v)
			}
			*f.dst = n
		}
	}
	// The fields a decision shares are checked by the decide request's
	// own parser, so that a batch accepts exactly what POST /v1/decide
	// does: the rest of the object, with a stand-in customer.
	for _, f := range batchOnlyFields {
		o.Del(f)
	}
	var a fastjson.Arena
	o.Set("customer_id", a.NewString("batch"))
	var dr decideRequest
	var dp fastjson.Parser
	if err := parseDecide(&dp, o.MarshalTo(nil), c, &dr); err != nil {
		return nil, err
	}
	r.Channel, r.Placement, r.Limit, r.Explain, r.Context = dr.channel.Name, string(dr.placement), dr.limit, dr.explain, dr.context
	return r, nil
}

// errNoScan refuses a segment to a node whose store cannot list its
// customers.
var errNoScan = invalid("segment: this node's store cannot list its customers; send customer_ids")

// errBatchPublic refuses batches to public keys: a browser does not run
// campaigns.
var errBatchPublic = &apiError{code: CodeForbidden, msg: "a batch of decisions is not available with a public key; run campaigns with a server-side key"}

// decideBatch answers POST /v1/decide/batch: one decision per customer of
// a list (customer_ids) or of a segment of the catalog (every stored
// customer in it, the store scanned page by page), made one after the
// other by the service's DecideBatch exactly as POST /v1/decide makes
// one, streamed as NDJSON: one decide response per customer, the same
// bytes /v1/decide answers (AppendDecision), then one summary line
// (batchSummary). A bad request is a 400 before anything is decided;
// once the stream has started, what stops the batch (the store failing,
// the client going away) is in the summary's error, with the cursor to
// resume from.
func (s *Server) decideBatch(ctx *fasthttp.RequestCtx, key *keys.Key, _ time.Time) {
	if key != nil && key.Public {
		writeError(ctx, errBatchPublic)
		return
	}
	r, err := parseBatch(ctx.PostBody(), s.svc.Catalog())
	if err == nil {
		err = s.svc.CheckBatch(r)
	}
	if errors.Is(err, nextbest.ErrNoScan) {
		err = errNoScan
	}
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetContentType("application/x-ndjson")
	decisions, degraded := s.decisions, s.degraded
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		// Ends the batch when the client is gone: a flush fails.
		bctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var buf []byte
		emit := func(d *nextbest.Decision) error {
			decisions.Inc()
			degraded.inc(d.Degraded)
			buf = AppendDecision(buf[:0], &Decision{ID: d.ID, CustomerID: d.CustomerID, Catalog: d.Catalog,
				Result: &d.Result, Explain: d.Explain, Degraded: d.Degraded})
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				cancel()
				return err
			}
			if w.Buffered() >= batchFlushBytes {
				if err := w.Flush(); err != nil {
					cancel()
					return err
				}
			}
			return nil
		}
		sum, err := s.svc.DecideBatch(bctx, r, emit)
		if err != nil && bctx.Err() != nil {
			return // the client is gone: nobody to tell
		}
		b, _ := json.Marshal(summaryOf(sum, r.Segment != "", s.batchError(err)))
		_, _ = w.Write(append(b, '\n'))
		_ = w.Flush()
	})
}

// batchError is the summary's error for what stopped a batch once it
// ran (the request was checked before): the store.
func (s *Server) batchError(err error) *summaryError {
	if err == nil {
		return nil
	}
	s.storeErrs.error("batch", err)
	return &summaryError{Code: CodeStoreUnavailable, Message: "feature store unavailable: the batch stopped; resume it from cursor, after the last customer answered"}
}

// batchSummary is the last line of a batch's answer.
type batchSummary struct {
	Summary batchCounts `json:"summary"`
}

type batchCounts struct {
	Scanned    int            `json:"scanned"`
	Decided    int            `json:"decided"`
	Offered    int            `json:"offered"`
	Fallback   int            `json:"fallback"`
	Suppressed map[string]int `json:"suppressed"`
	Deferred   int            `json:"deferred"`
	Errors     int            `json:"errors"`
	Duplicates int            `json:"duplicates"`
	Done       bool           `json:"done"`
	Last       *string        `json:"last"`
	Cursor     *string        `json:"cursor"`
	Error      *summaryError  `json:"error,omitempty"`
}

func summaryOf(sum nextbest.BatchSummary, segment bool, e *summaryError) batchSummary {
	c := batchCounts{Scanned: sum.Scanned, Decided: sum.Decided, Offered: sum.Offered, Fallback: sum.Fallback,
		Suppressed: map[string]int{}, Deferred: sum.Deferred, Errors: sum.Errors, Duplicates: sum.Duplicates, Done: sum.Done, Error: e}
	for _, r := range []decision.Reason{decision.ChannelIneligible, decision.ContactLimit} {
		c.Suppressed[string(r)] = 0
	}
	for r, n := range sum.Suppressed {
		c.Suppressed[string(r)] = n
	}
	if sum.Last != "" {
		c.Last = &sum.Last
	}
	if segment && !sum.Done {
		// Where to resume a segment ("" its first page; null: done, or
		// a list).
		c.Cursor = &sum.Cursor
	}
	return batchSummary{Summary: c}
}
