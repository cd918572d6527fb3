package decisionlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Log.
type Options struct {
	// Dir holds the segments, created if missing. Required.
	Dir string
	// SegmentBytes is the size past which the writer starts a new
	// segment. Default: DefaultSegmentBytes (32 MiB).
	SegmentBytes int64
	// RetainAge removes a closed segment once its newest entry is older.
	// Default 0: no limit by age.
	RetainAge time.Duration
	// RetainBytes removes the oldest closed segments while all of them
	// take more. Default 0: no limit by size. With neither limit the log
	// grows without bound.
	RetainBytes int64
	// Buffer is the number of entries waiting for the writer; an entry
	// appended when it is full is dropped. Default: DefaultBuffer (4096).
	Buffer int
	// Logger receives write errors. Default: discard.
	Logger *slog.Logger
	// Now is the clock of retention. Default: time.Now.
	Now func() time.Time
	// Sink, when set, also receives every entry written, encoded, in
	// batches (a Redis Stream: package redisstream). Default: none.
	Sink Sink
	// SinkBatch is the most entries the writer hands Sink at once; it
	// hands it what it has at least every FlushEvery. Default:
	// DefaultSinkBatch (256).
	SinkBatch int
}

// Sink is a second destination of the entries written, beside the
// segments.
type Sink interface {
	// Send takes a batch of entries, each one JSON object without a
	// newline, in the order written; the batch is the sink's from then
	// on. It must not block the writer: a sink that cannot keep up
	// drops batches and counts them, as Append does.
	Send(batch [][]byte)
}

// FlushEvery is how often the writer hands what it buffered to the
// file, and so to Lookup: a flush per entry, a write system call each,
// cost a logged decision 3 times more than its encoding.
const FlushEvery = 100 * time.Millisecond

// DrainEvery is how often the writer takes what was queued, or sooner
// when the queue is half full: waking it for every entry cost a
// goroutine switch a logged decision, and with several processors the
// wake-up of an idle one, a system call.
const DrainEvery = 10 * time.Millisecond

// Option defaults.
const (
	DefaultSegmentBytes = 32 << 20
	DefaultBuffer       = 4096
	DefaultSinkBatch    = 256
)

// segment is one file of the log.
type segment struct {
	seq        uint64
	size       int64
	oldest     time.Time // of its entries' times
	newest     time.Time
	hasEntries bool
}

func (s *segment) name() string { return fmt.Sprintf("%020d%s", s.seq, ext) }

const ext = ".jsonl"

// Log is a decision log open for writing. Make it with Open.
type Log struct {
	opts    Options
	ch      chan *Entry
	wake    chan struct{} // the queue is half full: drain before DrainEvery
	dropped atomic.Uint64
	written atomic.Uint64

	mu   sync.RWMutex // guards segs and the flushed extent of the open one
	segs []*segment   // oldest first; the last is the one written

	// The writer's own (Run).
	f   *os.File
	w   *bufio.Writer
	buf []byte
	cur segment // what the open segment holds, written but maybe not flushed
	// The batch for Sink: its entries' bytes, one array, and each
	// entry's end in it.
	sinkBuf  []byte
	sinkEnds []int
}

