package nextbest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// Request asks for one decision. Its strings may point into a caller's
// buffer: the service keeps none of them past Decide's return.
type Request struct {
	// Catalog decides; nil for the catalog in force. A transport that
	// validated the request against a catalog passes that one, so a
	// reload in between cannot make the request invalid.
	Catalog *rules.Catalog
	// CustomerID is the customer; "" for an anonymous visitor, who has the
	// schema's defaults.
	CustomerID string
	Channel    string // a channel of the catalog
	Placement  string // "" for none
	Limit      int    // offers wanted, 1 to decision.MaxLimit
	Explain    bool
	Context    map[string]any // the request's attributes; nil for none
	// Now is the time of the decision; zero for the service's clock.
	Now time.Time
	// ID names the decision and seeds its random draws
	// (decision.SeedOf(ID[:])); zero for a new id at Now. Replaying a
	// decision is deciding again with its ID and Now.
	ID xid.ID
}

// Decision is the answer to a Request. Reuse one across calls (its
// buffers are kept); Reset it before reuse.
type Decision struct {
	ID         xid.ID
	CustomerID string // the request's
	Catalog    string // the version of the catalog that decided; "" for none
	Explain    bool
	Degraded   Degradation // why the stored features were not read, if they were not
	Result     decision.Result

	req    decision.Request
	deltas []featurestore.StatDelta
	view   featurestore.View // reads the customer's packed record
	// The content of Result rendered for the customer (render), which
	// Result points to when the catalog's content has templates.
	rendered []byte
	contents []rules.Content
	ends     []int
}

// maxRendered bounds the rendering buffer a Decision keeps for reuse, so
// one decision of long lists does not pin its memory.
const maxRendered = 64 << 10

// Reset clears d for reuse, keeping its buffers.
func (d *Decision) Reset() {
	res := &d.Result
	clear(res.Offers)
	clear(res.Explain)
	clear(res.Assignments)
	*res = decision.Result{Offers: res.Offers[:0], Segments: res.Segments[:0], Explain: res.Explain[:0], Assignments: res.Assignments[:0],
		LearnedReads: res.LearnedReads[:0]}
	d.req = decision.Request{}
	clear(d.contents)
	d.contents, d.rendered, d.ends = d.contents[:0], d.rendered[:0], d.ends[:0]
	if cap(d.rendered) > maxRendered {
		d.rendered = nil
	}
	d.ID, d.CustomerID, d.Catalog, d.Explain, d.Degraded = xid.ID{}, "", "", false, NotDegraded
}

// Decide makes the decision r asks for into d: the customer's record
// (from the cache, else from the store under Options.StoreTimeout; when
// the store fails the decision is made from the schema's defaults and
// d.Degraded says why), their contact history and the learned statistics
// go into the engine, seeded from the decision's id. On a
// decision_is_impression channel the offers chosen are recorded as shown
// before Decide returns. Content with templates is rendered for the
// customer into d's buffers, which d.Result points to until d is reused
// or Reset. An error is the engine's (a bug or an invalid
// request), never the store's.
func (s *Service) Decide(ctx context.Context, r *Request, d *Decision) error {
	var (
		packed featurestore.Packed
		rec    *featurestore.Record
	)
	degraded := NotDegraded
	// The customer decided for: the request's, or the customer it was
	// merged into (identity.go).
	customer := r.CustomerID
	if r.CustomerID != "" && s.store != nil {
		packed, rec, customer, degraded = s.record(ctx, r.CustomerID)
	}
	return s.decideFrom(r, d, customer, packed, rec, degraded)
}

