package outcomes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/outcomes"
)

var errInjected = errors.New("injected failure")

// gate is a StatsStore over another whose AddStats can be made to fail or
// to wait, and which counts calls.
type gate struct {
	featurestore.StatsStore

	mu       sync.Mutex
	fails    int           // the next fails AddStats calls fail; negative: all do
	failCall int           // the AddStats call with this number (from 1) fails
	hold     chan struct{} // when not nil, AddStats waits for it to close
	held     chan struct{} // told when an AddStats call starts to wait
	sizes    []int         // deltas of each AddStats call
	loads    int           // LearnStats calls
}

func (g *gate) AddStats(ctx context.Context, deltas []featurestore.StatDelta) error {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(deltas))
	fail := g.fails != 0 || len(g.sizes) == g.failCall
	if g.fails > 0 {
		g.fails--
	}
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		g.held <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errInjected
	}
	return g.StatsStore.AddStats(ctx, deltas)
}

func (g *gate) LearnStats(ctx context.Context) (map[featurestore.StatKey]featurestore.Counts, error) {
	g.mu.Lock()
	g.loads++
	g.mu.Unlock()
	return g.StatsStore.LearnStats(ctx)
}

func (g *gate) set(f func(g *gate)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *gate) calls() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// newGate returns a gate over a new embedded store.
func newGate(t *testing.T) *gate {
	t.Helper()
	s, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &gate{StatsStore: s, held: make(chan struct{}, 1)}
}

// quiet are options under which nothing happens in the background
// except the first load, which start waits for.
var quiet = outcomes.Options{FlushEvery: time.Hour, RefreshEvery: time.Hour, Logger: slog.New(slog.DiscardHandler)}

// running is a Recorder whose Run is going in its own goroutine.
type running struct {
	*outcomes.Recorder
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop ends Run and returns what it returned: the last flush's error.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// start returns a Recorder on g, run as an actor, that has finished its
// first load of the store and is stopped at the end of the test.
func start(t *testing.T, g *gate, opts outcomes.Options) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Recorder: outcomes.New(g, opts), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- r.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	waitFor(t, "the first load", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.loads > 0
	})
	// This reload waits for the first one, which has started.
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor waits for cond: generously, as a flush of MaxCells cells under
// -race on a loaded machine takes seconds; only a condition that never
// comes takes the whole minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func cell(i int) featurestore.StatKey {
	return featurestore.StatKey{Offer: fmt.Sprintf("o-%d", i), Channel: "web"}
}

func click(k featurestore.StatKey, n int64) featurestore.StatDelta {
	return featurestore.StatDelta{Key: k, Counts: featurestore.Counts{Clicks: n}}
}

// stored returns the clicks of a learning cell in the store.
func stored(t *testing.T, g *gate, k featurestore.StatKey) int64 {
	t.Helper()
	m, err := g.StatsStore.LearnStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m[k].Clicks
}

func learned(r *running, k featurestore.StatKey) int64 {
	return r.Learned().Get(k.Offer, k.Channel, k.Key).Clicks
}

func TestBatching(t *testing.T) {
	tests := []struct {
		name       string
		maxPending int
		adds       int // calls of Add, one delta each
		cells      int // distinct cells among them
		want       []int
	}{
		{"one hot cell", 0, 1000, 1, []int{1}},
		{"a few cells", 0, 1000, 10, []int{10}},
		{"backlog in several calls", 100, 250, 250, []int{100, 100, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(t)
			opts := quiet
			opts.MaxPending = tt.maxPending
			r := start(t, g, opts)
			var deltas []featurestore.StatDelta
			for i := range tt.adds {
				deltas = append(deltas, click(cell(i%tt.cells), 1))
			}
			if tt.maxPending == 0 {
				for _, d := range deltas {
					r.Add(d)
				}
			} else {
				r.Add(deltas...) // one Add: pending reaches MaxPending once
			}
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := g.calls(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("AddStats calls of %v deltas, want %v", got, tt.want)
			}
			for i := range tt.cells {
				want := int64(tt.adds / tt.cells)
				if got := stored(t, g, cell(i)); got != want {
					t.Errorf("cell %d: %d clicks stored, want %d", i, got, want)
				}
			}
			if r.Pending() != 0 {
				t.Errorf("Pending() = %d after Flush", r.Pending())
			}
		})
	}
}

