package httpapi

import (
	"context"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// parsers parse every request body. A parser copies the body, so values
// it returns do not point into the fasthttp request.
var parsers fastjson.ParserPool

// decideScratch is the per-request state of a decision, pooled so that a
// decision allocates only what rule evaluation must.
type decideScratch struct {
	req nextbest.Request
	d   nextbest.Decision
	buf []byte
}

var decidePool = sync.Pool{New: func() any { return new(decideScratch) }}

// maxPooledBuf bounds the response buffer kept in the pool, so one huge
// explanation does not pin its memory forever.
const maxPooledBuf = 64 << 10

func (sc *decideScratch) release() {
	sc.req = nextbest.Request{}
	sc.d.Reset()
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
	cat := s.svc.Catalog()
	var dr decideRequest
	var err error
	if body := ctx.PostBody(); !decodeDecide(body, cat, &dr) {
		// Not the common shape, or not valid: the full parser accepts
		// or explains. Its slices point into its own copy of the body,
		// so it is put back only after the response is written.
		p := parsers.Get()
		defer parsers.Put(p)
		err = parseDecide(p, body, cat, &dr)
	}
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
	// The strings below point into the request body or the parser's
	// buffer; the service does not keep them past its return, and both
	// outlive the response being written.
	sc.req = nextbest.Request{
		Catalog:    cat,
		CustomerID: transient(dr.customerID),
		Channel:    dr.channel.Name,
		Placement:  transient(dr.placement),
		Limit:      dr.limit,
		Explain:    dr.explain,
		Context:    dr.context,
	}
	err = s.svc.Decide(context.Background(), &sc.req, &sc.d)
	s.decisions.Inc()
	s.degraded.inc(sc.d.Degraded)
	if err != nil {
		writeError(ctx, errInternal)
		return
	}
	sc.buf = AppendDecision(sc.buf[:0], &Decision{
		ID:         sc.d.ID,
		CustomerID: sc.d.CustomerID,
		Catalog:    sc.d.Catalog,
		Result:     &sc.d.Result,
		Explain:    sc.d.Explain,
		Degraded:   sc.d.Degraded,
	})
	sc.buf = append(sc.buf, '\n')
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(sc.buf)
	s.obs.decision(cat, &sc.d.Result, start)
}

// errExplainPublic refuses explain to public keys: an explanation lists
// every offer of the catalog and the rules that kept it out, which is for
// the brand's servers, not for any browser.
var errExplainPublic = &apiError{code: CodeForbidden, msg: "explain: not available with a public key; explanations show the catalog's offers and rules, ask for them with a server-side key"}

// transient returns b as a string without copying. The string shares b's
// memory: use it only for lookups and encoding while b is alive, and never
// hand it to anything that may keep it.
func transient(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
