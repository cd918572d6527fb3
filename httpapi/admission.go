package httpapi

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/rs/xid"
	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/keys"
)

// Admission control. Past capacity a server that queues everything
// answers everything late; one that sheds early answers what it admits
// in time and the rest at once (a 503 with Retry-After, or for decide a
// degraded decision), and what it sheds costs it little, so the backlog
// cannot build up.
//
// Where requests wait with fasthttp: every connection has its own
// goroutine, which reads a request and calls the handler (ctx.Time() is
// when the read ended). A request that arrives while the CPUs are busy
// waits as a runnable goroutine in the Go scheduler before it is even
// read; one whose handler blocks on I/O (a store write, a Redis read)
// holds its place while others pile up behind it. So a request's queueing
// time is estimated as the scheduler's recent run-queue delay (sampled
// from runtime/metrics by one process-wide monitor) plus the time since
// it was read, and a per-class bound on requests in flight turns blocked
// handlers into a wait at the door: a request that cannot get a slot
// within its class's queue budget is shed. Classes have their own slots
// and budgets, so a flood of decisions cannot starve events or the
// administration routes; health checks and /metrics are never shed.
//
// What no measure in the server sees is a request still in a socket
// buffer, and shedding a request still costs reading and answering it:
// offered more than the server can answer at all, even with every answer
// a cheap one, the queue moves to the kernel and the client
// (docs/benchmarks.md, "Admission control at 2× capacity").

// class is a route class of admission control, a metric label.
type class uint8

const (
	classDecide class = iota // POST /v1/decide
	classEvents              // POST /v1/events
	classOther               // profiles, statistics, catalog administration
	numClasses
)

var classNames = [numClasses]string{"decide", "events", "other"}

// shedErrors are the answers of shed requests (Retry-After: 1, from
// writeError); a shed decide gets a degraded decision instead.
var shedErrors = [numClasses]*apiError{
	classEvents: {code: CodeOverloaded, msg: "server overloaded: events not admitted in time, nothing was applied; retry after 1s"},
	classOther:  {code: CodeOverloaded, msg: "server overloaded: request not admitted in time, nothing was done; retry after 1s"},
}

func (c class) String() string { return classNames[c] }

// Limit bounds one class of requests.
type Limit struct {
	// InFlight is how many requests of the class are served at once;
	// more wait for a slot. Negative: no bound.
	InFlight int
	// Queue is the longest a request of the class may wait to be served,
	// counted from when it was read plus the scheduler's run-queue delay;
	// past it the request is shed. Negative: no bound.
	Queue time.Duration
}

// Admission configures admission control. A zero Limit field takes its
// class's default (the Default* constants; in-flight bounds per CPU).
type Admission struct {
	// Off turns admission control off: every request is served, however
	// late. Default: on.
	Off    bool
	Decide Limit
	Events Limit
	Other  Limit
}

// Default limits, chosen from go run ./bench --overload
// (docs/benchmarks.md, "Admission control"). The in-flight bounds are per
// CPU (GOMAXPROCS): a class's handlers share the CPUs, so admitting more
// CPU-bound requests than a few per CPU only makes each of them slower.
// Decisions take tens of microseconds of CPU, and more of them are in
// flight when they wait on Redis; an event request of a hundred events
// takes milliseconds of CPU, then waits for an fsync without its slot
// (heldSlot). Decisions are answered within a
// millisecond or two, so their queue budget is a few milliseconds; event
// requests are heavier and their callers want durability more than speed;
// the other routes are rare and operator-driven, so they are bounded only
// against pile-ups.
const (
	DefaultDecideInFlightPerCPU = 32
	DefaultDecideQueue          = 5 * time.Millisecond
	DefaultEventsInFlightPerCPU = 4
	DefaultEventsQueue          = 100 * time.Millisecond
	DefaultOtherInFlightPerCPU  = 4
	DefaultOtherQueue           = time.Second
)

// defaultLimits returns the default limits for this process's GOMAXPROCS.
func defaultLimits() [numClasses]Limit {
	cpus := runtime.GOMAXPROCS(0)
	return [numClasses]Limit{
		{DefaultDecideInFlightPerCPU * cpus, DefaultDecideQueue},
		{DefaultEventsInFlightPerCPU * cpus, DefaultEventsQueue},
		{DefaultOtherInFlightPerCPU * cpus, DefaultOtherQueue},
	}
}

