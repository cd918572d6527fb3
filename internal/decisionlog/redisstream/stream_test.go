package redisstream_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/internal/decisionlog/redisstream"
	"github.com/nextbest/nextbest/internal/redistest"
)

// lockedBuffer is a log destination safe for the Stream's goroutine and
// the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func batch(from, n int) [][]byte {
	b := make([][]byte, n)
	for i := range b {
		b[i] = fmt.Appendf(nil, `{"id":"d-%d"}`, from+i)
	}
	return b
}

// run runs s until the test ends, and waits for Run to return then.
func run(t *testing.T, s *redisstream.Stream) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// await polls ok every 10ms, at most 500 times.
func await(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 500 {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not after 5s", what)
}

// TestStreamAddsAndTrims: against a real redis-server, every entry sent
// lands in the stream, in order, and the stream is trimmed to about
// MaxLen (MAXLEN ~ trims whole nodes of 100 entries).
func TestStreamAddsAndTrims(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer c.Close()
	const maxLen, batches, per = 300, 20, 50
	s, err := redisstream.New(redisstream.Options{Client: c, Key: "nb:decisions:test", MaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	for i := range batches {
		s.Send(batch(i*per, per))
	}
	await(t, "all sent", func() bool { return s.Sent() == batches*per })
	if s.Failed() != 0 || s.Dropped() != 0 {
		t.Errorf("failed %d, dropped %d, want none", s.Failed(), s.Dropped())
	}
	ctx := context.Background()
	n, err := c.XLen(ctx, "nb:decisions:test").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Approximate trimming keeps at least MaxLen and at most a node more.
	if n < maxLen || n > maxLen+100 {
		t.Errorf("XLEN %d after %d entries, want about %d (MAXLEN ~)", n, batches*per, maxLen)
	}
	msgs, err := c.XRevRangeN(ctx, "nb:decisions:test", "+", "-", 3).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		want := fmt.Sprintf(`{"id":"d-%d"}`, batches*per-1-i)
		if got := m.Values[redisstream.Field]; got != want {
			t.Errorf("entry %d from the end: %v, want %s", i, got, want)
		}
	}
}

// TestStreamRedisDown: with Redis stopped, a batch fails, is counted as
// failed (never sent), and is logged once for the window.
func TestStreamRedisDown(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	var logs lockedBuffer
	s, err := redisstream.New(redisstream.Options{Client: c, Key: "k", Timeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), LogEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	s.Send(batch(0, 5))
	await(t, "sent", func() bool { return s.Sent() == 5 })
	rs.Stop()
	for i := range 3 {
		s.Send(batch(5+10*i, 10))
	}
	await(t, "failed", func() bool { return s.Failed() == 30 })
	if s.Sent() != 5 {
		t.Errorf("sent %d with Redis down, want the 5 before", s.Sent())
	}
	if got := strings.Count(logs.String(), "entries not added"); got != 1 {
		t.Errorf("%d log lines for 3 failed batches within LogEvery, want 1:\n%s", got, logs.String())
	}
}

// TestSendNeverBlocks: with nobody running the stream, a full queue
// drops the batch and counts its entries.
func TestSendNeverBlocks(t *testing.T) {
	s, err := redisstream.New(redisstream.Options{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Key: "k", Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s.Send(batch(0, 7))
	}
	if got := s.Dropped(); got != 21 {
		t.Errorf("dropped %d, want 21 (3 batches of 7 past a queue of 2)", got)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []redisstream.Options{
		{Key: "k"},
		{Client: redis.NewClient(&redis.Options{}), Key: ""},
		{Client: redis.NewClient(&redis.Options{}), Key: "k", MaxLen: -1},
	} {
		if _, err := redisstream.New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}
