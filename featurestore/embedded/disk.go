package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Why the store guards the disk itself: pebble cannot survive a failed
// write-ahead log write in-process. The log writer keeps the first write
// or sync error for good; the commit that sees it calls Logger.Fatalf
// (DB.Apply: "fatal commit error"); the next commit's log write then
// panics while holding pebble's commit mutex (commitPipeline.prepare), and
// a failed log rotation panics holding it too, so every later commit, and
// DB.Close, blocks for ever. That was the wedge seen on a full volume: the
// first writes answered 500 (the panic), the rest hung, even after space
// was freed, until a restart.
//
// So pebble must never see ENOSPC on its log. Three layers see to it:
//
//  1. A free-space floor (Options.MinFreeBytes, MinFreePercent): writes are
//     refused with ErrDiskFull while the volume has less space available
//     than the floor, leaving pebble the room its flushes and compactions
//     of already accepted data need. The volume is asked (statfs) at most
//     every diskCheckEvery, and the bytes committed since are subtracted,
//     so a burst cannot run past the floor between two looks.
//  2. If the log (or the MANIFEST, or a marker file) still meets ENOSPC —
//     the floor is off, or another process filled the volume — the file
//     layer under pebble does not return the error: it waits for space and
//     retries the rest of the write every noSpaceRetry, so pebble's state
//     stays clean and writing resumes by itself when space returns. While
//     it waits, new writes are refused with ErrDiskFull and callers waiting
//     for durability are answered ErrDiskFull at once (their write may still
//     become durable later: it was not acknowledged, so a retry is safe
//     with an event id). Tables (.sst, .blob) are not retried: pebble
//     deletes a failed flush or compaction output and tries again, which
//     frees the space a waiting write would hold.
//     The one residue: a commit admitted just before the wait began that
//     has to rotate the log (pebble then closes the old log, which flushes
//     it) waits too, holding pebble's commit lock and its customers' locks,
//     until space returns or the store closes; commits already admitted and
//     writes of the same customers wait behind it. Every other write is
//     refused at once. Rotation comes once per 64 MiB memtable, and no
//     memtable fills while writes are refused, so this needs the volume to
//     fill within the same commit that fills a memtable.
//  3. Any other write or sync error of those files (EIO, or ENOSPC from
//     fsync, after which the kernel may have dropped the dirty pages, so a
//     retry could report a sync that did not happen) leaves pebble unable
//     to commit: the store refuses every later write with ErrWriteFailed,
//     at once, and a restart (whose log replay restores every acknowledged
//     write) is the way back. Pebble's Fatalf panic on the committing
//     goroutine is turned into that error rather than a 500.

// ErrDiskFull is wrapped by the error of a write refused because the
// volume's free space is below the floor or a write found no space. The
// store accepts writes again by itself once space returns.
var ErrDiskFull = errors.New("embedded: disk full")

// ErrWriteFailed is wrapped by the error of a write refused because a
// write-ahead log write or sync failed: the store accepts no more writes
// until it is reopened (the process restarted).
var ErrWriteFailed = errors.New("embedded: write failed")

const (
	// DefaultMinFreeBytes and DefaultMinFreePercent make the default
	// floor: the smaller of the two. 256 MiB holds several flushes of the
	// 64 MiB memtables; 5% keeps the floor modest on a small volume.
	DefaultMinFreeBytes   = 256 << 20
	DefaultMinFreePercent = 5

	// diskCheckEvery bounds how often the volume is asked for its free
	// space: one statfs per interval, whatever the write rate.
	diskCheckEvery = 100 * time.Millisecond
	// noSpaceRetry is how often a log write waiting for space is retried.
	noSpaceRetry = 100 * time.Millisecond
	// refusingLogEvery bounds the log lines of an episode of refusals.
	refusingLogEvery = 10 * time.Second
)

// disk watches the free space of the store's volume and the health of its
// log writes, and admits or refuses writes accordingly. Safe for
// concurrent use.
type disk struct {
	fs    vfs.FS // the operating system's
	dir   string
	bytes int64   // floor in bytes, 0: none
	pct   float64 // floor in percent of the volume, 0: none
	log   *slog.Logger
	// refused is told the cause (ErrDiskFull or ErrWriteFailed) of each
	// refused write.
	refused func(cause error)

	// armed is false while pebble opens: a full disk then fails Open
	// rather than waiting.
	armed     atomic.Bool
	abort     chan struct{} // closed by close: waits for space end
	closeOnce sync.Once

	checked atomic.Int64 // Unix nanoseconds of the last statfs
	known   atomic.Bool  // whether the volume told its free space
	free    atomic.Int64 // available bytes then, less bytes committed since
	floor   atomic.Int64 // bytes

	stalling atomic.Bool // a log write waits for space
	mu       sync.Mutex
	stalls   int           // log writes waiting for space; guarded by mu
	stallCh  chan struct{} // closed when a wait for space begins; guarded by mu

	failed atomic.Pointer[error] // the ErrWriteFailed error, for good

	refusing   atomic.Bool  // the last admission was refused
	lastLog    atomic.Int64 // Unix nanoseconds of the last refusal line
	suppressed atomic.Int64 // refusals since that line
	episode    atomic.Int64 // refusals since writes were last admitted
}