// decideFrom is Decide once the customer's record is read: packed or rec
// (both nil for an unknown or anonymous customer, or when the read
// failed, with degraded saying why), of customer (r's, or the one it was
// merged into). A batch of decisions reads the
// record itself, under a deadline of its own (DecideBatch).
func (s *Service) decideFrom(r *Request, d *Decision, customer string, packed featurestore.Packed, rec *featurestore.Record, degraded Degradation) error {
	cat := r.Catalog
	if cat == nil {
		cat = s.catalog.Load()
	}
	now := r.Now
	if now.IsZero() {
		now = s.now()
	}
	d.ID = r.ID
	if d.ID.IsZero() {
		// Thompson sampling draws from a seed derived from the decision
		// id: unique per decision, free, and enough to replay it
		// (decision.SeedOf).
		d.ID = xid.NewWithTime(now)
	}
	d.CustomerID, d.Catalog, d.Explain, d.Degraded = r.CustomerID, cat.Version, r.Explain, degraded
	// Into d's buffers: a cached record is decoded from its packed form,
	// only what the schema declares, and nothing is allocated.
	features, history := d.view.Read(packed, cat.Schema, now)
	if rec != nil {
		features, history = d.view.ReadRecord(rec, cat.Schema, now)
	}
	req := &d.req
	*req = decision.Request{
		CustomerID: customer,
		Channel:    r.Channel,
		Placement:  r.Placement,
		Limit:      r.Limit,
		Explain:    r.Explain,
		Context:    r.Context,
		Now:        now,
		Seed:       decision.SeedOf(d.ID[:]),
	}
	req.History = history
	if s.stats != nil {
		req.Learned = s.stats.Learned()
	}
	logged := s.logs(&d.ID)
	if logged {
		req.PropensitySamples = s.propSamples
		req.RecordLearned = true // for replay (declog.go)
	}
	if err := s.engine.Decide(cat, features, req, &d.Result); err != nil {
		s.log.Error("decide", "err", err)
		return err
	}
	if logged {
		s.logDecision(cat, r, d, customer, features, now)
	}
	d.render(features)
	if s.readOnly {
		return nil
	}
	if s.stats != nil {
		// The denominators of measurement: the decision, for its channel
		// and each of the customer's experiment variants.
		d.deltas = decision.AppendDecisionDeltas(d.deltas[:0], &d.Result, now)
		s.stats.Add(d.deltas...)
		clear(d.deltas)
	}
	if s.reach != nil && customer != "" {
		// Reach: the customer, once per channel and hour and per variant
		// on the channel, whatever the number of their decisions.
		h, ch := featurestore.HashCustomer(customer), d.Result.Channel.Name
		k := featurestore.ReachKey{Hour: featurestore.Hour(now), Channel: ch}
		s.reach.AddReach(k, h)
		for _, a := range d.Result.Assignments {
			k.Experiment, k.Variant = a.Experiment.ID, a.Variant.Name
			s.reach.AddReach(k, h)
		}
		// And in each segment the customer is in (none in a catalog
		// without segments).
		for _, seg := range d.Result.Segments {
			k := featurestore.ReachKey{Hour: k.Hour, Channel: ch, Segment: seg}
			s.reach.AddReach(k, h)
			for _, a := range d.Result.Assignments {
				k.Experiment, k.Variant = a.Experiment.ID, a.Variant.Name
				s.reach.AddReach(k, h)
			}
		}
	}
	if customer != "" && s.store != nil && degraded == NotDegraded {
		// The customer's first decision in an experiment: the unit of
		// measurement is the customer (exposure.go). Segments that
		// changed since their last decision on the channel: its outcomes
		// count in these (segments.go).
		exposures, segments := d.newExposures(), d.newSegments(cat)
		if exposures || segments {
			s.recordExposures(customer, &d.Result, now, segments)
		}
	}
	if d.Result.Channel.DecisionIsImpression && len(d.Result.Offers) > 0 {
		// Deciding is delivering on this channel (email, sms): the offers
		// are recorded as shown before the answer leaves, so caps count
		// them at once.
		s.recordImpressions(cat, customer, r.ID.IsZero(), d, now)
	}
	return nil
}

// render fills in the templates of the content d answers with the
// customer's features f: each templated content of the Result is
// replaced by its rendering, held in d's buffers. A decision whose
// content has no templates is left as the engine made it, pointing to
// the catalog's JSON: no copy, nothing allocated. Rendering is the
// service's, not the engine's (which stays pure, without buffers) nor a
// transport's, so every surface (HTTP, the CLI, batches) answers the
// same content; it needs only the features the decision read.
func (d *Decision) render(f featurestore.Vector) {
	res := &d.Result
	n := 0
	for i := range res.Offers {
		if res.Offers[i].Content.Templated() {
			n++
		}
	}
	if res.Fallback.Templated() {
		n++
	}
	if n == 0 {
		return
	}
	// Render every content first, then point at the renderings: the
	// buffer may move while it grows.
	buf, ends := d.rendered[:0], d.ends[:0]
	for i := range res.Offers {
		if c := res.Offers[i].Content; c.Templated() {
			buf = c.AppendJSON(buf, f)
			ends = append(ends, len(buf))
		}
	}
	if res.Fallback.Templated() {
		buf = res.Fallback.AppendJSON(buf, f)
		ends = append(ends, len(buf))
	}
	d.rendered, d.ends = buf, ends
	if cap(d.contents) < n {
		d.contents = make([]rules.Content, n)
	}
	d.contents = d.contents[:n]
	k, start := 0, 0
	rendered := func(c *rules.Content) *rules.Content {
		end := ends[k]
		d.contents[k] = rules.Content{JSON: buf[start:end:end], Value: c.Value}
		start = end
		k++
		return &d.contents[k-1]
	}
	for i := range res.Offers {
		if c := res.Offers[i].Content; c.Templated() {
			res.Offers[i].Content = rendered(c)
		}
	}
	if res.Fallback.Templated() {
		res.Fallback = rendered(res.Fallback)
	}
}

