package embedded

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

func TestCorruptReach(t *testing.T) {
	s := openTest(t, &testClock{t: time.Unix(0, 0)})
	storetest.RunCorruptReach(t, s, func(t *testing.T, k featurestore.ReachKey, raw []byte) {
		if err := s.db.Set(reachKey(nil, k), raw, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	})
}