func newDisk(fs vfs.FS, dir string, opts Options) *disk {
	d := &disk{fs: fs, dir: dir, log: opts.Logger, refused: opts.Refused,
		abort: make(chan struct{}), stallCh: make(chan struct{})}
	switch {
	case opts.MinFreeBytes < 0:
	case opts.MinFreeBytes == 0 && opts.MinFreePercent == 0:
		d.bytes, d.pct = DefaultMinFreeBytes, DefaultMinFreePercent
	default:
		d.bytes, d.pct = opts.MinFreeBytes, opts.MinFreePercent
	}
	if d.refused == nil {
		d.refused = func(error) {}
	}
	d.refresh(true)
	return d
}

// floorOf is the floor on a volume of total bytes: the smaller of the
// floors set.
func (d *disk) floorOf(total uint64) int64 {
	floor := d.bytes
	if d.pct > 0 {
		p := int64(float64(total) * d.pct / 100)
		if floor == 0 || p < floor {
			floor = p
		}
	}
	return floor
}

// refresh asks the volume for its free space if the last answer is older
// than diskCheckEvery (or force); one caller asks, the others use the
// last answer.
func (d *disk) refresh(force bool) {
	now := time.Now().UnixNano()
	last := d.checked.Load()
	if !force && now-last < int64(diskCheckEvery) || !d.checked.CompareAndSwap(last, now) {
		return
	}
	u, err := d.fs.GetDiskUsage(d.dir)
	if err != nil {
		// Unknown: the floor cannot be applied, the other layers hold.
		d.known.Store(false)
		return
	}
	d.floor.Store(d.floorOf(u.TotalBytes))
	d.free.Store(int64(min(u.AvailBytes, 1<<62)))
	d.known.Store(true)
}

// wrote notes n bytes committed to the log since the last statfs.
func (d *disk) wrote(n int) {
	d.free.Add(-int64(n))
}

// space reports the volume's available bytes (-1: unknown) and the floor.
func (d *disk) space() (free, floor int64) {
	d.refresh(false)
	if !d.known.Load() {
		return -1, d.floor.Load()
	}
	return max(d.free.Load(), 0), d.floor.Load()
}

// state returns why writes are refused now, or nil.
func (d *disk) state() error {
	if err := d.failed.Load(); err != nil {
		return *err
	}
	if d.stalling.Load() {
		return fmt.Errorf("%w: no space left on device writing the write-ahead log in %s; waiting for space", ErrDiskFull, d.dir)
	}
	free, floor := d.space()
	if free >= 0 && free < floor {
		return fmt.Errorf("%w: %s available in %s, below the %s floor", ErrDiskFull, formatBytes(free), d.dir, formatBytes(floor))
	}
	return nil
}

// admit returns nil if a write may go ahead, or the error refusing it,
// counted and logged.
func (d *disk) admit() error {
	err := d.state()
	if err != nil {
		d.refuse(err)
		return err
	}
	if d.refusing.Load() && d.refusing.Swap(false) {
		free, floor := d.space()
		d.suppressed.Store(0)
		d.log.Info("feature store accepting writes again", "dir", d.dir, "free", formatBytes(free),
			"floor", formatBytes(floor), "refused", d.episode.Swap(0))
	}
	return nil
}

// refuse counts a write refused with err and logs why: at once when
// refusals begin, then at most every refusingLogEvery with the number
// refused in between.
func (d *disk) refuse(err error) {
	cause := ErrDiskFull
	if errors.Is(err, ErrWriteFailed) {
		cause = ErrWriteFailed
	}
	d.refused(cause)
	d.episode.Add(1)
	now := time.Now().UnixNano()
	last := d.lastLog.Load()
	first := !d.refusing.Swap(true)
	if !first && now-last < int64(refusingLogEvery) || !d.lastLog.CompareAndSwap(last, now) {
		d.suppressed.Add(1)
		return
	}
	hint := "free space on the volume; writes resume by themselves"
	if cause == ErrWriteFailed {
		hint = "restart nextbest: its log replay restores every acknowledged write"
	}
	d.log.Error("feature store refusing writes", "reason", err.Error(), "refused", d.suppressed.Swap(0)+1, "action", hint)
}

// fail makes the store refuse writes for good, after a log write or sync
// failed with err.
func (d *disk) fail(err error) {
	if !d.armed.Load() {
		return // opening: Open fails with err
	}
	select {
	case <-d.abort:
		return // closing: the failure is the abort's
	default:
	}
	werr := fmt.Errorf("%w: %v", ErrWriteFailed, err)
	if d.failed.CompareAndSwap(nil, &werr) {
		d.log.Error("feature store write failed; refusing writes until restarted", "dir", d.dir, "err", err)
	}
}