// Open opens the log in opts.Dir: the segments found are kept (their
// time ranges read by one scan each) and new entries go to a new one.
func Open(opts Options) (*Log, error) {
	var errs []error
	if opts.Dir == "" {
		errs = append(errs, errors.New("a directory (Dir) is required"))
	}
	if opts.SegmentBytes < 0 || opts.RetainAge < 0 || opts.RetainBytes < 0 || opts.Buffer < 0 || opts.SinkBatch < 0 {
		errs = append(errs, errors.New("SegmentBytes, RetainAge, RetainBytes, Buffer and SinkBatch must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.Buffer == 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.SinkBatch == 0 {
		opts.SinkBatch = DefaultSinkBatch
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	l := &Log{opts: opts, ch: make(chan *Entry, opts.Buffer), wake: make(chan struct{}, 1)}
	seqs, err := segments(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	for _, seq := range seqs {
		s := &segment{seq: seq}
		if err := s.scan(opts.Dir); err != nil {
			return nil, fmt.Errorf("decisionlog: %w", err)
		}
		l.segs = append(l.segs, s)
	}
	next := uint64(1)
	if n := len(l.segs); n > 0 {
		next = l.segs[n-1].seq + 1
	}
	if err := l.create(next); err != nil {
		return nil, err
	}
	return l, nil
}

// segments returns the sequence numbers of the segments in dir, in
// order.
func segments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ext)
		if !ok || de.IsDir() {
			continue
		}
		if seq, err := strconv.ParseUint(name, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// scan reads s's size and time range from its file. A corrupt line (a
// crash in mid-write) is skipped. An entry's time is read where the
// writer puts it, after its id (entryTime), without decoding the
// entry: decoding each cost an Open 140 µs an entry, 14 s for a log of
// 100,000 (BenchmarkOpen).
func (s *segment) scan(dir string) error {
	f, err := os.Open(filepath.Join(dir, s.name()))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	s.size = st.Size()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	var e Entry
	for sc.Scan() {
		b := sc.Bytes()
		if t, ok := entryTime(b); ok {
			s.add(t)
			continue
		}
		if len(bytes.TrimSpace(b)) == 0 || isOutcome(b) {
			continue
		}
		// Not as the writer writes an entry: decoded, as Reader does.
		e = Entry{}
		if json.Unmarshal(b, &e) == nil && e.ID != "" {
			s.add(e.Time)
		}
	}
	return nil // a line too long ends what can be read of it
}

// timeAfterID is what follows an entry's id in its line (AppendJSON).
var timeAfterID = []byte(`","time":"`)

// entryTime reads the time of the entry whose line is b from its start,
// {"id":"…","time":"…", as AppendJSON writes it; false when b does not
// start so.
func entryTime(b []byte) (time.Time, bool) {
	if !bytes.HasPrefix(b, entryStart) {
		return time.Time{}, false
	}
	b = b[len(entryStart):]
	i := bytes.IndexByte(b, '"')
	if i < 0 || !bytes.HasPrefix(b[i:], timeAfterID) {
		return time.Time{}, false
	}
	b = b[i+len(timeAfterID):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:j]))
	return t, err == nil
}

func (s *segment) add(t time.Time) {
	if !s.hasEntries || t.Before(s.oldest) {
		s.oldest = t
	}
	if !s.hasEntries || t.After(s.newest) {
		s.newest = t
	}
	s.hasEntries = true
}

// create opens segment seq for writing.
func (l *Log) create(seq uint64) error {
	l.cur = segment{seq: seq}
	f, err := os.OpenFile(filepath.Join(l.opts.Dir, l.cur.name()), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("decisionlog: %w", err)
	}
	l.f = f
	if l.w == nil {
		l.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		l.w.Reset(f)
	}
	l.mu.Lock()
	s := l.cur
	l.segs = append(l.segs, &s)
	l.mu.Unlock()
	return nil
}

// Append queues e for the writer and reports whether it was taken: it
// never blocks, and an entry that finds the queue full is dropped and
// counted.
func (l *Log) Append(e *Entry) bool {
	select {
	case l.ch <- e:
		if len(l.ch) >= cap(l.ch)/2 {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		return true
	default:
		l.dropped.Add(1)
		recycle(e)
		return false
	}
}

// Dropped returns the number of entries dropped: the queue was full, or
// the entry could not be written.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written returns the number of entries written.
func (l *Log) Written() uint64 { return l.written.Load() }

// Run writes the entries appended until ctx is done, then what is left
// in the queue, and closes the open segment. Call it once.
func (l *Log) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	flush := time.NewTicker(FlushEvery)
	defer flush.Stop()
	drain := time.NewTicker(DrainEvery)
	defer drain.Stop()
	l.retain()
	for {
		select {
		case <-drain.C:
			l.drain()
		case <-l.wake:
			l.drain()
		case <-flush.C:
			l.drain()
			if l.w.Buffered() > 0 {
				l.flush()
			}
			l.send()
		case <-tick.C:
			l.retain()
		case <-ctx.Done():
			for {
				select {
				case e := <-l.ch:
					l.write(e)
					continue
				default:
				}
				break
			}
			l.flush()
			l.send()
			return l.f.Close()
		}
	}
}

// drain writes the entries queued.
func (l *Log) drain() {
	for n := len(l.ch); n > 0; n-- {
		l.write(<-l.ch)
	}
}

// write encodes e onto the open segment, starting a new one first when
// it is full.
func (l *Log) write(e *Entry) {
	defer recycle(e)
	b, err := e.AppendJSON(l.buf[:0])
	b = append(b, '\n')
	if cap(b) <= maxLine {
		l.buf = b
	}
	if err != nil || len(b) > maxLine {
		l.dropped.Add(1)
		if err != nil {
			l.opts.Logger.Error("decision log: encode", "id", e.ID, "err", err)
		}
		return
	}
	if l.cur.size > 0 && l.cur.size+int64(len(b)) > l.opts.SegmentBytes {
		l.rotate()
	}
	if _, err := l.w.Write(b); err != nil {
		l.dropped.Add(1)
		l.opts.Logger.Error("decision log: write", "err", err)
		return
	}
	l.cur.size += int64(len(b))
	l.cur.add(e.Time)
	l.written.Add(1)
	if l.opts.Sink != nil {
		l.sinkBuf = append(l.sinkBuf, b[:len(b)-1]...)
		l.sinkEnds = append(l.sinkEnds, len(l.sinkBuf))
		if len(l.sinkEnds) >= l.opts.SinkBatch {
			l.send()
		}
	}
}

// send hands the entries written since the last send to the sink: one
// allocation of the batch's slices a batch, whose bytes the sink then
// owns.
func (l *Log) send() {
	if l.opts.Sink == nil || len(l.sinkEnds) == 0 {
		return
	}
	batch := make([][]byte, len(l.sinkEnds))
	start := 0
	for i, end := range l.sinkEnds {
		batch[i] = l.sinkBuf[start:end:end]
		start = end
	}
	l.opts.Sink.Send(batch)
	l.sinkBuf = make([]byte, 0, cap(l.sinkBuf))
	l.sinkEnds = l.sinkEnds[:0]
}

// flush writes the buffered entries to the file and publishes them to
// Lookup.
func (l *Log) flush() {
	if err := l.w.Flush(); err != nil {
		l.opts.Logger.Error("decision log: write", "err", err)
	}
	l.mu.Lock()
	*l.segs[len(l.segs)-1] = l.cur
	l.mu.Unlock()
}

// rotate closes the open segment and starts the next, then applies
// retention.
func (l *Log) rotate() {
	l.flush()
	if err := l.f.Close(); err != nil {
		l.opts.Logger.Error("decision log: close segment", "err", err)
	}
	if err := l.create(l.cur.seq + 1); err != nil {
		l.opts.Logger.Error("decision log: new segment", "err", err)
		return
	}
	l.retain()
}

// retain removes the oldest closed segments past RetainAge or while
// they exceed RetainBytes. The open segment is never removed.
func (l *Log) retain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	cut := l.opts.Now().Add(-l.opts.RetainAge)
	for len(l.segs) > 1 {
		s := l.segs[0]
		old := l.opts.RetainAge > 0 && (!s.hasEntries || s.newest.Before(cut))
		big := l.opts.RetainBytes > 0 && total > l.opts.RetainBytes
		if !old && !big {
			break
		}
		if err := os.Remove(filepath.Join(l.opts.Dir, s.name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.opts.Logger.Error("decision log: remove segment", "err", err)
			break
		}
		total -= s.size
		l.segs = l.segs[1:]
	}
}

// ErrNotFound is returned by Lookup for a decision the log does not
// hold (never logged, not sampled, dropped, past retention or not yet
// written).
var ErrNotFound = errors.New("decision not in the log")

// Lookup returns the entry of decision id, logged at about t (the time
// in its id). It scans the segments whose time range covers t, newest
// first, for the line of id: the log keeps no index, so its memory does
// not grow with its size, and a lookup reads about one segment.
func (l *Log) Lookup(id string, t time.Time) (*Entry, error) {
	l.mu.RLock()
	var cands []segment
	for _, s := range slices.Backward(l.segs) {
		// The id's time has second resolution.
		if s.hasEntries && !t.Before(s.oldest.Truncate(time.Second)) && !t.After(s.newest) {
			cands = append(cands, *s)
		}
	}
	l.mu.RUnlock()
	prefix := []byte(`{"id":` + strconv.Quote(id) + `,`)
	for _, s := range cands {
		e, err := find(filepath.Join(l.opts.Dir, s.name()), s.size, prefix)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return e, err
		}
	}
	return nil, ErrNotFound
}

// find returns the entry whose line starts with prefix among the first
// size bytes of the segment at path.
func find(path string, size int64, prefix []byte) (*Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound // removed by retention meanwhile
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, size))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	for sc.Scan() {
		if b := sc.Bytes(); bytes.HasPrefix(b, prefix) {
			e := new(Entry)
			if err := json.Unmarshal(b, e); err != nil {
				return nil, fmt.Errorf("%s: %w: %v", filepath.Base(path), ErrCorrupt, err)
			}
			return e, nil
		}
	}
	return nil, ErrNotFound
}

// Read returns the entries of the log in dir, segment by segment in
// the order written, for tools reading a stopped node's log (replay,
// evaluation). A line that is not an entry yields an error naming its
// segment and line, and reading goes on; an error reading a segment
// ends it. The Entry yielded is reused by the next iteration.
func Read(dir string) iter.Seq2[*Entry, error] {
	return func(yield func(*Entry, error) bool) {
		seqs, err := segments(dir)
		if err != nil {
			yield(nil, fmt.Errorf("decision log: %w", err))
			return
		}
		var e Entry
		for _, seq := range seqs {
			name := (&segment{seq: seq}).name()
			f, err := os.Open(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			if err != nil {
				yield(nil, fmt.Errorf("decision log: %w", err))
				return
			}
			r := NewReader(f)
			for {
				err := r.Next(&e)
				if err == io.EOF {
					break
				}
				if err != nil {
					if !yield(nil, fmt.Errorf("decision log: %s: %w", name, err)) {
						f.Close()
						return
					}
					if errors.Is(err, ErrCorrupt) {
						continue
					}
					break
				}
				if !yield(&e, nil) {
					f.Close()
					return
				}
			}
			f.Close()
		}
	}
}
