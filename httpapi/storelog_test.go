package httpapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestStoreErrorLogShared: the server's store errors and its store
// client's own messages share one limit of a line a second, and the line
// counts what it left out.
func TestStoreErrorLogShared(t *testing.T) {
	var buf bytes.Buffer // slog's handler serialises its writes
	l := NewStoreErrorLog(slog.New(slog.NewTextHandler(&buf, nil)))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				l.error("load", errors.New("connection refused"))
				l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v\n", 5, "connection refused")
			}
		})
	}
	wg.Wait()
	// 2,000 errors in well under a second on a quiet machine; two seconds
	// at most on a loaded one.
	got := strings.Count(buf.String(), "\n")
	if got < 1 || got > 2 {
		t.Fatalf("%d lines for 2000 errors, want 1 or 2:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), `msg="feature store"`) {
		t.Errorf("line is not a store error: %s", buf.String())
	}
	// The next line, a second later, says how many were left out.
	l.last.Store(0)
	l.Printf(context.Background(), "redis: %s", "discarding bad PubSub connection")
	last := buf.String()[strings.LastIndex(strings.TrimSuffix(buf.String(), "\n"), "\n")+1:]
	if !strings.Contains(last, `op=client err="redis: discarding bad PubSub connection" suppressed=`) || strings.Contains(last, "suppressed=0") {
		t.Errorf("line after the burst = %q, want the client's message and the number suppressed", last)
	}
}
