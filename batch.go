package nextbest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// CustomerScanner lists the customers a store holds a record of, in
// pages: the ids after cursor ("" for the first page) and the cursor of
// the next page, "" once the scan is done. A page holds about count ids;
// it may hold none while the scan is not done. featurestore/embedded
// (ordered by id, the cursor is the page's last id) and
// featurestore/redisstore (SCAN per cluster master, the cursor is
// SCAN's) implement it.
type CustomerScanner interface {
	ScanCustomers(ctx context.Context, cursor string, count int) (ids []string, next string, err error)
}

// BatchRequest asks for one decision per customer of a list or of a
// segment: an outbound campaign. Exactly one of CustomerIDs and Segment
// is set.
type BatchRequest struct {
	// Catalog decides; nil for the catalog in force when the batch
	// starts (the whole batch decides under one catalog).
	Catalog   *rules.Catalog
	Channel   string
	Placement string
	Limit     int // offers per customer, 1 to decision.MaxLimit
	Explain   bool
	Context   map[string]any // the request attributes of every decision
	// CustomerIDs are the customers, decided in order (a customer the
	// store has no record of gets the schema's defaults, as in Decide).
	CustomerIDs []string
	// Segment names a segment of the catalog: every customer the store
	// holds a record of is scanned (Options.Customers) and those in the
	// segment, as a decision of this request would find them, are
	// decided.
	Segment string
	// Cursor resumes a segment's scan at a page ("" for the first), as
	// BatchSummary.Cursor gives it.
	Cursor string
	// After skips the customers of the first page up to and including
	// this one: they were decided by the run being resumed. If the page
	// no longer holds it, none is skipped (a Redis page may change when
	// Redis resizes its table; see featurestore/redisstore's
	// ScanCustomers): they are decided again, under the contact policy
	// and caps that the first decisions recorded.
	After string
	// PageSize is the ids read per page of the scan. Default
	// DefaultBatchPage (1000).
	PageSize int
	// MaxPages stops a segment's batch after this many pages, with
	// BatchSummary.Cursor where to resume. Default 0: every page.
	MaxPages int
}

// DefaultBatchPage is the default BatchRequest.PageSize.
const DefaultBatchPage = 1000

// BatchSummary is what a batch did.
type BatchSummary struct {
	// Scanned is the customers read: the store's customers scanned for
	// a segment (those skipped by After excluded), the ids of a list.
	Scanned int
	// Decided is the decisions made, one per customer in the segment or
	// listed: each was passed to the emit func.
	Decided int
	// Offered is the decisions that chose at least one offer (on a
	// decision_is_impression channel, recorded as shown: the sends).
	Offered int
	// Fallback is the decisions answered with the channel's default
	// content, no offer being eligible.
	Fallback int
	// Suppressed counts the decisions the channel's policy withheld
	// whole, by reason (decision.ChannelIneligible, ContactLimit): no
	// offer, no fallback.
	Suppressed map[decision.Reason]int
	// Deferred is the decisions withheld by quiet hours, each with its
	// next_allowed_at: to send later, not to drop.
	Deferred int
	// Errors is the customers not decided because the engine failed on
	// them (a rule error that is not the customer's), counted and
	// skipped.
	Errors int
	// Duplicates is the ids of a list not decided because their
	// customer was decided earlier in the batch: the same id listed
	// twice, or an id merged into a customer listed too (one person,
	// one message).
	Duplicates int
	// Done is set when every customer of the list or segment was
	// decided: the batch did not stop early.
	Done bool
	// Last is the last customer decided; "" for none.
	Last string
	// Cursor is where a segment's batch that stopped before the end of
	// the scan (not Done) resumes (BatchRequest.Cursor, with After =
	// Last): the page of Last when the batch was stopped inside it
	// (cancelled, failed), else the next page; "" is the first page.
	Cursor string
}

// ErrNoScan is returned for a batch over a segment by a service whose
// store cannot list its customers (Options.Customers is nil).
var ErrNoScan = errors.New("nextbest: the store cannot list its customers (no scan)")

// CheckBatch returns DecideBatch's refusal of r, if any, without
// deciding: a *RequestError, or ErrNoScan for a segment when the store
// cannot list its customers. A transport calls it before it starts to
// stream the answer.
func (s *Service) CheckBatch(r *BatchRequest) error {
	cat := r.Catalog
	if cat == nil {
		cat = s.catalog.Load()
	}
	seg, err := checkBatch(cat, r)
	if err != nil {
		return err
	}
	if seg != nil && s.customers == nil {
		return ErrNoScan
	}
	if s.store == nil {
		return errNoStore
	}
	return nil
}

