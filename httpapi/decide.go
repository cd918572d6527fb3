package httpapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/rs/xid"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// parsers parse every request body. A parser copies the body, so values
// it returns do not point into the fasthttp request.
var parsers fastjson.ParserPool

// decideScratch is the per-request state of a decision, pooled so that a
// decision allocates only what rule evaluation must.
type decideScratch struct {
	req    decision.Request
	res    decision.Result
	buf    []byte
	deltas []featurestore.StatDelta
}

var decidePool = sync.Pool{New: func() any { return new(decideScratch) }}

// maxPooledBuf bounds the response buffer kept in the pool, so one huge
// explanation does not pin its memory forever.
const maxPooledBuf = 64 << 10

func (sc *decideScratch) release() {
	sc.req = decision.Request{}
	clear(sc.res.Offers)
	clear(sc.res.Explain)
	clear(sc.res.Assignments)
	sc.res = decision.Result{Offers: sc.res.Offers[:0], Segments: sc.res.Segments[:0], Explain: sc.res.Explain[:0], Assignments: sc.res.Assignments[:0]}
	if cap(sc.buf) > maxPooledBuf {
		sc.buf = nil
	}
	decidePool.Put(sc)
}

// decideRequest is a parsed, validated decide body. Its byte slices point
// into the parser's buffer: they are valid only until the parser is put
// back.
type decideRequest struct {
	customerID []byte
	channel    *rules.Channel
	placement  []byte
	context    map[string]any // nil when absent or null
	limit      int
	explain    bool
	// customerToken proves customerID for public keys (nil when absent).
	customerToken []byte
}

var decideFields = []string{"customer_id", "channel", "placement", "context", "limit", "explain", "customer_token"}

// parseDecide parses and validates a decide body against catalog c.
func parseDecide(p *fastjson.Parser, body []byte, c *rules.Catalog, r *decideRequest) error {
	o, err := parseObject(p, body)
	if err != nil {
		return err
	}
	if countFields(o, decideFields) != o.Len() {
		return fieldsError(o, decideFields)
	}
	*r = decideRequest{limit: 1}
	if r.customerID, err = idField("customer_id", o.Get("customer_id")); err != nil {
		return err
	}
	if r.customerToken, err = customerToken(o); err != nil {
		return err
	}
	ch, err := requiredString("channel", o.Get("channel"))
	if err != nil {
		return err
	}
	var ok bool
	if r.channel, ok = c.Channel(transient(ch)); !ok {
		return invalid("channel: %q is not one of %s", ch, strings.Join(c.ChannelNames(), ", "))
	}
	if v := o.Get("placement"); v != nil {
		if v.Type() != fastjson.TypeNull {
			if r.placement, err = stringValue("placement", v); err != nil {
				return err
			}
			if len(r.placement) > maxIDLen {
				return invalid("placement: longer than %d bytes", maxIDLen)
			}
		}
	}
	if v := o.Get("context"); v != nil {
		switch v.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeObject:
			co, _ := v.Object()
			if n := countValues(v, maxContextValues+1) - 1; n > maxContextValues { // the values in it
				return invalid("context: more than %d values (rules read a few request attributes, not documents)", maxContextValues)
			}
			if r.context, err = objectMap(co); err != nil {
				return invalid("context: %v", err)
			}
		default:
			return invalid("context: must be an object, got %s", kind(v))
		}
	}
	if v := o.Get("limit"); v != nil {
		if v.Type() != fastjson.TypeNull {
			if v.Type() != fastjson.TypeNumber {
				return invalid("limit: must be a number, got %s", kind(v))
			}
			n, err := v.Int()
			if err != nil || n < 1 || n > decision.MaxLimit {
				return invalid("limit: must be an integer from 1 to %d, got %s", decision.MaxLimit, v)
			}
			r.limit = n
		}
	}
	if v := o.Get("explain"); v != nil {
		switch v.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeTrue:
			r.explain = true
		case fastjson.TypeFalse:
		default:
			return invalid("explain: must be a bool, got %s", kind(v))
		}
	}
	return nil
}

