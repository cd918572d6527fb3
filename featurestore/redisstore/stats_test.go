package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/redistest"
)

// TestStatsLayout checks what other tools may rely on: the key and field
// names, the expiry of hourly hashes, and that a field of an unknown
// metric is skipped while a malformed one is an error.
func TestStatsLayout(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c)
	ctx := context.Background()
	key := featurestore.StatKey{Offer: "o", Channel: "web", Key: "gold"}
	hourly := featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web"}
	err := s.AddStats(ctx, []featurestore.StatDelta{
		{Key: key, Counts: featurestore.Counts{Impressions: 2, Value: 1.5}},
		{Key: hourly, Counts: featurestore.Counts{Clicks: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	field := featurestore.EncodeStatKey(key) + "\x1f"
	learn, err := c.HGetAll(ctx, "nb:stats:learn").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(learn) != 2 || learn[field+"i"] != "2" || learn[field+"val"] != "1.5" {
		t.Errorf("nb:stats:learn = %q, want fields i=2 and val=1.5", learn)
	}
	tests := []struct {
		key string
		min time.Duration // -1: no expiry
	}{
		{"nb:stats:learn", -1},
		{"nb:stats:h:500000", 399 * 24 * time.Hour},
	}
	for _, tt := range tests {
		ttl, err := c.TTL(ctx, tt.key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if tt.min < 0 && ttl != -1 || tt.min >= 0 && ttl < tt.min {
			t.Errorf("TTL(%s) = %v, want %v", tt.key, ttl, tt.min)
		}
	}

	c.HSet(ctx, "nb:stats:learn", field+"future-metric", "7")
	got, err := s.LearnStats(ctx)
	if err != nil {
		t.Fatalf("LearnStats with an unknown metric: %v", err)
	}
	if want := (featurestore.Counts{Impressions: 2, Value: 1.5}); len(got) != 1 || got[key] != want {
		t.Errorf("LearnStats = %v, want %v", got, want)
	}
	for _, bad := range []struct{ field, val string }{
		{field + "c", "many"},
		{field + "val", "x"},
		{"no-separator", "1"},
		{"too\x1ffew\x1ffields\x1fc", "1"},
	} {
		c.HSet(ctx, "nb:stats:learn", bad.field, bad.val)
		if _, err := s.LearnStats(ctx); err == nil {
			t.Errorf("LearnStats with field %q = %q: no error", bad.field, bad.val)
		}
		c.HDel(ctx, "nb:stats:learn", bad.field)
	}
}

// TestStatsLayoutSegments: a hash field written before segments were
// counted (five key fields) reads as a cell of all traffic, beside a
// cell of a segment (six).
func TestStatsLayoutSegments(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c)
	ctx := context.Background()
	c.HSet(ctx, "nb:stats:h:500000", "o\x1fweb\x1f\x1f\x1f\x1fc", "3", "o\x1fweb\x1f\x1f\x1f\x1flapsed\x1fc", "2")
	if err := s.AddStats(ctx, []featurestore.StatDelta{{Key: featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web", Segment: "lapsed"}, Counts: featurestore.Counts{Clicks: 1}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.HourlyStats(ctx, 500000, 500000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[featurestore.StatKey]featurestore.Counts{
		{Hour: 500000, Offer: "o", Channel: "web"}:                    {Clicks: 3},
		{Hour: 500000, Offer: "o", Channel: "web", Segment: "lapsed"}: {Clicks: 3},
	}
	if len(got) != len(want) || got[featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web"}] != want[featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web"}] ||
		got[featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web", Segment: "lapsed"}] != want[featurestore.StatKey{Hour: 500000, Offer: "o", Channel: "web", Segment: "lapsed"}] {
		t.Errorf("HourlyStats = %v, want %v", got, want)
	}
}