// DecideBatch makes one decision per customer of r's list or segment,
// one after the other, through Decide's path, exactly as a decision of
// POST /v1/decide would be made at that moment: the channel's policy
// (consent, contact limit, quiet hours), the offers' caps and the
// catalog's contact policy see every impression recorded until then, by
// any channel, this batch's included, and on a decision_is_impression
// channel each decision's offers are recorded as shown before emit is
// called with it. A second run of the same campaign thus sends nothing a
// cap or contact limit refuses after the first.
//
// emit receives each decision, which is reused after emit returns; an
// error from emit (the client went away) stops the batch. Memory is one
// page of ids, whatever the segment's size: the store is scanned page by
// page (Options.Customers), every stored customer is read once to judge
// the segment (a scan of a segment reads every record), and those in it
// are decided.
//
// Each customer's record is read under Options.MutateTimeout, not a
// real-time decision's StoreTimeout, and the decision made from it: no
// decision of a batch is degraded. A refusal of r is a *RequestError.
// The batch stops at ctx's end, at emit's error, at a failure of the
// scan or of a customer's read (the store failing: no decision is made
// from defaults, which know no contact history, for an outbound send),
// returning that error with what was done until then and where to
// resume.
func (s *Service) DecideBatch(ctx context.Context, r *BatchRequest, emit func(*Decision) error) (BatchSummary, error) {
	sum := BatchSummary{Suppressed: map[decision.Reason]int{}}
	cat := r.Catalog
	if cat == nil {
		cat = s.catalog.Load()
	}
	rc := *r
	rc.Catalog, r = cat, &rc
	if err := s.CheckBatch(r); err != nil {
		return sum, err
	}
	seg, _ := checkBatch(cat, r)
	b := batcher{s: s, cat: cat, r: r, seg: seg, emit: emit, sum: &sum}
	b.req = Request{Catalog: cat, Channel: r.Channel, Placement: r.Placement, Limit: r.Limit, Explain: r.Explain, Context: r.Context}
	if seg == nil {
		b.seen = make(map[string]struct{}, len(r.CustomerIDs))
		for _, id := range r.CustomerIDs {
			if err := b.one(ctx, id); err != nil {
				return sum, err
			}
		}
		sum.Done = true
		return sum, nil
	}
	size := r.PageSize
	if size <= 0 {
		size = DefaultBatchPage
	}
	cursor, after := r.Cursor, r.After
	for pages := 0; ; pages++ {
		if r.MaxPages > 0 && pages == r.MaxPages {
			sum.Cursor = cursor
			return sum, nil
		}
		if err := ctx.Err(); err != nil {
			sum.Cursor = cursor
			return sum, err
		}
		ids, next, err := s.customers.ScanCustomers(ctx, cursor, size)
		if err != nil {
			s.storeError(err)
			sum.Cursor = cursor
			return sum, fmt.Errorf("scan the customers: %w", err)
		}
		if after != "" {
			for i, id := range ids {
				if id == after {
					ids = ids[i+1:]
					break
				}
			}
			after = ""
		}
		for _, id := range ids {
			if err := b.one(ctx, id); err != nil {
				// Resumed from this page, after the last decided.
				sum.Cursor = cursor
				return sum, err
			}
		}
		if next == "" {
			sum.Done = true
			return sum, nil
		}
		cursor = next
	}
}

// checkBatch checks r against cat and returns its segment, nil for a
// list.
func checkBatch(cat *rules.Catalog, r *BatchRequest) (*rules.Segment, error) {
	if _, ok := cat.Channel(r.Channel); !ok {
		return nil, &RequestError{Field: "channel", Reason: fmt.Sprintf("%q is not one of %s", r.Channel, strings.Join(cat.ChannelNames(), ", "))}
	}
	switch {
	case (r.Segment == "") == (r.CustomerIDs == nil):
		return nil, &RequestError{Field: "customer_ids, segment", Reason: "exactly one of them is required"}
	case r.Segment == "":
		if r.Cursor != "" || r.After != "" || r.MaxPages != 0 {
			return nil, &RequestError{Field: "cursor, after, max_pages", Reason: "resume a segment's scan; a list of customer_ids has none"}
		}
		return nil, nil
	}
	for _, seg := range cat.Segments {
		if seg.Name == r.Segment {
			return seg, nil
		}
	}
	names := make([]string, len(cat.Segments))
	for i, seg := range cat.Segments {
		names[i] = seg.Name
	}
	if len(names) == 0 {
		return nil, &RequestError{Field: "segment", Reason: fmt.Sprintf("%q: the catalog declares no segment", r.Segment)}
	}
	return nil, &RequestError{Field: "segment", Reason: fmt.Sprintf("%q is not one of %s", r.Segment, strings.Join(names, ", "))}
}