func TestFlushesEarlyAtMaxPending(t *testing.T) {
	g := newGate(t)
	opts := quiet
	opts.MaxPending = 10
	r := start(t, g, opts)
	for i := range 10 {
		r.Add(click(cell(i), 1))
	}
	waitFor(t, "an early flush", func() bool { return stored(t, g, cell(9)) == 1 })
}

// TestLearnedCountsEachDeltaOnce follows one cell through the windows
// where a delta is pending, in flight, flushed but not reloaded, and
// reloaded, with another node adding to it meanwhile.
func TestLearnedCountsEachDeltaOnce(t *testing.T) {
	ctx := context.Background()
	g := newGate(t)
	a := cell(1)
	if err := g.StatsStore.AddStats(ctx, []featurestore.StatDelta{click(a, 5)}); err != nil {
		t.Fatal(err)
	}
	r := start(t, g, quiet)
	flushed := make(chan error, 1)
	steps := []struct {
		name          string
		do            func(t *testing.T)
		learned, have int64 // in the snapshot, in the store
	}{
		{"loaded", func(*testing.T) {}, 5, 5},
		{"in flight", func(t *testing.T) {
			g.set(func(g *gate) { g.hold = make(chan struct{}) })
			r.Add(click(a, 1))
			go func() { flushed <- r.Flush(ctx) }()
			<-g.held
		}, 6, 5},
		// Pending: counted at once, before any flush (issue 14).
		{"in flight and pending", func(*testing.T) { r.Add(click(a, 1)); r.Add(click(a, 0)) }, 7, 5},
		{"flushed, not reloaded", func(t *testing.T) {
			g.set(func(g *gate) { close(g.hold); g.hold = nil })
			if err := <-flushed; err != nil {
				t.Fatal(err)
			}
		}, 7, 6},
		{"reloaded", func(t *testing.T) {
			if err := r.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}, 7, 6},
		{"another node adds", func(t *testing.T) {
			if err := g.StatsStore.AddStats(ctx, []featurestore.StatDelta{click(a, 10)}); err != nil {
				t.Fatal(err)
			}
		}, 7, 16},
		{"reloaded again", func(t *testing.T) {
			if err := r.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}, 17, 16},
		{"all flushed", func(t *testing.T) {
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}, 17, 17},
		{"all reloaded", func(t *testing.T) {
			if err := r.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}, 17, 17},
	}
	for _, s := range steps {
		s.do(t)
		if got := learned(r, a); got != s.learned {
			t.Errorf("%s: Learned has %d clicks, want %d", s.name, got, s.learned)
		}
		if got := stored(t, g, a); got != s.have {
			t.Errorf("%s: store has %d clicks, want %d", s.name, got, s.have)
		}
	}
}

