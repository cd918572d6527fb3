package embedded

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/nextbest/nextbest/featurestore"
)

// TestLogWriteFaults makes the write-ahead log's writes fail under the
// store, with ENOSPC (the log waits for space: writes are refused with
// ErrDiskFull and resume by themselves) and with EIO (pebble cannot go on:
// writes are refused with ErrWriteFailed until the store is reopened), and
// checks that no write hangs or panics and that every acknowledged write
// survives a reopen. Without root, unlike the tmpfs test beside it.
func TestLogWriteFaults(t *testing.T) {
	tests := []struct {
		name     string
		errno    syscall.Errno
		want     error
		recovers bool
	}{
		{name: "no space", errno: syscall.ENOSPC, want: ErrDiskFull, recovers: true},
		{name: "I/O error", errno: syscall.EIO, want: ErrWriteFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failing atomic.Bool
			fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if failing.Load() && op.Kind == errorfs.OpFileWrite && strings.HasSuffix(op.Path, ".log") {
					return &os.PathError{Op: "write", Path: op.Path, Err: tt.errno}
				}
				return nil
			}))
			var mu sync.Mutex
			refused := map[error]int{}
			dir := t.TempDir()
			s, err := open(Options{Dir: dir, MinFreeBytes: -1, Refused: func(cause error) {
				mu.Lock()
				refused[cause]++
				mu.Unlock()
			}}, fs)
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					s.Close()
				}
			})
			incr := []featurestore.Mutation{{CustomerID: "a", Apply: func(r *featurestore.Record) bool {
				r.SetAttr("n", featurestore.Number(r.Attrs["n"].Num+1))
				return true
			}}}
			// write returns Mutate's error, failing the test if it took
			// longer than a second of its two-second deadline.
			write := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				start := time.Now()
				_, err := s.Mutate(ctx, incr)
				if took := time.Since(start); took > time.Second {
					t.Errorf("Mutate took %v (err %v), want well under its 2s deadline", took, err)
				}
				return err
			}
			acked := 0
			for range 3 {
				if err := write(); err != nil {
					t.Fatal(err)
				}
				acked++
			}

			failing.Store(true)
			for i := range 3 {
				if err := write(); !errors.Is(err, tt.want) {
					t.Fatalf("write %d with failing log writes: err = %v, want %v", i, err, tt.want)
				}
			}
			if err := s.Writable(); !errors.Is(err, tt.want) {
				t.Errorf("Writable = %v, want %v", err, tt.want)
			}
			mu.Lock()
			if refused[tt.want] == 0 || len(refused) != 1 {
				t.Errorf("Refused causes = %v, want only %v", refused, tt.want)
			}
			mu.Unlock()
			if _, err := s.Load(context.Background(), "a"); err != nil {
				t.Errorf("Load with failing log writes: %v", err)
			}

			failing.Store(false)
			if tt.recovers {
				deadline := time.Now().Add(5 * time.Second)
				for s.Writable() != nil && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if err := write(); err != nil {
					t.Fatalf("write once the log has space: %v", err)
				}
				acked++
			} else if err := write(); !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("write after a failed log write: err = %v, want ErrWriteFailed until reopened", err)
			}

			done := make(chan error, 1)
			go func() { done <- s.Close() }()
			select {
			case err := <-done:
				if err != nil && tt.recovers {
					t.Errorf("Close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close hangs")
			}
			closed = true

			// Reopened, the store has every acknowledged write and takes
			// writes again.
			s, err = Open(Options{Dir: dir, MinFreeBytes: -1})
			if err != nil {
				t.Fatal(err)
			}
			closed = false
			r, err := s.Load(context.Background(), "a")
			if err != nil {
				t.Fatal(err)
			}
			// Refused writes were not acknowledged, not undone: they may
			// be there.
			if got := int(r.Attrs["n"].Num); got < acked || got > acked+4 {
				t.Errorf("n = %d after reopening, want %d acknowledged writes (or up to 4 refused ones)", got, acked)
			}
			if err := write(); err != nil {
				t.Errorf("write after reopening: %v", err)
			}
		})
	}
}

// usageFS reports a fixed disk usage.
type usageFS struct {
	vfs.FS
	avail, total uint64
}

func (fs usageFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: fs.avail, TotalBytes: fs.total, UsedBytes: fs.total - fs.avail}, nil
}

func TestDiskFloor(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	tests := []struct {
		name    string
		bytes   int64
		percent float64
		total   uint64
		want    int64
	}{
		{"default, small volume: 5%", 0, 0, 8 * mib, 8 * mib / 20},
		{"default, large volume: 256 MiB", 0, 0, 100 * gib, 256 * mib},
		{"bytes", 64 * mib, 0, 100 * gib, 64 * mib},
		{"percent", 0, 10, 100 * gib, 10 * gib},
		{"both: the smaller", 1 * gib, 10, 5 * gib, 512 * mib},
		{"off", -1, 0, 100 * gib, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDisk(usageFS{FS: vfs.Default, avail: tt.total / 2, total: tt.total}, t.TempDir(),
				Options{MinFreeBytes: tt.bytes, MinFreePercent: tt.percent})
			if free, floor := d.space(); floor != tt.want || free != int64(tt.total/2) {
				t.Errorf("space() = %d free, floor %d; want %d free, floor %d", free, floor, tt.total/2, tt.want)
			}
		})
	}
}

// TestDiskFloorBurst: the bytes committed between two looks at the volume
// count, so a burst cannot run past the floor in the 100 ms between them.
func TestDiskFloorBurst(t *testing.T) {
	d := newDisk(usageFS{FS: vfs.Default, avail: 10 << 20, total: 1 << 30}, t.TempDir(), Options{MinFreeBytes: 8 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err := d.admit(); err != nil {
		t.Fatalf("admit with 10 MiB free over an 8 MiB floor: %v", err)
	}
	d.wrote(3 << 20)
	if err := d.admit(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("admit after 3 MiB written since the last look: %v, want ErrDiskFull", err)
	}
}
