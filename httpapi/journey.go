package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// A customer's journey and their right to be forgotten: GET
// /v1/customers/{id}/timeline, GET /v1/customers/{id}/export and DELETE
// /v1/customers/{id}. These are rare requests (an agent's screen, a
// privacy request), so they are encoded with encoding/json.

// DefaultTimelineLimit is the number of timeline entries answered when the
// request names no limit (or fewer, when the timelines kept are shorter).
const DefaultTimelineLimit = 50

// customerSubID returns the {id} of a path /v1/customers/{id}<suffix>.
// An id holding an escaped slash can make the path, once unescaped, look
// like one with the suffix when it is not: the request is then for the
// customer of that id, served by customerGet, and ok is false.
func (s *Server) customerSubID(ctx *fasthttp.RequestCtx, suffix string, key *keys.Key, start time.Time) (id string, ok bool) {
	orig := ctx.URI().PathOriginal()
	rest, found := bytes.CutSuffix(orig, []byte(suffix))
	if !found {
		s.customerGet(ctx, key, start)
		return "", false
	}
	id, err := customerPathID(rest)
	if err != nil {
		writeError(ctx, err)
		return "", false
	}
	return id, true
}

// customerTimeline serves GET /v1/customers/{id}/timeline?limit=50: the
// customer's newest timeline entries, newest first.
func (s *Server) customerTimeline(ctx *fasthttp.RequestCtx, key *keys.Key, start time.Time) {
	id, ok := s.customerSubID(ctx, "/timeline", key, start)
	if !ok {
		return
	}
	length := s.svc.TimelineLength()
	if length == 0 {
		writeError(ctx, &apiError{code: CodeNotFound, msg: "this server keeps no timelines (--timeline-length 0)"})
		return
	}
	limit := min(DefaultTimelineLimit, length)
	if a := ctx.QueryArgs().Peek("limit"); a != nil {
		n, err := strconv.Atoi(string(a))
		if err != nil || n < 1 || n > length {
			writeError(ctx, invalid("limit: must be a whole number from 1 to %d, got %q", length, a))
			return
		}
		limit = n
	}
	entries, err := s.svc.Timeline(context.Background(), id, limit)
	var refused *nextbest.RequestError
	switch {
	case errors.As(err, &refused):
		writeError(ctx, err)
		return
	case err != nil:
		s.storeErrs.error("timeline", err)
		writeError(ctx, &apiError{code: CodeStoreUnavailable, msg: "feature store unavailable; retry"})
		return
	}
	writeJSON(ctx, struct {
		CustomerID string          `json:"customer_id"`
		Entries    []timelineEntry `json:"entries"`
	}{id, timelineEntries(entries)})
}