func TestRetryAfterFailure(t *testing.T) {
	ctx := context.Background()
	a, b := cell(1), cell(2)

	t.Run("failed flush", func(t *testing.T) {
		g := newGate(t)
		r := start(t, g, quiet)
		g.set(func(g *gate) { g.fails = 1 })
		r.Add(click(a, 1), click(b, 1))
		if err := r.Flush(ctx); !errors.Is(err, errInjected) {
			t.Fatalf("Flush: err = %v, want the injected failure", err)
		}
		if r.Pending() != 2 || learned(r, a) != 1 || r.FlushFailures() != 1 {
			t.Errorf("after the failure: Pending() = %d, Learned a = %d, FlushFailures() = %d; want 2, 1, 1", r.Pending(), learned(r, a), r.FlushFailures())
		}
		r.Add(click(a, 1))
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.FlushFailures(); got != 1 {
			t.Errorf("after the retry: FlushFailures() = %d, want 1", got)
		}
		if err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if stored(t, g, a) != 2 || stored(t, g, b) != 1 || learned(r, a) != 2 || r.Pending() != 0 {
			t.Errorf("after the retry: store a=%d b=%d, Learned a=%d, Pending %d; want 2, 1, 2, 0",
				stored(t, g, a), stored(t, g, b), learned(r, a), r.Pending())
		}
	})

	t.Run("second call of a backlog fails", func(t *testing.T) {
		g := newGate(t)
		opts := quiet
		opts.MaxPending = 2
		r := start(t, g, opts)
		// The first call succeeds, the second fails: the third is not
		// made, and the cells of the last two go back to pending.
		g.set(func(g *gate) { g.failCall = 2 })
		var deltas []featurestore.StatDelta
		for i := range 5 {
			deltas = append(deltas, click(cell(i), int64(i+1)))
		}
		r.Add(deltas...)
		for range 3 {
			if r.Flush(ctx) == nil {
				break
			}
		}
		for i := range 5 {
			if got, l := stored(t, g, cell(i)), learned(r, cell(i)); got != int64(i+1) || l != int64(i+1) {
				t.Errorf("cell %d: store has %d clicks, Learned %d, want %d", i, got, l, i+1)
			}
		}
		if got, want := fmt.Sprint(g.calls()), "[2 2 2 1]"; got != want {
			t.Errorf("AddStats calls of %s deltas, want %s", got, want)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		g := newGate(t)
		opts := quiet
		opts.Timeout = 20 * time.Millisecond
		r := start(t, g, opts)
		g.set(func(g *gate) { g.hold = make(chan struct{}) }) // never closed
		r.Add(click(a, 1))
		if err := r.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Flush: err = %v, want DeadlineExceeded", err)
		}
		<-g.held
		g.set(func(g *gate) { g.hold = nil })
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, g, a); got != 1 {
			t.Errorf("store has %d clicks, want 1", got)
		}
	})

	t.Run("in the background", func(t *testing.T) {
		g := newGate(t)
		opts := quiet
		opts.FlushEvery = time.Millisecond
		r := start(t, g, opts)
		g.set(func(g *gate) { g.fails = 3 })
		r.Add(click(a, 1), click(b, 2))
		waitFor(t, "the retries", func() bool { return stored(t, g, b) == 2 })
		if got := stored(t, g, a); got != 1 {
			t.Errorf("store has %d clicks of a, want 1", got)
		}
		if got := len(g.calls()); got < 4 {
			t.Errorf("%d AddStats calls, want at least 4", got)
		}
	})
}