// decide answers POST /v1/decide. key is the caller's API key (nil when
// access control is off); a public key's customer_id counts only with a
// valid customer_token, else the decision is anonymous.
func (s *Server) decide(ctx *fasthttp.RequestCtx, key *keys.Key, start time.Time) {
	cat := s.catalog.Load()
	p := parsers.Get()
	defer parsers.Put(p)
	var dr decideRequest
	err := parseDecide(p, ctx.PostBody(), cat, &dr)
	if key != nil && key.Public {
		if err != nil || !keys.VerifyCustomerToken(s.tokenSecret, dr.customerID, dr.customerToken) {
			dr.customerID = nil // not proven: an anonymous visitor
		}
		if !s.admitPublic(ctx, key, transient(dr.customerID)) {
			return
		}
		if err == nil && dr.explain {
			err = errExplainPublic
		}
	}
	if err != nil {
		writeError(ctx, err)
		return
	}
	sc := decidePool.Get().(*decideScratch)
	defer sc.release()

	now := s.now()
	var rec *featurestore.Record
	var degraded Degradation
	if len(dr.customerID) > 0 {
		rec, degraded = s.record(dr.customerID)
	}
	s.decisions.Inc()
	s.degraded.inc(degraded)
	// Memoised on the (immutable, cached) record until a window moves.
	features := rec.Vector(cat.Schema, now)
	req := &sc.req
	// Thompson sampling draws from a seed derived from the decision id:
	// unique per decision, free, and enough to replay it (decision.SeedOf).
	id := xid.NewWithTime(now)
	// The strings below point into the parser's buffer; Decide does not
	// keep them past its return, and the parser is put back only after the
	// response is written.
	*req = decision.Request{
		CustomerID: transient(dr.customerID),
		Channel:    dr.channel.Name,
		Placement:  transient(dr.placement),
		Limit:      dr.limit,
		Explain:    dr.explain,
		Context:    dr.context,
		Now:        now,
		Seed:       decision.SeedOf(id[:]),
	}
	if rec != nil {
		req.History = rec.Contacts
	}
	if s.stats != nil {
		req.Learned = s.stats.Learned()
	}
	if err := s.engine.Decide(cat, features, req, &sc.res); err != nil {
		s.log.Error("decide", "err", err)
		writeError(ctx, errInternal)
		return
	}
	if s.stats != nil {
		s.countDecision(sc, &sc.res, now)
	}
	d := Decision{
		ID:         id,
		CustomerID: req.CustomerID,
		Catalog:    cat.Version,
		Result:     &sc.res,
		Explain:    dr.explain,
		Degraded:   degraded,
	}
	if sc.res.Channel.DecisionIsImpression && len(sc.res.Offers) > 0 {
		// Deciding is delivering on this channel (email, sms): the offers
		// are recorded as shown before the answer leaves, so caps count
		// them at once.
		s.recordImpressions(cat, string(dr.customerID), d.ID.String(), &sc.res, now)
	}
	sc.buf = AppendDecision(sc.buf[:0], &d)
	sc.buf = append(sc.buf, '\n')
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(sc.buf)
	s.obs.decision(&sc.res, start)
}

// errExplainPublic refuses explain to public keys: an explanation lists
// every offer of the catalog and the rules that kept it out, which is for
// the brand's servers, not for any browser.
var errExplainPublic = &apiError{code: CodeForbidden, msg: "explain: not available with a public key; explanations show the catalog's offers and rules, ask for them with a server-side key"}

// record returns the customer's record for a decision: nil for an unknown
// customer, and nil with the cause when the store failed or timed out.
func (s *Server) record(id []byte) (rec *featurestore.Record, degraded Degradation) {
	if s.cache != nil {
		if rec, ok := s.cache.Cached(transient(id)); ok {
			return rec, NotDegraded
		}
	}
	// Only a miss pays for a deadline, and for an id the store may keep.
	start := time.Now()
	c, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	rec, err := s.store.Load(c, string(id))
	// Whatever error a client makes of it (a context error, a socket read
	// deadline), a read that failed past the deadline failed of it.
	expired := c.Err() != nil
	cancel()
	s.obs.storeRead.UpdateDuration(start)
	switch {
	case err == nil:
		return rec, NotDegraded
	case errors.Is(err, featurestore.ErrNotFound):
		return nil, NotDegraded
	}
	s.storeErrs.error("load", err)
	s.obs.storeErrors.Inc()
	if expired || errors.Is(err, context.DeadlineExceeded) {
		return nil, DegradedDeadline
	}
	return nil, DegradedError
}

// transient returns b as a string without copying. The string shares b's
// memory: use it only for lookups and encoding while b is alive, and never
// hand it to anything that may keep it.
func transient(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// recordImpressions stores an impression of every offer of res for the
// customer. The next decision sees them at once; the decision does not
// wait for an fsync (see applyEvents: a machine crash may lose the last
// of them, never an acknowledged event). A store failure is logged and the
// decision still answered: the offers were chosen, and refusing them would
// not unsend them.
func (s *Server) recordImpressions(cat *rules.Catalog, customer, decisionID string, res *decision.Result, now time.Time) {
	events := make([]featurestore.Event, len(res.Offers))
	for i, o := range res.Offers {
		events[i] = featurestore.Event{
			ID: impressionID(decisionID, o.Offer.ID), CustomerID: customer, Type: "impression",
			OfferID: o.Offer.ID, DecisionID: decisionID, Channel: res.Channel.Name, Time: now,
		}
	}
	if _, err := s.applyEvents(cat, events, now, false); err != nil {
		s.storeErrs.error("record impressions", err)
	}
}

// impressionID is the event id of the impression of offer in a decision.
func impressionID(decisionID, offer string) string { return decisionID + ":" + offer }
