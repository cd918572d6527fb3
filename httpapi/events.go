package httpapi

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// maxFuture bounds how far ahead of the server's clock an event's ts may
// be: clocks drift, but an event from next week is a bug.
const maxFuture = 24 * time.Hour

// maxEventTypeLen bounds an event type, as the pattern
// ^[a-z][a-z0-9_.-]{0,63}$ does.
const maxEventTypeLen = 64

var eventFields = []string{"event_id", "customer_id", "type", "channel", "ts", "properties", "offer_id", "decision_id", "customer_token"}

// parseEvents parses and validates an events body: {"events": [...]} or
// a single event object. Every event is checked, against schema too,
// before any is returned, so a request is applied whole or not at all.
// Events without ts happen at now. single says the body was one event
// object rather than a list.
//
// verify, when not nil, must accept each event's customer_token for its
// customer_id (requests made with a public key).
func parseEvents(p *fastjson.Parser, body []byte, cat *rules.Catalog, now time.Time, maxEvents int, verify func(customerID, token []byte) bool) (events []featurestore.Event, single bool, err error) {
	o, err := parseObject(p, body)
	if err != nil {
		return nil, false, err
	}
	list := o.Get("events")
	if list == nil {
		// A single event object.
		if known := countFields(o, eventFields); known != o.Len() {
			return nil, true, fieldsError(o, append([]string{"events"}, eventFields...))
		}
		ev, err := parseEvent(o, cat, now, verify)
		if err != nil {
			return nil, true, err
		}
		return []featurestore.Event{ev}, true, nil
	}
	if o.Len() != 1 {
		return nil, false, fieldsError(o, []string{"events"})
	}
	items, err := list.Array()
	if err != nil {
		return nil, false, invalid("events: must be an array, got %s", kind(list))
	}
	if len(items) == 0 {
		return nil, false, invalid("events: must not be empty")
	}
	if len(items) > maxEvents {
		return nil, false, &apiError{code: CodePayloadTooLarge, msg: fmt.Sprintf("events: %d events, at most %d per request", len(items), maxEvents)}
	}
	events = make([]featurestore.Event, len(items))
	for i, item := range items {
		eo, err := item.Object()
		if err != nil {
			return nil, false, invalid("events[%d]: must be an object, got %s", i, kind(item))
		}
		if events[i], err = parseEvent(eo, cat, now, verify); err != nil {
			return nil, false, atIndex(i, err)
		}
	}
	return events, false, nil
}

// parseEvent parses one event object; what the event means is the
// service's to check (nextbest.CheckEvents). Its errors name the field alone
// ("ts: ..."); the caller prefixes the event's index.
func parseEvent(o *fastjson.Object, cat *rules.Catalog, now time.Time, verify func(customerID, token []byte) bool) (featurestore.Event, error) {
	var ev featurestore.Event
	if known := countFields(o, eventFields); known != o.Len() {
		return ev, fieldsError(o, eventFields)
	}
	token, err := customerToken(o)
	if err != nil {
		return ev, err
	}
	if verify != nil {
		var id []byte
		if v := o.Get("customer_id"); v != nil && v.Type() == fastjson.TypeString {
			id = v.GetStringBytes()
		}
		if !verify(id, token) {
			return ev, &apiError{code: CodeForbidden, msg: "customer_token: does not prove customer_id (a public key sends events only for customers its site signed)"}
		}
	}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"offer_id", &ev.OfferID}, {"decision_id", &ev.DecisionID}} {
		if v := o.Get(f.name); v != nil && v.Type() != fastjson.TypeNull {
			b, err := idField(f.name, v)
			if err != nil {
				return ev, err
			}
			*f.dst = string(b)
		}
	}
	if v := o.Get("event_id"); v != nil {
		if v.Type() != fastjson.TypeNull {
			b, err := idField("event_id", v)
			if err != nil {
				return ev, err
			}
			if len(b) > featurestore.MaxEventIDLen {
				return ev, invalid("event_id: longer than %d bytes (an idempotency key: a UUID, a ULID or a hash fits)", featurestore.MaxEventIDLen)
			}
			ev.ID = string(b)
		}
	}
	v := o.Get("customer_id")
	b, err := idField("customer_id", v)
	if err != nil {
		return ev, err
	}
	ev.CustomerID = string(b)

	if b, err = requiredString("type", o.Get("type")); err != nil {
		return ev, err
	}
	if !validEventType(b) {
		return ev, invalid("type: %q must match ^[a-z][a-z0-9_.-]{0,63}$", b)
	}
	ev.Type = string(b)

	if v = o.Get("channel"); v != nil {
		if v.Type() != fastjson.TypeNull {
			if b, err = stringValue("channel", v); err != nil {
				return ev, err
			}
			if len(b) > maxIDLen {
				return ev, invalid("channel: longer than %d bytes", maxIDLen)
			}
			ev.Channel = string(b)
		}
	}

	ev.Time = now
	if v = o.Get("ts"); v != nil {
		if v.Type() != fastjson.TypeNull {
			if b, err = stringValue("ts", v); err != nil {
				return ev, err
			}
			t, err := time.Parse(time.RFC3339Nano, string(b))
			if err != nil {
				return ev, invalid("ts: %q is not an RFC 3339 time such as 2026-11-22T10:00:00Z", b)
			}
			switch {
			case t.Unix() <= 0:
				return ev, invalid("ts: %q is before 1970", b)
			case t.After(now.Add(maxFuture)):
				return ev, invalid("ts: %q is more than %v ahead of the server's clock", b, maxFuture)
			}
			ev.Time = t
		}
	}

	if v = o.Get("properties"); v != nil {
		switch v.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeObject:
			po, _ := v.Object()
			var err error
			if ev.Properties, err = objectMap(po); err != nil {
				return ev, invalid("properties: %v", err)
			}
		default:
			return ev, invalid("properties: must be an object, got %s", kind(v))
		}
	}
	if err := cat.Schema.CheckEvent(&ev); err != nil {
		return ev, invalid("properties: %v", err)
	}
	return ev, nil
}

