package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// result is one round against one target.
type result struct {
	requests  int64 // answered 2xx
	events    int64 // events acknowledged (events and mixed modes)
	badStatus int64 // answered, not 2xx
	transport int64 // no answer (connection error, timeout)
	unsent    int64 // open loop: scheduled but never sent before the round ended
	elapsed   time.Duration
	lat       []time.Duration // sorted
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) errors() int64 { return r.badStatus + r.transport + r.unsent }

// percentile returns the p-quantile (0..1) of sorted, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// keys picks customer indexes, uniformly or by a zipf law.
type keys struct {
	n    int
	rng  *rand.Rand
	zipf *rand.Zipf
}

func newKeys(kind string, s float64, n int, seed uint64) *keys {
	k := &keys{n: n, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	if kind == "zipf" {
		k.zipf = rand.NewZipf(k.rng, s, 1, uint64(n-1))
	}
	return k
}

func (k *keys) next() int {
	if k.zipf != nil {
		return int(k.zipf.Uint64())
	}
	return k.rng.IntN(k.n)
}

// channels are the generated catalog's channels, which decide requests
// cycle through (or the --channels subset). On email and sms, which are
// decision_is_impression channels, a decision also records an impression.
var channels = []string{"web", "app", "call_center", "email", "sms"}

// request builds the body of one request of mode into dst and returns the
// path and the number of events in it. Decisions cycle through chans.
func request(dst []byte, mode string, batch int, chans []string, k *keys, i int) ([]byte, string, int) {
	if mode == "mixed" {
		if i%10 == 9 {
			mode, batch = "events", 10
		} else {
			mode = "decide"
		}
	}
	if mode == "decide" {
		dst = append(dst, `{"customer_id":"c-`...)
		dst = strconv.AppendInt(dst, int64(k.next()), 10)
		dst = append(dst, `","channel":"`...)
		dst = append(dst, chans[i%len(chans)]...)
		dst = append(dst, `","limit":3}`...)
		return dst, "/v1/decide", 0
	}
	dst = append(dst, `{"events":[`...)
	for j := range batch {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"customer_id":"c-`...)
		dst = strconv.AppendInt(dst, int64(k.next()), 10)
		if (i+j)%4 == 0 {
			dst = append(dst, `","type":"cart_add","channel":"app"}`...)
		} else {
			dst = append(dst, `","type":"page_view","channel":"web","properties":{"category":"running"}}`...)
		}
	}
	dst = append(dst, `]}`...)
	return dst, "/v1/events", batch
}

// worker state shared by closed and open loops.
type tally struct {
	requests, events, bad, transport atomic.Int64
	mu                               sync.Mutex
	lat                              []time.Duration
}

func (t *tally) add(lat []time.Duration) {
	t.mu.Lock()
	t.lat = append(t.lat, lat...)
	t.mu.Unlock()
}

// do sends one request and accounts for it.
func do(c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, n int, t *tally) {
	err := c.DoTimeout(req, resp, 10*time.Second)
	switch {
	case err != nil:
		t.transport.Add(1)
	case resp.StatusCode() >= 300:
		t.bad.Add(1)
	default:
		t.requests.Add(1)
		t.events.Add(int64(n))
	}
}

func newClient(url string, conns int) *fasthttp.HostClient {
	host := url
	for _, p := range []string{"http://", "https://"} {
		if len(host) > len(p) && host[:len(p)] == p {
			host = host[len(p):]
		}
	}
	return &fasthttp.HostClient{
		Addr:                          host,
		MaxConns:                      conns,
		MaxIdleConnDuration:           time.Minute,
		ReadTimeout:                   10 * time.Second,
		WriteTimeout:                  10 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		MaxConnWaitTimeout:            10 * time.Second,
	}
}

// round drives url for d with o's mode and returns the result.
func round(ctx context.Context, c *fasthttp.HostClient, o *options, d time.Duration, seed uint64) *result {
	if o.Rate > 0 {
		return openLoop(ctx, c, o, d, seed)
	}
	var t tally
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.Conns {
		wg.Go(func() {
			k := newKeys(o.Keys, o.ZipfS, o.Customers, seed+uint64(w))
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			lat := make([]time.Duration, 0, 1<<14)
			var body []byte
			for i := w; ctx.Err() == nil; i += o.Conns {
				var path string
				var n int
				body, path, n = request(body[:0], o.Mode, o.Batch, o.Channels, k, i)
				prepare(req, c.Addr, path, body)
				t0 := time.Now()
				do(c, req, resp, n, &t)
				lat = append(lat, time.Since(t0))
			}
			t.add(lat)
		})
	}
	wg.Wait()
	return t.result(time.Since(start), 0)
}

// authorization, when set (--auth), is sent with every request, to the
// baseline too so both read the same bytes.
var authorization string

func prepare(req *fasthttp.Request, host, path string, body []byte) {
	req.Reset()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(path)
	req.Header.SetHost(host)
	req.Header.SetContentType("application/json")
	if authorization != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, authorization)
	}
	req.SetBody(body)
}

func (t *tally) result(elapsed time.Duration, unsent int64) *result {
	slices.Sort(t.lat)
	return &result{
		requests: t.requests.Load(), events: t.events.Load(),
		badStatus: t.bad.Load(), transport: t.transport.Load(), unsent: unsent,
		elapsed: elapsed, lat: t.lat,
	}
}

// openLoop sends o.Rate requests per second on a fixed schedule for d.
// Each request's latency runs from its scheduled send time, so time spent
// queued behind a slow server is counted, not hidden (no coordinated
// omission). Requests still queued when the round (plus a grace period)
// ends count as unsent errors.
func openLoop(ctx context.Context, c *fasthttp.HostClient, o *options, d time.Duration, seed uint64) *result {
	var t tally
	interval := time.Second / time.Duration(o.Rate)
	total := int(d / interval)
	jobs := make(chan time.Time, total)
	start := time.Now()
	sched := newSchedule(start, interval, total)
	go func() {
		defer close(jobs)
		for i := range total {
			at := sched.at(i)
			if wait := time.Until(at); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			jobs <- at
		}
	}()
	grace := start.Add(d + 2*time.Second)
	var unsent atomic.Int64
	var wg sync.WaitGroup
	for w := range o.Conns {
		wg.Go(func() {
			k := newKeys(o.Keys, o.ZipfS, o.Customers, seed+uint64(w))
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			lat := make([]time.Duration, 0, 1<<12)
			var body []byte
			i := w
			for at := range jobs {
				if time.Now().After(grace) || ctx.Err() != nil {
					unsent.Add(1)
					continue
				}
				var path string
				var n int
				body, path, n = request(body[:0], o.Mode, o.Batch, o.Channels, k, i)
				i += o.Conns
				prepare(req, c.Addr, path, body)
				do(c, req, resp, n, &t)
				lat = append(lat, time.Since(at))
			}
			t.add(lat)
		})
	}
	wg.Wait()
	elapsed := max(time.Since(start), d)
	return t.result(elapsed, unsent.Load())
}

// schedule is the open loop's timetable: request i is due at start + i×interval.
type schedule struct {
	start    time.Time
	interval time.Duration
	n        int
}

func newSchedule(start time.Time, interval time.Duration, n int) schedule {
	return schedule{start: start, interval: interval, n: n}
}

func (s schedule) at(i int) time.Time { return s.start.Add(time.Duration(i) * s.interval) }