// batcher is the state of one DecideBatch.
type batcher struct {
	s    *Service
	cat  *rules.Catalog
	r    *BatchRequest
	seg  *rules.Segment // nil for a list
	emit func(*Decision) error
	sum  *BatchSummary

	req  Request  // every decision's, but for CustomerID and Now
	d    Decision // reused
	view featurestore.View
	// seen are the customers a list's batch decided (a segment's scan
	// lists each customer once: nil).
	seen map[string]struct{}
}

// one reads the customer's record, judges the segment and decides: emit
// gets the decision. It returns an error only when the batch must stop.
func (b *batcher) one(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, sum := b.s, b.sum
	sum.Scanned++
	now := s.now()
	// The read a decision makes, under the batch's deadline: a store
	// that fails stops the batch rather than sending from defaults,
	// which know no contact history.
	packed, rec, customer, err := s.batchRecord(ctx, id)
	if err != nil {
		return fmt.Errorf("read customer %q: %w", id, err)
	}
	if customer != id && b.seg != nil {
		// An id merged into another customer: that customer is in the
		// scan under their own id, and is decided there, once.
		sum.Scanned--
		return nil
	}
	if b.seen != nil {
		if _, dup := b.seen[customer]; dup {
			sum.Duplicates++
			return nil
		}
		b.seen[customer] = struct{}{}
	}
	b.req.CustomerID, b.req.Now = id, now
	if b.seg != nil {
		features, _ := b.view.Read(packed, b.cat.Schema, now)
		if rec != nil {
			features, _ = b.view.ReadRecord(rec, b.cat.Schema, now)
		}
		dreq := decision.Request{CustomerID: id, Channel: b.r.Channel, Placement: b.r.Placement, Context: b.r.Context, Now: now}
		in, err := s.engine.InSegment(b.cat, b.seg, features, &dreq)
		if err != nil {
			return err
		}
		if !in {
			return nil
		}
	}
	d := &b.d
	d.Reset()
	// Decide's path from the record on: the same engine, the same
	// impressions recorded.
	if err := s.decideFrom(&b.req, d, customer, packed, rec, NotDegraded); err != nil {
		sum.Errors++
		return nil
	}
	res := &d.Result
	switch {
	case len(res.Offers) > 0:
		sum.Offered++
	case res.Suppressed.Reason == decision.QuietHours:
		sum.Deferred++
	case res.Suppressed.Reason != "":
		sum.Suppressed[res.Suppressed.Reason]++
	default:
		sum.Fallback++
	}
	sum.Decided++
	sum.Last = id
	return b.emit(d)
}

// batchRecord reads the customer's record for a batch: from the cache,
// else from the store under Options.MutateTimeout (a batch is not held to
// a real-time decision's deadline, Options.StoreTimeout, which a busy
// store passes now and then: it would stop the batch). Both nil for a
// customer the store has no record of. customer is id, or for an id
// merged into another (an alias) the customer it resolves to.
func (s *Service) batchRecord(ctx context.Context, id string) (packed featurestore.Packed, rec *featurestore.Record, customer string, err error) {
	customer = id
	for hops := 0; ; hops++ {
		if s.cache != nil {
			if p, ok := s.cache.Cached(customer); ok {
				return p, nil, customer, nil
			}
		}
		start := time.Now()
		c, cancel := context.WithTimeout(ctx, s.mutateTimeout)
		rec, err = s.store.Load(c, customer)
		cancel()
		if s.obs.StoreRead != nil {
			s.obs.StoreRead(time.Since(start))
		}
		switch {
		case err == nil:
			return nil, rec, customer, nil
		case errors.Is(err, featurestore.ErrNotFound):
			// An alias decides for the customer it was merged into.
			if target, ok := aliasTarget(err, customer); ok && hops < featurestore.MaxAliasHops {
				customer = target
				continue
			}
			return nil, nil, customer, nil
		}
		s.storeError(err)
		return nil, nil, customer, err
	}
}
