package embedded_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/internal/tmpfstest"
)

func incr(id string) featurestore.Mutation {
	return featurestore.Mutation{CustomerID: id, Apply: func(r *featurestore.Record) bool {
		r.SetAttr("n", featurestore.Number(r.Attrs["n"].Num+1))
		return true
	}}
}

// refusals counts the causes passed to Options.Refused.
type refusals struct {
	mu sync.Mutex
	n  map[error]int
}

func (r *refusals) add(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[error]int{}
	}
	r.n[cause]++
}

func (r *refusals) count(cause error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[cause]
}

// TestDiskFull fills a small tmpfs under the store, with the free-space
// floor on (writes refused before pebble meets ENOSPC) and off (the log
// meets ENOSPC and waits for space), and checks that a write is refused
// with ErrDiskFull at once, never hangs, that Writable says so, and that
// writes resume by themselves once space is freed, with every
// acknowledged write kept across a reopen.
func TestDiskFull(t *testing.T) {
	tests := []struct {
		name    string
		minFree int64
		leave   int64 // bytes left free by the filler
	}{
		{name: "below the floor", minFree: 2 << 20, leave: 1 << 20},
		{name: "no floor, no space", minFree: -1, leave: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol := tmpfstest.Mount(t, "8m")
			dir := filepath.Join(vol, "store")
			var refused refusals
			s := open(t, embedded.Options{Dir: dir, MinFreeBytes: tt.minFree, Refused: refused.add})
			ctx := context.Background()
			if _, err := s.Mutate(ctx, []featurestore.Mutation{incr("a")}); err != nil {
				t.Fatal(err)
			}
			acked := 1

			filler := filepath.Join(vol, "filler")
			tmpfstest.Fill(t, filler, tt.leave)
			// Write until refused: at once below the floor once the
			// store has looked at the volume again (100 ms), after the
			// log's last partly filled page without a floor.
			deadline := time.Now().Add(5 * time.Second)
			var err error
			for time.Now().Before(deadline) {
				mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				start := time.Now()
				_, err = s.Mutate(mctx, []featurestore.Mutation{incr("a")})
				took := time.Since(start)
				cancel()
				if err != nil {
					if took > time.Second {
						t.Errorf("refused after %v, want well under the 2s deadline", took)
					}
					break
				}
				acked++
			}
			if !errors.Is(err, embedded.ErrDiskFull) {
				t.Fatalf("write on a full disk: err = %v, want ErrDiskFull", err)
			}
			if err := s.Writable(); !errors.Is(err, embedded.ErrDiskFull) {
				t.Errorf("Writable on a full disk = %v, want ErrDiskFull", err)
			}
			if n := refused.count(embedded.ErrDiskFull); n == 0 {
				t.Errorf("Refused(ErrDiskFull) not called")
			}
			if n := refused.count(embedded.ErrWriteFailed); n != 0 {
				t.Errorf("Refused(ErrWriteFailed) called %d times on a full disk", n)
			}
			// Reads go on.
			if _, err := s.Load(ctx, "a"); err != nil {
				t.Errorf("Load on a full disk: %v", err)
			}
			if free, floor := s.DiskSpace(); tt.minFree > 0 && (free >= floor || floor != tt.minFree) {
				t.Errorf("DiskSpace = %d free, floor %d; want free below the floor %d", free, floor, tt.minFree)
			}

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			deadline = time.Now().Add(5 * time.Second)
			for s.Writable() != nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if err := s.Writable(); err != nil {
				t.Fatalf("Writable 5s after space was freed: %v", err)
			}
			if _, err := s.Mutate(ctx, []featurestore.Mutation{incr("a")}); err != nil {
				t.Fatalf("write after space was freed: %v", err)
			}
			acked++

			// The log is whole: every acknowledged write is there after
			// a reopen (the refused one may be too: it was not
			// acknowledged, not undone).
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, embedded.Options{Dir: dir, MinFreeBytes: tt.minFree})
			r, err := s.Load(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if got := int(r.Attrs["n"].Num); got < acked || got > acked+1 {
				t.Errorf("n = %d after reopening, want %d acknowledged writes (or one more)", got, acked)
			}
		})
	}
}