// record returns the customer's record for a decision, packed from the
// cache or else from the store: both nil for an unknown customer, and
// with the cause when the store failed or timed out. customer is id, or
// for an alias the customer it resolves to, whose record it is.
func (s *Service) record(ctx context.Context, id string) (packed featurestore.Packed, rec *featurestore.Record, customer string, degraded Degradation) {
	return s.recordOf(ctx, id, 0)
}

// recordOf is record at hops aliases from the id asked for.
func (s *Service) recordOf(ctx context.Context, id string, hops int) (packed featurestore.Packed, rec *featurestore.Record, customer string, degraded Degradation) {
	if s.cache != nil {
		if p, ok := s.cache.Cached(id); ok {
			return p, nil, id, NotDegraded
		}
	}
	// Only a miss pays for a deadline, and for an id the store may keep.
	start := time.Now()
	c, cancel := context.WithTimeout(ctx, s.storeTimeout)
	rec, err := s.store.Load(c, strings.Clone(id))
	// Whatever error a client makes of it (a context error, a socket read
	// deadline), a read that failed past the deadline failed of it.
	expired := c.Err() != nil
	cancel()
	if s.obs.StoreRead != nil {
		s.obs.StoreRead(time.Since(start))
	}
	switch {
	case err == nil:
		return nil, rec, id, NotDegraded
	case errors.Is(err, featurestore.ErrNotFound):
		if target, ok := aliasTarget(err, id); ok && hops < featurestore.MaxAliasHops {
			return s.recordOf(ctx, target, hops+1)
		}
		return nil, nil, id, NotDegraded
	}
	s.logError("load", err)
	s.storeError(err)
	if expired || errors.Is(err, context.DeadlineExceeded) {
		return nil, nil, id, DegradedDeadline
	}
	return nil, nil, id, DegradedError
}

// recordImpressions stores an impression of every offer of d for the
// customer. The next decision sees them at once; the decision does not
// wait for an fsync (see ApplyEvents: a machine crash may lose the last
// of them, never an acknowledged event). A store failure is reported and
// the decision still answered: the offers were chosen, and refusing them
// would not unsend them.
//
// It is ApplyEvents without what the decision already knows: the events
// are valid by construction (the catalog's channel and offers, their ids
// set), and their statistics are credited to the decision's own learn
// key and experiment variants (the cell it drew on) rather than
// recomputed from the record the impressions leave.
func (s *Service) recordImpressions(cat *rules.Catalog, customer string, minted bool, d *Decision, now time.Time) {
	res := &d.Result
	// The store may keep the customer's id and the events' ids: copies,
	// not the request's bytes.
	customer = strings.Clone(customer)
	decisionID := d.ID.String()
	// Fresh, not the Decision's buffers: the mutations close over them,
	// and a backend that gave up on its deadline might still run one.
	events := make([]featurestore.Event, len(res.Offers))
	for i, o := range res.Offers {
		events[i] = featurestore.Event{
			ID: ImpressionID(decisionID, o.Offer.ID), CustomerID: customer, Type: "impression",
			OfferID: o.Offer.ID, DecisionID: decisionID, Channel: res.Channel.Name, Time: now,
		}
	}
	applied := make([]bool, len(events))
	// A decision id minted here (minted) names impressions no one can
	// have reported yet; a replayed one (Request.ID set) may have.
	_, _, synced, err := s.writeEvents(cat.Schema, events, now, false, false, minted, applied)
	if err == nil {
		err = synced()
	}
	if err != nil {
		s.logError("record impressions", err)
		return
	}
	if s.stats == nil {
		return
	}
	deltas := d.deltas[:0]
	for i := range events {
		if !applied[i] {
			continue // a replayed decision's, counted when it was made
		}
		o := decision.Outcome{Kind: featurestore.Impression, OfferID: events[i].OfferID, Channel: res.Channel.Name,
			LearnKey: res.LearnKey, Assignments: res.Assignments, Segments: res.Segments, Time: now}
		if m := cat.Learning.Model; m != nil {
			o.Model, o.Terms, o.Success = m, res.Terms, cat.Learning.Success
		}
		deltas = decision.AppendOutcomeDeltas(deltas, &o)
	}
	s.stats.Add(deltas...)
	clear(deltas)
	d.deltas = deltas[:0]
}

// ImpressionID is the event id of the impression of offer in a decision.
func ImpressionID(decisionID, offer string) string { return decisionID + ":" + offer }
