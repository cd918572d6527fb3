package httpapi

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

// Request metrics. Series are created on first use and looked up without
// locks or allocation afterwards: label values come from the catalog (channel
// and offer names) or from a fixed set (routes), never from request input,
// so a client cannot make the server grow series.

// latencyBuckets are the upper bounds of request latency histograms, in
// seconds: fine below a millisecond, where decisions live.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// route is a request's route, as a metric label (routes.go gives each
// route its label).
type route uint8

const (
	routeDecide route = iota
	routeEvents
	routeCustomers
	routeStats
	routeAdmin
	routeHealth
	routeMetrics
	routeBatch
	routeOther
	numRoutes
)

var routeNames = [numRoutes]string{"decide", "events", "customers", "stats", "admin", "health", "metrics", "batch", "other"}

// observer holds the server's request metrics.
type observer struct {
	set *metrics.Set
	// byRoute are the latency histograms of each route (decide's, for
	// requests that failed before a channel was known).
	byRoute [numRoutes]*metrics.PrometheusHistogram
	// byStatus counts responses by route and status class.
	byStatus [numRoutes][6]*metrics.Counter

	// Copy-on-write maps, keyed by catalog strings.
	mu        sync.Mutex
	byChannel atomic.Pointer[map[string]*metrics.PrometheusHistogram] // decide latency per channel
	byOffer   atomic.Pointer[map[offerChannel]*metrics.Counter]       // offers returned per offer and channel
	series    atomic.Pointer[decisionSeries]                          // the same, by index, for the catalog last seen

	storeRead   *metrics.PrometheusHistogram // store reads behind decisions (cache misses)
	storeWrite  *metrics.PrometheusHistogram // store writes of events, profiles and impressions
	storeErrors *metrics.Counter

	// Access log sampling: one request in sampleEvery is logged; 0: none.
	sampleEvery uint64
}

type offerChannel struct{ offer, channel string }

func newObserver(set *metrics.Set, accessLogRate float64) *observer {
	o := &observer{set: set}
	for r := range numRoutes {
		o.byRoute[r] = set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`nextbest_request_duration_seconds{route=%q,channel=""}`, routeNames[r]), latencyBuckets)
		for c := 1; c <= 5; c++ {
			o.byStatus[r][c] = set.GetOrCreateCounter(fmt.Sprintf(`nextbest_requests_total{route=%q,code="%dxx"}`, routeNames[r], c))
		}
	}
	o.byChannel.Store(&map[string]*metrics.PrometheusHistogram{})
	o.byOffer.Store(&map[offerChannel]*metrics.Counter{})
	o.storeRead = set.GetOrCreatePrometheusHistogramExt("nextbest_store_read_duration_seconds", latencyBuckets)
	o.storeWrite = set.GetOrCreatePrometheusHistogramExt("nextbest_store_write_duration_seconds", latencyBuckets)
	o.storeErrors = set.GetOrCreateCounter("nextbest_store_errors_total")
	if accessLogRate > 0 {
		o.sampleEvery = uint64(1 / min(accessLogRate, 1))
	}
	return o
}

// request records a finished request.
func (o *observer) request(r route, status int, start time.Time) {
	if c := status / 100; c >= 1 && c <= 5 {
		o.byStatus[r][c].Inc()
	}
	if r != routeDecide || status != fasthttp.StatusOK {
		o.byRoute[r].UpdateDuration(start)
	}
}

// decision records a decision of catalog cat that was answered: its
// latency for its channel and the offers it returned. The series are
// found by the channel's and offers' indexes in cat, without hashing a
// name (BenchmarkObserveDecision).
func (o *observer) decision(cat *rules.Catalog, res *decision.Result, start time.Time) {
	t := o.series.Load()
	if t == nil || t.cat != cat {
		t = o.seriesOf(cat)
	}
	ch := res.Channel
	nch := len(t.byChannel)
	if ch.Index < 0 || ch.Index >= nch || cat.Channels[ch.Index] != ch {
		o.decisionByName(res, start) // not one of cat's: never, but never wrong either
		return
	}
	slot := &t.byChannel[ch.Index]
	h := slot.Load()
	if h == nil {
		h = o.channelHistogram(ch.Name)
		slot.Store(h)
	}
	h.UpdateDuration(start)
	for i := range res.Offers {
		off := res.Offers[i].Offer
		if off.Index < 0 || off.Index >= len(cat.Offers) || cat.Offers[off.Index] != off {
			o.offerByName(off.ID, ch.Name)
			continue
		}
		slot := &t.byOffer[off.Index*nch+ch.Index]
		c := slot.Load()
		if c == nil {
			c = o.offerCounter(offerChannel{off.ID, ch.Name})
			slot.Store(c)
		}
		c.Inc()
	}
}

// decisionSeries are the series of one catalog's decisions by index,
// filled on first use from the maps by name (so a reload keeps the
// series, and a series exists only once used).
type decisionSeries struct {
	cat       *rules.Catalog
	byChannel []atomic.Pointer[metrics.PrometheusHistogram] // by Channel.Index
	byOffer   []atomic.Pointer[metrics.Counter]             // by Offer.Index × channels + Channel.Index
}

