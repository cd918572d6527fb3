package redisstore_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/storetest"
	"github.com/nextbest/nextbest/internal/redistest"
)

func TestCorruptReach(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c)
	storetest.RunCorruptReach(t, s, func(t *testing.T, k featurestore.ReachKey, raw []byte) {
		// The layout reach.go documents: <prefix>stats:reach:<hour>.
		key := "nb:stats:reach:" + strconv.FormatInt(k.Hour, 10)
		if err := c.HSet(context.Background(), key, featurestore.EncodeReachKey(k), raw).Err(); err != nil {
			t.Fatal(err)
		}
	})
}
