package httpapi

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest/featurestore"
)

// The seed corpora live in testdata/fuzz/<target>/.

// checkRejection fails unless err is a client error: outside bytes never
// make an internal error.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || (ae.status() != 400 && ae.status() != 413) {
		t.Fatalf("rejection is not a client error: %#v", err)
	}
}

// FuzzDecideRequest feeds bytes to the decide parser and the whole
// handler: neither may panic, the handler always answers JSON, and a body
// the parser accepts, encoded again, parses to the same request.
func FuzzDecideRequest(f *testing.F) {
	store := newFakeStore()
	s := newTestServer(f, store, nil)
	cat := s.svc.Catalog()
	f.Fuzz(func(t *testing.T, body []byte) {
		var p fastjson.Parser
		var r decideRequest
		if err := parseDecide(&p, body, cat, &r); err != nil {
			checkRejection(t, err)
		} else {
			m := map[string]any{"customer_id": string(r.customerID), "channel": r.channel.Name, "limit": r.limit, "explain": r.explain}
			if len(r.placement) > 0 {
				m["placement"] = string(r.placement)
			}
			if r.context != nil {
				m["context"] = r.context
			}
			again, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("encode %+v: %v", r, err)
			}
			var p2 fastjson.Parser
			var r2 decideRequest
			if err := parseDecide(&p2, again, cat, &r2); err != nil {
				t.Fatalf("%s accepted, but its re-encoding %s is not: %v", body, again, err)
			}
			if diff := cmp.Diff(r, r2, cmp.AllowUnexported(decideRequest{}), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("re-parse of %s differs (-first +second):\n%s", again, diff)
			}
		}

		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/v1/decide")
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		s.Handler()(&ctx)
		if st := ctx.Response.StatusCode(); st != 200 && st != 400 && st != 413 {
			t.Fatalf("status %d for %q: %s", st, body, ctx.Response.Body())
		}
		if !json.Valid(ctx.Response.Body()) {
			t.Fatalf("response is not JSON: %s", ctx.Response.Body())
		}
	})
}

// FuzzEventsRequest feeds bytes to the events parser: it may not panic,
// and events it accepts, encoded again, parse to the same events.
func FuzzEventsRequest(f *testing.F) {
	cat := loadCatalog(f, "testdata/catalog.yaml").Load()
	schema := cat.Schema
	f.Fuzz(func(t *testing.T, body []byte) {
		var p fastjson.Parser
		events, _, err := parseEvents(&p, body, cat, testNow, 100, nil)
		if err != nil {
			checkRejection(t, err)
			return
		}
		list := make([]map[string]any, len(events))
		for i, ev := range events {
			if ev.CustomerID == "" || !validEventType([]byte(ev.Type)) || ev.Time.IsZero() || ev.Time.After(testNow.Add(maxFuture)) {
				t.Fatalf("accepted an invalid event: %+v", ev)
			}
			if err := schema.CheckEvent(&ev); err != nil {
				t.Fatalf("accepted an event CheckEvent rejects: %v", err)
			}
			m := map[string]any{"customer_id": ev.CustomerID, "type": ev.Type, "ts": ev.Time.Format(time.RFC3339Nano)}
			if ev.ID != "" {
				m["event_id"] = ev.ID
			}
			if ev.Channel != "" {
				m["channel"] = ev.Channel
			}
			if ev.OfferID != "" {
				m["offer_id"] = ev.OfferID
			}
			if ev.DecisionID != "" {
				m["decision_id"] = ev.DecisionID
			}
			if ev.Properties != nil {
				m["properties"] = ev.Properties
			}
			list[i] = m
		}
		again, err := json.Marshal(map[string]any{"events": list})
		if err != nil {
			t.Fatalf("encode %+v: %v", events, err)
		}
		var p2 fastjson.Parser
		events2, _, err := parseEvents(&p2, again, cat, testNow, 100, nil)
		if err != nil {
			t.Fatalf("%s accepted, but its re-encoding %s is not: %v", body, again, err)
		}
		if diff := cmp.Diff(events, events2); diff != "" {
			t.Fatalf("re-parse of %s differs (-first +second):\n%s", again, diff)
		}
		// Applying them never panics either.
		for _, m := range featurestore.EventMutations(schema, events, testNow) {
			m.Apply(&featurestore.Record{})
		}
	})
}