// seriesOf makes cat's the series decisions use.
func (o *observer) seriesOf(cat *rules.Catalog) *decisionSeries {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.series.Load(); t != nil && t.cat == cat {
		return t
	}
	t := &decisionSeries{cat: cat,
		byChannel: make([]atomic.Pointer[metrics.PrometheusHistogram], len(cat.Channels)),
		byOffer:   make([]atomic.Pointer[metrics.Counter], len(cat.Offers)*len(cat.Channels))}
	o.series.Store(t)
	return t
}

// decisionByName records a decision through the maps by name.
func (o *observer) decisionByName(res *decision.Result, start time.Time) {
	ch := res.Channel.Name
	h := (*o.byChannel.Load())[ch]
	if h == nil {
		h = o.channelHistogram(ch)
	}
	h.UpdateDuration(start)
	for i := range res.Offers {
		o.offerByName(res.Offers[i].Offer.ID, ch)
	}
}

func (o *observer) offerByName(offer, channel string) {
	k := offerChannel{offer, channel}
	c := (*o.byOffer.Load())[k]
	if c == nil {
		c = o.offerCounter(k)
	}
	c.Inc()
}

func (o *observer) channelHistogram(ch string) *metrics.PrometheusHistogram {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *o.byChannel.Load()
	if h := old[ch]; h != nil {
		return h
	}
	h := o.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`nextbest_request_duration_seconds{route="decide",channel=%q}`, ch), latencyBuckets)
	m := make(map[string]*metrics.PrometheusHistogram, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[ch] = h
	o.byChannel.Store(&m)
	return h
}

func (o *observer) offerCounter(k offerChannel) *metrics.Counter {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *o.byOffer.Load()
	if c := old[k]; c != nil {
		return c
	}
	c := o.set.GetOrCreateCounter(fmt.Sprintf(`nextbest_offer_decisions_total{offer=%q,channel=%q}`, k.offer, k.channel))
	m := make(map[offerChannel]*metrics.Counter, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = c
	o.byOffer.Store(&m)
	return c
}

// sampled reports whether this request goes to the access log.
func (o *observer) sampled() bool {
	return o.sampleEvery > 0 && rand.Uint64N(o.sampleEvery) == 0
}

// maxIgnoredTypes bounds the series of nextbest_events_ignored_total. Its
// label is an event type, which clients choose: the first maxIgnoredTypes
// types seen get a series of their own, which is what an operator needs to
// find a misspelt type (cart-add for cart_add) in a handful of integrations;
// the rest share ignoredOther, so a client sending random types adds one
// series, not one per type.
const maxIgnoredTypes = 64

// ignoredOther labels the ignored events beyond maxIgnoredTypes types. It
// is not a valid event type (those start with a letter), so it cannot be
// mistaken for one.
const ignoredOther = "_other"

// ignoredCounters count the events nothing in the catalog reads, per
// type, into nextbest_events_ignored_total.
type ignoredCounters struct {
	set  *metrics.Set
	mu   sync.Mutex
	m    atomic.Pointer[map[string]*metrics.Counter] // copy-on-write, by type
	rest func() *metrics.Counter                     // the types beyond maxIgnoredTypes
}

func newIgnoredCounters(set *metrics.Set) *ignoredCounters {
	c := &ignoredCounters{set: set}
	c.m.Store(&map[string]*metrics.Counter{})
	c.rest = sync.OnceValue(func() *metrics.Counter {
		return set.GetOrCreateCounter(`nextbest_events_ignored_total{type="` + ignoredOther + `"}`)
	})
	return c
}

// event counts one event of type typ.
func (c *ignoredCounters) event(typ string) {
	m := *c.m.Load()
	ctr := m[typ]
	switch {
	case ctr != nil:
	case len(m) >= maxIgnoredTypes:
		ctr = c.rest()
	default:
		ctr = c.counter(typ)
	}
	ctr.Inc()
}

func (c *ignoredCounters) counter(typ string) *metrics.Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if ctr := old[typ]; ctr != nil {
		return ctr
	}
	if len(old) >= maxIgnoredTypes {
		return c.rest()
	}
	ctr := c.set.GetOrCreateCounter(fmt.Sprintf(`nextbest_events_ignored_total{type=%q}`, typ))
	m := make(map[string]*metrics.Counter, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[typ] = ctr
	c.m.Store(&m)
	return ctr
}

// Observe returns the observer of a nextbest.Service that counts into
// set what the server's own handlers count there (store read and write
// durations, store errors, ignored events by type) and logs store errors
// to errs, so the service's measurements appear under the server's metric
// names.
func Observe(set *metrics.Set, errs *StoreErrorLog) nextbest.Observer {
	read := set.GetOrCreatePrometheusHistogramExt("nextbest_store_read_duration_seconds", latencyBuckets)
	write := set.GetOrCreatePrometheusHistogramExt("nextbest_store_write_duration_seconds", latencyBuckets)
	failed := set.GetOrCreateCounter("nextbest_store_errors_total")
	return nextbest.Observer{
		StoreRead:  func(d time.Duration) { read.Update(d.Seconds()) },
		StoreWrite: func(d time.Duration) { write.Update(d.Seconds()) },
		StoreError: func(error) { failed.Inc() },
		LogError:   errs.error,

		IgnoredEvent: newIgnoredCounters(set).event,
	}
}