// stallBegin and stallEnd bracket a log write waiting for space.
func (d *disk) stallBegin(name string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stalls++
	if d.stalls == 1 {
		d.stalling.Store(true)
		close(d.stallCh)
		d.refresh(true) // for the free-space gauge
		d.log.Error("feature store disk full: write-ahead log waiting for space", "file", name, "err", err)
	}
}

func (d *disk) stallEnd() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stalls--
	if d.stalls == 0 {
		d.stallCh = make(chan struct{})
		d.stalling.Store(false)
		d.log.Info("feature store write-ahead log has space again")
		d.refresh(true)
	}
}

// stalled returns a channel closed when a log write next waits for space
// (already closed if one waits now).
func (d *disk) stalled() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stallCh
}

// waitForSpace sleeps noSpaceRetry before a write is retried; false if the
// write must give up instead (pebble is opening, or the store closing).
func (d *disk) waitForSpace() bool {
	if !d.armed.Load() {
		return false
	}
	t := time.NewTimer(noSpaceRetry)
	defer t.Stop()
	select {
	case <-d.abort:
		return false
	case <-t.C:
		return true
	}
}

// close ends every wait for space: the writes fail, so pebble can close.
func (d *disk) close() {
	d.closeOnce.Do(func() { close(d.abort) })
}

// fatalPanic is what pebbleLogger.Fatalf panics with.
type fatalPanic string

// guarded runs a pebble commit, turning the panic pebble raises when its
// log cannot be written (Fatalf, or the log writer's error re-panicked)
// into an ErrWriteFailed error, and making the store refuse writes from
// then on: pebble's commit pipeline cannot be trusted after it.
func (d *disk) guarded(commit func() error) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		var cause error
		switch v := p.(type) {
		case fatalPanic:
			cause = errors.New(string(v))
		case runtime.Error:
			panic(p) // a bug, not an I/O failure
		case error:
			cause = v
		default:
			panic(p)
		}
		d.fail(cause)
		err = fmt.Errorf("%w: %v", ErrWriteFailed, cause)
	}()
	return commit()
}

// guardFS is the file system under pebble: it hands out files whose
// writes wait for space (see the top of this file).
type guardFS struct {
	vfs.FS
	d *disk
}

// waits reports whether writes to the file named waits for space: every
// file but tables, whose failed writes pebble cleans up and retries.
func waits(name string) bool {
	return !strings.HasSuffix(name, ".sst") && !strings.HasSuffix(name, ".blob")
}

func (fs guardFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !waits(name) {
		return f, err
	}
	return &guardFile{File: f, d: fs.d, name: fs.PathBase(name)}, nil
}

func (fs guardFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	for {
		f, err := fs.FS.Create(name, category)
		if !noSpace(err) || !waits(name) || !fs.d.armed.Load() {
			return fs.wrap(name, f, err)
		}
		// No inode or directory block for a new log: a failed
		// rotation would wedge pebble like a failed write.
		fs.d.stallBegin(fs.PathBase(name), err)
		ok := fs.d.waitForSpace()
		fs.d.stallEnd()
		if !ok {
			return nil, err
		}
	}
}

func (fs guardFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.wrap(name, f, err)
}

func (fs guardFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

func (fs guardFS) Unwrap() vfs.FS { return fs.FS }

// guardFile is a file whose writes wait for space rather than fail with
// ENOSPC, and whose other write and sync errors fail the store.
type guardFile struct {
	vfs.File
	d    *disk
	name string
}

func (f *guardFile) Write(p []byte) (int, error) {
	return f.retry(p, func(b []byte) (int, error) { return f.File.Write(b) })
}

func (f *guardFile) WriteAt(p []byte, off int64) (int, error) {
	return f.retry(p, func(b []byte) (int, error) { return f.File.WriteAt(b, off+int64(len(p)-len(b))) })
}

// retry writes p with write, resuming after a short write that ran out of
// space once space returns.
func (f *guardFile) retry(p []byte, write func([]byte) (int, error)) (int, error) {
	n, stalled := 0, false
	defer func() {
		if stalled {
			f.d.stallEnd()
		}
	}()
	for {
		m, err := write(p[n:])
		n += m
		switch {
		case err == nil:
			return n, nil
		case !noSpace(err):
			f.d.fail(fmt.Errorf("write %s: %w", f.name, err))
			return n, err
		case !f.d.armed.Load():
			return n, err
		}
		if !stalled {
			stalled = true
			f.d.stallBegin(f.name, err)
		}
		if !f.d.waitForSpace() {
			return n, err
		}
	}
}

func (f *guardFile) Sync() error { return f.synced(f.File.Sync()) }

func (f *guardFile) SyncData() error { return f.synced(f.File.SyncData()) }

func (f *guardFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.synced(err)
}

// synced fails the store on a sync error: not retried, since after a
// failed fsync the kernel may have dropped the pages it could not write.
func (f *guardFile) synced(err error) error {
	if err != nil {
		f.d.fail(fmt.Errorf("sync %s: %w", f.name, err))
	}
	return err
}

// noSpace reports whether err says the volume (or the user's quota) is
// full.
func noSpace(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT))
}

// formatBytes writes n bytes for a person: 3.2 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
