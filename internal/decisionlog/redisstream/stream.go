package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configures a Stream.
type Options struct {
	// Client reaches Redis. Required.
	Client redis.UniversalClient
	// Key is the stream's key: one per node. Required.
	Key string
	// MaxLen is the length the stream is trimmed to, approximately
	// (MAXLEN ~): Redis may keep up to a node's worth more (100 entries
	// by default, stream-node-max-entries). Default: DefaultMaxLen.
	MaxLen int64
	// Queue is the number of batches waiting to be sent; a batch that
	// finds it full is dropped and counted. Default: DefaultQueue.
	Queue int
	// Timeout bounds one batch's pipeline, and the drain at shutdown.
	// Default: DefaultTimeout.
	Timeout time.Duration
	// Logger receives the failures, at most one line per LogEvery.
	// Default: discard.
	Logger *slog.Logger
	// LogEvery is the least time between two lines of failures. Default:
	// DefaultLogEvery.
	LogEvery time.Duration
}

// Option defaults.
const (
	DefaultMaxLen   = 1_000_000 // about 1 GiB of Redis memory at ~1 KiB an entry
	DefaultQueue    = 64        // batches: 16,384 entries at the log's 256 a batch
	DefaultTimeout  = 2 * time.Second
	DefaultLogEvery = 10 * time.Second
)

// Field is the stream entry's field holding the decision log entry.
const Field = "entry"

// Stream sends batches of the decision log to a Redis Stream. Make it
// with New and run it with Run.
type Stream struct {
	opts                  Options
	q                     chan [][]byte
	sent, failed, dropped atomic.Uint64

	// Run's own.
	lastLog  time.Time
	unlogged uint64
	lastErr  error
}

// New returns a Stream of opts.
func New(opts Options) (*Stream, error) {
	var errs []error
	if opts.Client == nil {
		errs = append(errs, errors.New("a Redis client (Client) is required"))
	}
	if opts.Key == "" {
		errs = append(errs, errors.New("a stream key (Key) is required"))
	}
	if opts.MaxLen < 0 || opts.Queue < 0 || opts.Timeout < 0 || opts.LogEvery < 0 {
		errs = append(errs, errors.New("MaxLen, Queue, Timeout and LogEvery must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redisstream: %w", err)
	}
	if opts.MaxLen == 0 {
		opts.MaxLen = DefaultMaxLen
	}
	if opts.Queue == 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LogEvery == 0 {
		opts.LogEvery = DefaultLogEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Stream{opts: opts, q: make(chan [][]byte, opts.Queue)}, nil
}

// Key returns the stream's key.
func (s *Stream) Key() string { return s.opts.Key }

// Send queues batch for Run without blocking; a batch that finds the
// queue full is dropped and its entries counted (Dropped).
func (s *Stream) Send(batch [][]byte) {
	select {
	case s.q <- batch:
	default:
		s.dropped.Add(uint64(len(batch)))
	}
}

// Sent returns the number of entries Redis acknowledged.
func (s *Stream) Sent() uint64 { return s.sent.Load() }

// Failed returns the number of entries whose XADD failed or was not
// answered in time: Redis unreachable, out of memory, or the key of
// another type.
func (s *Stream) Failed() uint64 { return s.failed.Load() }

// Dropped returns the number of entries dropped unsent because the queue
// was full (Redis slower than the decisions).
func (s *Stream) Dropped() uint64 { return s.dropped.Load() }

// Run sends the queued batches until ctx is done, then what is queued
// by then within Timeout. Call it once, and stop the log that sends to
// it first, so its last batch is queued before Run drains.
func (s *Stream) Run(ctx context.Context) error {
	tick := time.NewTicker(s.opts.LogEvery)
	defer tick.Stop()
	for {
		select {
		case b := <-s.q:
			s.send(ctx, b)
		case <-tick.C:
			s.report(false)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
			defer cancel()
			for {
				select {
				case b := <-s.q:
					s.send(dctx, b)
					continue
				default:
				}
				break
			}
			s.report(true)
			return nil
		}
	}
}

// send adds batch to the stream in one pipeline.
func (s *Stream) send(ctx context.Context, batch [][]byte) {
	if ctx.Err() != nil {
		s.fail(uint64(len(batch)), ctx.Err())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	pipe := s.opts.Client.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i, e := range batch {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.opts.Key, MaxLen: s.opts.MaxLen, Approx: true, Values: []any{Field, e}})
	}
	_, err := pipe.Exec(ctx)
	var ok, failed uint64
	for _, c := range cmds {
		if c.Err() == nil {
			ok++
		} else {
			failed++
			if err == nil {
				err = c.Err()
			}
		}
	}
	s.sent.Add(ok)
	if failed > 0 {
		s.fail(failed, err)
	}
}

// fail counts n entries failed and logs it, at most once per LogEvery.
func (s *Stream) fail(n uint64, err error) {
	s.failed.Add(n)
	s.unlogged += n
	s.lastErr = err
	s.report(false)
}

// report logs the failures not yet logged when LogEvery has passed since
// the last line, or at once when final.
func (s *Stream) report(final bool) {
	if s.unlogged == 0 || (!final && time.Since(s.lastLog) < s.opts.LogEvery) {
		return
	}
	s.opts.Logger.Error("decision log stream: entries not added", "key", s.opts.Key, "entries", s.unlogged,
		"failed_total", s.failed.Load(), "err", s.lastErr)
	s.lastLog, s.unlogged = time.Now(), 0
}
