package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/internal/redistest"
)

// Issue 14, point 1, the Redis Stream: with --redis every logged
// decision also goes to the node's stream, trimmed near
// --decision-log-stream-maxlen; with Redis stopped, decisions are still
// answered and the entries the stream could not take are counted in
// /metrics and logged, never counted sent.
func TestDecisionLogStream(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{}) // skips without redis-server, unless NEXTBEST_REQUIRE_REDIS=1
	const key, maxLen, n = "nb:decisions:test-node", 200, 500
	s := redisNode(t, rs.Addr, "--decision-log-sample", "1", "--decision-log-stream-maxlen", fmt.Sprint(maxLen),
		"--decision-log-stream-key", key, "--store-timeout", "50ms", "--redis-timeout", "200ms", "--redis-dial-timeout", "200ms")
	var last string
	for i := range n {
		last = s.decide(fmt.Sprintf(`{"customer_id":"c-%d","channel":"web","limit":2}`, i)).DecisionID
	}
	waitUntil(t, 10*time.Second, "every decision in the stream", func() bool {
		v, _ := metricValue(t, s, "nextbest_decision_log_stream_sent_total")
		return v == n
	})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer c.Close()
	ctx := context.Background()
	length, err := c.XLen(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole nodes (100 entries by default): at least
	// maxLen are kept, at most a node more.
	if length < maxLen || length > maxLen+100 {
		t.Errorf("XLEN %s = %d after %d decisions, want about %d", key, length, n, maxLen)
	}
	msgs, err := c.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XREVRANGE: %v %v", msgs, err)
	}
	var e loggedDecision
	if err := json.Unmarshal([]byte(fmt.Sprint(msgs[0].Values["entry"])), &e); err != nil {
		t.Fatalf("the stream's last entry: %v in %v", err, msgs[0].Values)
	}
	if e.ID != last || e.Channel != "web" || len(e.Offers) == 0 {
		t.Errorf("the stream's last entry is %+v, want decision %s", e, last)
	}

	rs.Stop()
	const down = 30
	for i := range down {
		status, body := postDecide(s.url, fmt.Sprintf(`{"customer_id":"c-%d","channel":"web"}`, i))
		if status != 200 {
			t.Fatalf("decision %d with Redis down: %d %s, want an answer", i, status, body)
		}
	}
	waitUntil(t, 20*time.Second, "the entries counted failed", func() bool {
		v, _ := metricValue(t, s, "nextbest_decision_log_stream_failed_total")
		return v >= down
	})
	if v, _ := metricValue(t, s, "nextbest_decision_log_stream_sent_total"); v != n {
		t.Errorf("stream sent %v with Redis down, want still %d", v, n)
	}
	if v, _ := metricValue(t, s, "nextbest_decision_log_written_total"); v < n+down {
		t.Errorf("local log wrote %v, want every decision (%d): the stream's failure is not the log's", v, n+down)
	}
	if !strings.Contains(s.logs.String(), "decision log stream: entries not added") {
		t.Errorf("no log line for the stream's failure:\n%s", s.logs)
	}
}

func TestStreamKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8080", "nb:decisions:host-a:8080"},
		{"127.0.0.1:0", "nb:decisions:host-a"},
		{":9000", "nb:decisions:host-a:9000"},
		{"bad", "nb:decisions:host-a"},
	}
	for _, tt := range tests {
		if got := streamKey("nb:", "host-a", tt.addr); got != tt.want {
			t.Errorf("streamKey(%q): got %q, want %q", tt.addr, got, tt.want)
		}
	}
}