func TestStopFlushes(t *testing.T) {
	ctx := context.Background()
	g := newGate(t)
	r := start(t, g, quiet)
	hourly := featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web", Experiment: "e", Variant: "b"}
	r.Add(click(cell(1), 3), featurestore.StatDelta{Key: hourly, Counts: featurestore.Counts{Impressions: 1}})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, g, cell(1)); got != 3 {
		t.Errorf("store has %d clicks after Run stopped, want 3", got)
	}
	h, err := g.HourlyStats(ctx, 500000, 500000)
	if err != nil {
		t.Fatal(err)
	}
	if got := h[hourly].Impressions; got != 1 {
		t.Errorf("store has %d hourly impressions after Run stopped, want 1", got)
	}
	if err := r.Flush(ctx); err != nil {
		t.Errorf("Flush after Run stopped: %v", err)
	}
	if err := r.Run(ctx); err == nil {
		t.Error("a second Run returned nil, want an error: a Recorder has one goroutine")
	}
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestDropsBeyondMaxCells(t *testing.T) {
	g := newGate(t)
	var logs syncBuffer
	opts := quiet
	opts.FlushEvery = 10 * time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r := start(t, g, opts)
	g.set(func(g *gate) { g.fails = -1 }) // a long outage
	const extra = 5
	deltas := make([]featurestore.StatDelta, 0, outcomes.MaxCells+extra)
	for i := range outcomes.MaxCells + extra {
		deltas = append(deltas, featurestore.StatDelta{Key: featurestore.StatKey{Hour: 1, Offer: fmt.Sprint(i)}, Counts: featurestore.Counts{Decisions: 1}})
	}
	r.Add(deltas...)
	r.Add(deltas[0])                                                                                                     // a pending cell still takes deltas
	r.Add(featurestore.StatDelta{Key: featurestore.StatKey{Offer: "o"}, Counts: featurestore.Counts{Value: math.NaN()}}) // refused by every store
	if got, want := r.Dropped(), int64(extra+1); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
	waitFor(t, "the flush failures and the drops to be logged", func() bool {
		l := logs.String()
		return strings.Contains(l, "statistics dropped") && strings.Contains(l, "flush failed")
	})
	if got := strings.Count(logs.String(), "flush failed"); got != 1 {
		t.Errorf("flush failure logged %d times, want once a minute", got)
	}
	if got := r.Pending(); got != outcomes.MaxCells {
		t.Errorf("Pending() = %d, want %d", got, outcomes.MaxCells)
	}
	g.set(func(g *gate) { g.fails = 0 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	h, err := g.HourlyStats(context.Background(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != outcomes.MaxCells || h[deltas[0].Key].Decisions != 2 {
		t.Errorf("store has %d cells, the first with %d decisions; want %d, 2", len(h), h[deltas[0].Key].Decisions, outcomes.MaxCells)
	}
}

// TestConcurrentUse adds from many goroutines while the Recorder flushes
// and reloads all the time and readers check that no snapshot ever holds
// more than was added.
func TestConcurrentUse(t *testing.T) {
	g := newGate(t)
	r := start(t, g, outcomes.Options{FlushEvery: time.Millisecond, RefreshEvery: 2 * time.Millisecond, MaxPending: 7, Logger: slog.New(slog.DiscardHandler)})
	const workers, adds, cells = 8, 300, 5
	var added atomic.Int64 // incremented before each Add
	total := func() int64 {
		var n int64
		for i := range cells {
			n += learned(r, cell(i))
		}
		return n
	}
	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got, max := total(), added.Load(); got > max {
					t.Errorf("Learned holds %d clicks, only %d were added", got, max)
					return
				}
			}
		})
	}
	for w := range workers {
		writers.Go(func() {
			for i := range adds {
				added.Add(1)
				r.Add(click(cell((w+i)%cells), 1), featurestore.StatDelta{Key: featurestore.StatKey{Hour: 7, Offer: "o"}, Counts: featurestore.Counts{Impressions: 1}})
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	const n = workers * adds
	if got := total(); got != n {
		t.Errorf("Learned holds %d clicks after Run stopped, want %d", got, n)
	}
	var sum int64
	for i := range cells {
		sum += stored(t, g, cell(i))
	}
	h, err := g.HourlyStats(context.Background(), 7, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := h[featurestore.StatKey{Hour: 7, Offer: "o"}].Impressions; sum != n || got != n {
		t.Errorf("store has %d clicks and %d impressions, want %d of each", sum, got, n)
	}
}

// TestLearnedAtOnce: this node's outcomes reach Learned when Add returns,
// before any flush, for a cell the snapshot holds and for a new one; a
// flush and a reload then count each once.
func TestLearnedAtOnce(t *testing.T) {
	ctx := context.Background()
	g := newGate(t)
	a, b := cell(1), cell(2)
	if err := g.StatsStore.AddStats(ctx, []featurestore.StatDelta{click(a, 5)}); err != nil {
		t.Fatal(err)
	}
	r := start(t, g, quiet)
	for _, step := range []struct {
		name     string
		do       func()
		ca, cb   int64 // clicks of a and b in Learned
		wantSame bool  // the snapshot is the one before the step
	}{
		{"a known cell", func() { r.Add(click(a, 2)) }, 7, 0, true},
		{"a new cell", func() { r.Add(click(b, 3)) }, 7, 3, false},
		{"the new cell again", func() { r.Add(click(b, 1), click(a, 1)) }, 8, 4, true},
		{"flushed", func() {
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}, 8, 4, false},
		{"reloaded", func() {
			if err := r.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}, 8, 4, false},
	} {
		before := r.Learned()
		step.do()
		if got := learned(r, a); got != step.ca {
			t.Errorf("%s: Learned has %d clicks of a, want %d", step.name, got, step.ca)
		}
		if got := learned(r, b); got != step.cb {
			t.Errorf("%s: Learned has %d clicks of b, want %d", step.name, got, step.cb)
		}
		if same := r.Learned() == before; same != step.wantSame {
			t.Errorf("%s: snapshot kept %v, want %v (a known cell counts in place; a new one rebuilds)", step.name, same, step.wantSame)
		}
	}
}

// TestLearnedConcurrent adds from several goroutines while others read
// Learned and flushes run: at the end the snapshot counts every delta
// once (run with -race).
func TestLearnedConcurrent(t *testing.T) {
	ctx := context.Background()
	g := newGate(t)
	r := start(t, g, quiet)
	const adders, adds, cells = 4, 500, 3
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = learned(r, cell(0))
				_ = r.Flush(ctx)
			}
		}
	}()
	for range adders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range adds {
				r.Add(click(cell(i%cells), 1))
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	for i := range cells {
		perAdder := adds / cells
		if i < adds%cells {
			perAdder++
		}
		want := int64(adders * perAdder)
		if got := learned(r, cell(i)); got != want {
			t.Errorf("cell %d: Learned has %d clicks, want %d", i, got, want)
		}
	}
}
