package cache

import (
	"errors"
	"sync"

	"github.com/nextbest/nextbest/featurestore"
)

// errLeaderPanicked is what the followers of a load get when the load
// panicked; the panic itself goes up the leader's stack.
var errLeaderPanicked = errors.New("cache: backend load panicked")

// flight is one backend load of a customer that concurrent misses share.
type flight struct {
	// gen and epoch are the customer's stripe generation and the cache
	// epoch read before the load started. A miss joins the flight only
	// if they are still current: a flight that started before a write or
	// an invalidation finished may return what that write replaced.
	gen, epoch uint64
	done       chan struct{} // closed when rec and err are set
	rec        *featurestore.Record
	err        error
}

// flights are the loads in progress, by customer id. Unlike
// x/sync/singleflight's DoChan, the load runs on its leader's goroutine, so
// a panicking backend does not crash the process, and a follower stops
// waiting at its own deadline.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// join returns the flight of id at gen and epoch, starting one (leader
// true) if none is in progress. A new flight replaces an older one in the
// map, whose leader still finishes it for its followers. A leader must
// call run.
func (fs *flights) join(id string, gen, epoch uint64) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[id]; ok && f.gen == gen && f.epoch == epoch {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	f = &flight{gen: gen, epoch: epoch, done: make(chan struct{})}
	fs.m[id] = f
	return f, true
}

// run runs the load of the flight f of id and releases its followers.
func (fs *flights) run(id string, f *flight, load func() (*featurestore.Record, error)) (*featurestore.Record, error) {
	f.err = errLeaderPanicked
	defer func() {
		fs.mu.Lock()
		if fs.m[id] == f {
			delete(fs.m, id)
		}
		fs.mu.Unlock()
		close(f.done)
	}()
	f.rec, f.err = load()
	return f.rec, f.err
}