// customerDelete serves DELETE /v1/customers/{id}: everything stored about
// the customer is deleted, and 204 answered, whether or not the customer
// was known (a retried deletion succeeds).
func (s *Server) customerDelete(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	id, err := customerPathID(ctx.URI().PathOriginal())
	if err != nil {
		writeError(ctx, err)
		return
	}
	if err := s.svc.Forget(context.Background(), id); err != nil {
		s.storeErrs.error("delete", err)
		writeError(ctx, errStoreWrite)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// customerExport serves GET /v1/customers/{id}/export: everything stored
// about the customer.
func (s *Server) customerExport(ctx *fasthttp.RequestCtx, key *keys.Key, start time.Time) {
	id, ok := s.customerSubID(ctx, "/export", key, start)
	if !ok {
		return
	}
	x, err := s.svc.Export(context.Background(), id)
	if err != nil {
		s.storeErrs.error("export", err)
		writeError(ctx, &apiError{code: CodeStoreUnavailable, msg: "feature store unavailable; retry"})
		return
	}
	out := exportJSON{
		CustomerID: x.CustomerID, Known: x.Known,
		Profile:    map[string]any{},
		Features:   map[string]any{},
		Aggregates: map[string]aggregateJSON{},
		Contacts:   make([]contactJSON, 0, len(x.Contacts)),
		History:    contactHistory(&x.History),
		Exposures:  make([]exposureJSON, 0, len(x.Exposures)),
		Timeline:   timelineEntries(x.Timeline),
		EventIDs:   x.EventIDs,
	}
	for k, v := range x.Attrs {
		out.Profile[k] = v.JSON()
	}
	for i, f := range x.Schema.Features() {
		out.Features[f.Name] = x.Features[i].JSON()
	}
	for k, a := range x.Aggregates {
		// The op that keeps a's keys: the catalog's, or for a feature it
		// no longer declares, distinct's shape (hashes, no values).
		op := featurestore.OpTop
		if f, ok := x.Schema.Lookup(k); ok && f.From != nil {
			op = f.From.Op
		} else if len(a.Keys) > 0 && !slices.ContainsFunc(a.Keys, func(c featurestore.KeyCount) bool { return c.Key != "" }) {
			op = featurestore.OpDistinct
		}
		out.Aggregates[k] = aggregate(a, op)
	}
	for _, c := range x.Contacts {
		out.Contacts = append(out.Contacts, contactJSON{OfferID: c.OfferID, Channel: c.Channel, Outcome: c.Kind.String(), At: time.Unix(0, c.At).UTC()})
	}
	for _, e := range x.Exposures {
		out.Exposures = append(out.Exposures, exposureJSON{Experiment: e.Experiment, Variant: e.Variant, At: time.Unix(0, e.At).UTC(), Conversions: e.Conversions, Value: e.Value})
	}
	if out.EventIDs == nil {
		out.EventIDs = []string{}
	}
	writeJSON(ctx, &out)
}

// exportJSON is the body of GET /v1/customers/{id}/export.
type exportJSON struct {
	CustomerID string                   `json:"customer_id"`
	Known      bool                     `json:"known"`
	Profile    map[string]any           `json:"profile"`  // the attributes stored, declared or not
	Features   map[string]any           `json:"features"` // as the catalog in force reads them
	Aggregates map[string]aggregateJSON `json:"aggregates"`
	Contacts   []contactJSON            `json:"contacts"`
	History    contactHistoryJSON       `json:"contact_history"`
	Exposures  []exposureJSON           `json:"experiment_exposures"`
	Timeline   []timelineEntry          `json:"timeline"`
	EventIDs   []string                 `json:"event_ids"`
}

// exposureJSON is a customer's first exposure to an experiment and
// their conversions since (measurement by customer).
type exposureJSON struct {
	Experiment  string    `json:"experiment"`
	Variant     string    `json:"variant"`
	At          time.Time `json:"first_exposed_at"`
	Conversions int64     `json:"conversions"`
	Value       float64   `json:"value"`
}

// aggregateJSON is the running state of a feature derived from events.
type aggregateJSON struct {
	Total   float64      `json:"total,omitempty"`
	Buckets []bucketJSON `json:"buckets,omitempty"`
	Last    any          `json:"last,omitempty"`
	LastAt  *time.Time   `json:"last_at,omitempty"`
	ResetAt *time.Time   `json:"reset_at,omitempty"`
	Recent  []bucketJSON `json:"recent,omitempty"`
	LogFrom *time.Time   `json:"log_from,omitempty"`
	// Values are what op top counts (value and count per window
	// bucket) and Hashes what op distinct keeps (the values' 64-bit
	// hashes per bucket, not the values).
	Values []valueCountJSON `json:"values,omitempty"`
	Hashes []hashJSON       `json:"hashes,omitempty"`
}

type valueCountJSON struct {
	Start *time.Time `json:"start,omitempty"`
	Value string     `json:"value"`
	Count uint64     `json:"count"`
}

type hashJSON struct {
	Start *time.Time `json:"start,omitempty"`
	Hash  string     `json:"hash"`
}

type bucketJSON struct {
	Start time.Time `json:"start"`
	Sum   float64   `json:"sum"`
}

func aggregate(a *featurestore.AggState, op featurestore.Op) aggregateJSON {
	nanos := func(ns int64) *time.Time {
		if ns == 0 {
			return nil
		}
		t := time.Unix(0, ns).UTC()
		return &t
	}
	out := aggregateJSON{Total: a.Total, LastAt: nanos(a.LastAt), ResetAt: nanos(a.ResetAt), LogFrom: nanos(a.LogFrom)}
	if a.Last.Kind != 0 {
		out.Last = a.Last.JSON()
	}
	for _, b := range a.Buckets {
		out.Buckets = append(out.Buckets, bucketJSON{Start: time.Unix(b.Start, 0).UTC(), Sum: b.Sum})
	}
	for _, c := range a.Recent {
		out.Recent = append(out.Recent, bucketJSON{Start: time.Unix(0, c.At).UTC(), Sum: c.X})
	}
	for _, k := range a.Keys {
		var start *time.Time
		if k.Start != 0 {
			t := time.Unix(k.Start, 0).UTC()
			start = &t
		}
		if op == featurestore.OpDistinct {
			out.Hashes = append(out.Hashes, hashJSON{Start: start, Hash: strconv.FormatUint(k.N, 16)})
		} else {
			out.Values = append(out.Values, valueCountJSON{Start: start, Value: k.Key, Count: k.N})
		}
	}
	return out
}

type contactJSON struct {
	OfferID string    `json:"offer_id"`
	Channel string    `json:"channel"`
	Outcome string    `json:"outcome"`
	At      time.Time `json:"at"`
}

// timelineEntry is one entry of a timeline as the API shows it: kind
// "event" (an event), "offer" (an outcome event: an offer shown, clicked,
// converted or dismissed, with its decision when known) or "profile" (a
// change of profile attributes, in changes).
type timelineEntry struct {
	Kind       string         `json:"kind"`
	Type       string         `json:"type"`
	At         time.Time      `json:"at"`
	Channel    string         `json:"channel,omitempty"`
	OfferID    string         `json:"offer_id,omitempty"`
	DecisionID string         `json:"decision_id,omitempty"`
	Outcome    string         `json:"outcome,omitempty"`
	EventID    string         `json:"event_id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Changes    map[string]any `json:"changes,omitempty"`
	Truncated  bool           `json:"properties_truncated,omitempty"`
}

func timelineEntries(entries []featurestore.TimelineEntry) []timelineEntry {
	out := make([]timelineEntry, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		j := timelineEntry{Kind: "event", Type: e.Type, At: e.Time(), Channel: e.Channel, EventID: e.EventID, Truncated: e.Truncated}
		switch o, outcome := e.Outcome(); {
		case e.Kind == featurestore.TimelineProfile:
			j.Kind, j.Changes = "profile", e.Properties
		case outcome:
			j.Kind, j.Outcome, j.OfferID, j.DecisionID, j.Properties = "offer", o.String(), e.OfferID, e.DecisionID, e.Properties
		default:
			j.Properties = e.Properties
		}
		out = append(out, j)
	}
	return out
}

// contactHistoryJSON is a customer's nextbest.ContactSummary as GET
// /v1/customers/{id} shows it.
type contactHistoryJSON struct {
	LastImpressions []lastImpressionJSON `json:"last_impressions"`
	Suppressions    []suppressionJSON    `json:"suppressions"`
	Caps            []capJSON            `json:"caps"`
	ChannelLimits   []capJSON            `json:"channel_limits"`
	ContactPolicy   *capJSON             `json:"contact_policy"`
}

type lastImpressionJSON struct {
	OfferID string    `json:"offer_id"`
	Channel string    `json:"channel"`
	At      time.Time `json:"at"`
}

type suppressionJSON struct {
	OfferID string    `json:"offer_id"`
	Outcome string    `json:"outcome"`
	At      time.Time `json:"at"`
	Until   time.Time `json:"until"`
}

type capJSON struct {
	OfferID string     `json:"offer_id,omitempty"`
	Group   string     `json:"group,omitempty"`
	Channel *string    `json:"channel"` // null: every channel
	Count   int        `json:"count"`
	Max     int        `json:"max"`
	Within  string     `json:"within"`
	Reached bool       `json:"reached"`
	Until   *time.Time `json:"until,omitempty"`
}

func capOf(c *nextbest.CapStatus) capJSON {
	j := capJSON{OfferID: c.OfferID, Group: c.Group, Count: c.Count, Max: c.Max, Within: rules.FormatDuration(c.Within), Reached: c.Reached}
	if c.Channel != "" {
		ch := c.Channel
		j.Channel = &ch
	}
	if c.Reached {
		u := c.Until
		j.Until = &u
	}
	return j
}

func contactHistory(h *nextbest.ContactSummary) contactHistoryJSON {
	j := contactHistoryJSON{
		LastImpressions: make([]lastImpressionJSON, 0, len(h.LastImpressions)),
		Suppressions:    make([]suppressionJSON, 0, len(h.Suppressions)),
		Caps:            make([]capJSON, 0, len(h.Caps)),
		ChannelLimits:   make([]capJSON, 0, len(h.ChannelLimits)),
	}
	for _, l := range h.LastImpressions {
		j.LastImpressions = append(j.LastImpressions, lastImpressionJSON(l))
	}
	for _, sp := range h.Suppressions {
		j.Suppressions = append(j.Suppressions, suppressionJSON{OfferID: sp.OfferID, Outcome: sp.Outcome.String(), At: sp.At, Until: sp.Until})
	}
	for i := range h.Caps {
		j.Caps = append(j.Caps, capOf(&h.Caps[i]))
	}
	for i := range h.ChannelLimits {
		j.ChannelLimits = append(j.ChannelLimits, capOf(&h.ChannelLimits[i]))
	}
	if h.Policy != nil {
		p := capOf(h.Policy)
		j.ContactPolicy = &p
	}
	return j
}

// appendContactHistory appends h as JSON to dst.
func appendContactHistory(dst []byte, h *nextbest.ContactSummary) []byte {
	b, err := json.Marshal(contactHistory(h))
	if err != nil {
		return append(dst, "null"...) // every value here encodes
	}
	return append(dst, b...)
}