// maxInFlight bounds Limit.InFlight: a slot is a channel buffer entry.
const maxInFlight = 1 << 20

func (a Admission) validate() error {
	for c, l := range a.limits() {
		if l.InFlight > maxInFlight {
			return fmt.Errorf("Admission.%s.InFlight is %d, at most %d", [numClasses]string{"Decide", "Events", "Other"}[c], l.InFlight, maxInFlight)
		}
	}
	return nil
}

func (a Admission) limits() [numClasses]Limit { return [numClasses]Limit{a.Decide, a.Events, a.Other} }

// gate admits the requests of one class.
type gate struct {
	slots chan struct{} // a buffered semaphore; nil: no bound
	queue time.Duration // < 0: no bound
	shed  *vm.Counter
}

// admitter is the server's admission control; nil when it is off.
type admitter struct {
	gates [numClasses]gate
	delay *atomic.Int64 // the scheduler's run-queue delay, ns: &schedDelay
}

func newAdmitter(a Admission, set *vm.Set) *admitter {
	if a.Off {
		return nil
	}
	ad := &admitter{delay: &schedDelay}
	def := defaultLimits()
	for c, l := range a.limits() {
		if l.InFlight == 0 {
			l.InFlight = def[c].InFlight
		}
		if l.Queue == 0 {
			l.Queue = def[c].Queue
		}
		g := &ad.gates[c]
		g.queue = l.Queue
		if l.InFlight > 0 {
			g.slots = make(chan struct{}, l.InFlight)
		}
		name := classNames[c]
		g.shed = set.GetOrCreateCounter(fmt.Sprintf(`nextbest_requests_shed_total{class=%q}`, name))
		set.GetOrCreateGauge(fmt.Sprintf(`nextbest_requests_in_flight{class=%q}`, name), func() float64 { return float64(len(g.slots)) })
	}
	set.GetOrCreateGauge("nextbest_scheduler_delay_seconds", func() float64 { return time.Duration(schedDelay.Load()).Seconds() })
	startSchedMonitor()
	return ad
}

// admit decides whether a request of class c, read at read and being
// handled from now, is served. It returns the gate to release when the
// request is done (nil when there is nothing to release) and whether the
// request was admitted; a request not admitted is counted as shed.
func (a *admitter) admit(c class, read, now time.Time) (g *gate, ok bool) {
	g = &a.gates[c]
	if g.queue >= 0 {
		waited := time.Duration(a.delay.Load())
		if !read.IsZero() && now.After(read) {
			waited += now.Sub(read)
		}
		if waited >= g.queue {
			g.shed.Inc()
			return nil, false
		}
		if g.slots == nil {
			return nil, true
		}
		select {
		case g.slots <- struct{}{}:
			return g, true
		default:
		}
		// Full: wait for a slot for what is left of the budget.
		t := acquireTimer(g.queue - waited)
		defer releaseTimer(t)
		select {
		case g.slots <- struct{}{}:
			return g, true
		case <-t.C:
			g.shed.Inc()
			return nil, false
		}
	}
	if g.slots == nil {
		return nil, true
	}
	g.slots <- struct{}{}
	return g, true
}

// release frees the slot of an admitted request.
func (g *gate) release() { <-g.slots }

// heldSlot is the slot of an admitted event request, which its handler
// gives back before it is done: once its events are applied, the request
// only waits for the fsync of the store's group commit, which one fsync
// shares between every write waiting for it. Waiting there uses no CPU
// and is not overload; held slots would let the fsync's latency, not the
// CPU, bound the event requests served (4 per CPU, each a few
// milliseconds of CPU and a few of fsync), queue the others at the door
// and shed a load the server sustains without admission control
// (docs/benchmarks.md, "Issue 12: durable events end to end"). Only the
// request's goroutine touches it.
type heldSlot struct {
	g    *gate
	done bool
}

// heldSlotKey is the user value of a request's heldSlot.
type heldSlotKey struct{}

// release gives the slot back, once.
func (h *heldSlot) release() {
	if !h.done {
		h.done = true
		h.g.release()
	}
}

// releaseSlot gives back the admission slot ctx's request holds, if any,
// for the rest of the request.
func releaseSlot(ctx *fasthttp.RequestCtx) {
	if h, ok := ctx.UserValue(heldSlotKey{}).(*heldSlot); ok {
		h.release()
	}
}

var timers sync.Pool

func acquireTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// releaseTimer stops t and pools it. Since Go 1.23 a stopped timer's
// channel holds no stale value, so Reset after Stop is safe.
func releaseTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// Scheduler delay. The Go runtime records how long goroutines stay
// runnable before they run (/sched/latencies:seconds, a sample of the
// transitions). In a server whose connections each have a goroutine, that
// is how long a request that has arrived waits for a CPU before it is
// read: the queue that ctx.Time() cannot see. One monitor per process (the
// scheduler is the process's) reads the histogram every schedWindow and
// keeps the median delay of the window in schedDelay. The median, not a
// tail: a standing queue delays most requests, while a burst, a GC cycle
// or the OS descheduling the process delays a few (CoDel's insight). A
// window with fewer than schedMinSamples samples is a lightly loaded
// process, whatever its few samples say, and reads as no delay; so the
// estimate falls back within one window when an overload ends.

const (
	schedWindow     = 10 * time.Millisecond
	schedQuantile   = 0.5
	schedMinSamples = 8
	schedMetric     = "/sched/latencies:seconds"
)

var (
	schedDelay   atomic.Int64 // nanoseconds
	schedMonitor sync.Once
)

func startSchedMonitor() {
	schedMonitor.Do(func() {
		go monitorSched(schedWindow)
	})
}

func monitorSched(every time.Duration) {
	sample := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return // not provided by this runtime: no delay estimate
	}
	h := sample[0].Value.Float64Histogram()
	prev := make([]uint64, len(h.Counts))
	copy(prev, h.Counts)
	delta := make([]uint64, len(h.Counts))
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		metrics.Read(sample)
		h = sample[0].Value.Float64Histogram()
		if len(h.Counts) != len(prev) {
			prev = make([]uint64, len(h.Counts))
			delta = make([]uint64, len(h.Counts))
		}
		for i, n := range h.Counts {
			delta[i] = n - prev[i]
			prev[i] = n
		}
		schedDelay.Store(int64(quantile(h.Buckets, delta, schedQuantile, schedMinSamples)))
	}
}

// quantile returns the q-quantile of a histogram with counts per bucket
// (bucket i spans buckets[i] to buckets[i+1] seconds) as the lower bound
// of the bucket it falls in, so an estimate never overstates; 0 for fewer
// than minSamples samples.
func quantile(buckets []float64, counts []uint64, q float64, minSamples uint64) time.Duration {
	var total uint64
	for _, n := range counts {
		total += n
	}
	if total == 0 || total < minSamples {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, n := range counts {
		seen += n
		if seen >= rank {
			lo := buckets[i]
			if lo <= 0 {
				return 0
			}
			return time.Duration(lo * float64(time.Second))
		}
	}
	return 0
}

// shedDecide answers a decide request that was not admitted: the
// channel's fallback content (none on a channel with a policy, which
// could not be checked), as a decision with no offers, marked degraded
// for overload. It reads no store and evaluates no rule. A body
// that is not a valid decide request still gets its 400.
func (s *Server) shedDecide(ctx *fasthttp.RequestCtx, key *keys.Key) {
	cat := s.svc.Catalog()
	p := parsers.Get()
	defer parsers.Put(p)
	var dr decideRequest
	if err := parseDecide(p, ctx.PostBody(), cat, &dr); err != nil {
		writeError(ctx, err)
		return
	}
	if key != nil && key.Public && !keys.VerifyCustomerToken(s.tokenSecret, dr.customerID, dr.customerToken) {
		dr.customerID = nil
	}
	sc := decidePool.Get().(*decideScratch)
	defer sc.release()
	sc.d.Result.Channel = dr.channel
	if !dr.channel.Gated() {
		// A channel with a policy (consent, quiet hours, a contact
		// limit) answers nothing it has not checked: no fallback.
		sc.d.Result.Fallback = cat.Fallback(dr.channel)
	}
	s.decisions.Inc()
	s.degraded.inc(DegradedOverload)
	d := Decision{
		ID:         xid.NewWithTime(s.svc.Now()),
		CustomerID: transient(dr.customerID),
		Catalog:    cat.Version,
		Result:     &sc.d.Result,
		Degraded:   DegradedOverload,
	}
	sc.buf = AppendDecision(sc.buf[:0], &d)
	sc.buf = append(sc.buf, '\n')
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(sc.buf)
}

// shed answers a request of class c that was not admitted.
func (s *Server) shed(ctx *fasthttp.RequestCtx, c class) {
	writeError(ctx, shedErrors[c])
}