// validEventType reports whether b matches ^[a-z][a-z0-9_.-]{0,63}$.
func validEventType(b []byte) bool {
	if len(b) == 0 || len(b) > maxEventTypeLen || b[0] < 'a' || b[0] > 'z' {
		return false
	}
	for _, c := range b[1:] {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// events answers POST /v1/events. key is the caller's API key (nil when
// access control is off); with a public key, every event must prove its
// customer_id with a customer_token. The 202 body says how many events
// were accepted and how many of those nothing in the catalog reads
// ("ignored", counted per type in nextbest_events_ignored_total), so a
// misspelt type shows at once.
func (s *Server) events(ctx *fasthttp.RequestCtx, key *keys.Key) {
	cat := s.svc.Catalog()
	now := s.svc.Now()
	p := parsers.Get()
	var verify func(customerID, token []byte) bool
	if key != nil && key.Public {
		verify = func(id, token []byte) bool { return keys.VerifyCustomerToken(s.tokenSecret, id, token) }
	}
	events, single, err := parseEvents(p, ctx.PostBody(), cat, now, s.maxEvents, verify)
	parsers.Put(p) // events hold copies, not the parser's bytes
	if key != nil && key.Public {
		customer := "" // refused below, counted against its address
		if err == nil {
			customer = events[0].CustomerID // proven, as every event's
		}
		if !s.admitPublic(ctx, key, customer) {
			return
		}
	}
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, wait, err := s.svc.ApplyEventsVisible(cat, events, now)
	if err == nil {
		// Applied; what is left is the wait for the shared fsync, which
		// is not this request's CPU (heldSlot).
		releaseSlot(ctx)
		err = wait()
	}
	var refused *nextbest.EventError
	if errors.As(err, &refused) {
		writeError(ctx, eventError(refused, single))
		return
	}
	if err != nil {
		s.storeErrs.error("mutate", err)
		s.eventsRefused.Inc()
		writeError(ctx, errStoreWrite)
		return
	}
	s.eventsAccepted.Add(res.Accepted)
	s.eventsDuplicate.Add(res.Accepted - res.Applied)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType(contentTypeJSON)
	b := append(make([]byte, 0, 48), `{"accepted":`...)
	b = strconv.AppendInt(b, int64(res.Accepted), 10)
	b = append(b, `,"ignored":`...)
	b = strconv.AppendInt(b, int64(res.Ignored), 10)
	ctx.SetBody(append(b, "}\n"...))
}

var errStoreWrite = &apiError{code: CodeStoreUnavailable, msg: "feature store unavailable: the request was not acknowledged; retry it"}

// atIndex prefixes the message of err, an *apiError about one field of an
// event, with the event's index: "events[3].ts: ...".
func atIndex(i int, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	return &apiError{code: ae.code, msg: fmt.Sprintf("events[%d].%s", i, ae.msg)}
}
