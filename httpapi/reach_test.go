package httpapi

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/outcomes"
	"github.com/nextbest/nextbest/rules"
)

// reachStats is fakeStats that also keeps reach sketches, in memory.
type reachStats struct {
	*fakeStats
	rmu   sync.Mutex
	reach map[featurestore.ReachKey]*featurestore.Sketch
}

func newReachStats() *reachStats {
	return &reachStats{fakeStats: newFakeStats(), reach: map[featurestore.ReachKey]*featurestore.Sketch{}}
}

func (f *reachStats) AddReach(_ context.Context, deltas []featurestore.ReachDelta) error {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	for _, d := range deltas {
		s := f.reach[d.Key]
		if s == nil {
			s = new(featurestore.Sketch)
			f.reach[d.Key] = s
		}
		s.Merge(d.Sketch)
	}
	return nil
}

func (f *reachStats) Reach(_ context.Context, from, to int64) (map[featurestore.ReachKey]*featurestore.Sketch, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	out := map[featurestore.ReachKey]*featurestore.Sketch{}
	for k, s := range f.reach {
		if k.Hour < from || k.Hour > to {
			continue
		}
		k.Hour = 0
		if out[k] == nil {
			out[k] = new(featurestore.Sketch)
		}
		out[k].Merge(s)
	}
	return out, nil
}

// TestStatsReach: decisions count their customers once per channel (and
// per variant on a channel) through the recorder, and GET /v1/stats
// answers each channel's reach with its relative error.
func TestStatsReach(t *testing.T) {
	c, err := rules.Load("stats.yaml", []byte(statsCatalog))
	if err != nil {
		t.Fatal(err)
	}
	var p atomic.Pointer[rules.Catalog]
	p.Store(c)
	store := newReachStats()
	rec := outcomes.New(store, outcomes.Options{})
	s := newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Catalog = &p
		o.Stats = rec
		o.StatsStore = store
	})
	for _, body := range []string{
		`{"customer_id":"c1","channel":"web"}`, `{"customer_id":"c1","channel":"web"}`, `{"customer_id":"c1","channel":"app"}`,
		`{"customer_id":"c2","channel":"web"}`, `{"customer_id":"c3","channel":"web"}`,
	} {
		if r := do(s, "POST", "/v1/decide", body); r.status != 200 {
			t.Fatalf("decide %s: %d %s", body, r.status, r.body)
		}
	}
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := do(s, "GET", "/v1/stats", "")
	if r.status != 200 {
		t.Fatalf("GET /v1/stats: %d %s", r.status, r.body)
	}
	var body struct {
		ReachError *float64 `json:"reach_relative_error"`
		Channels   []struct {
			Channel   string
			Reach     *int64
			Decisions int64
		}
		Experiments []struct {
			Channels []struct {
				Variant, Channel string
				Reach            *int64
				Decisions        int64
			}
		}
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if body.ReachError == nil || *body.ReachError != featurestore.ReachRelativeError {
		t.Errorf("reach_relative_error = %v, want %v", body.ReachError, featurestore.ReachRelativeError)
	}
	want := map[string][2]int64{"web": {3, 4}, "app": {1, 1}} // reach, decisions
	for _, ch := range body.Channels {
		if ch.Reach == nil || *ch.Reach != want[ch.Channel][0] || ch.Decisions != want[ch.Channel][1] {
			t.Errorf("channel %s: reach %v, decisions %d; want %v", ch.Channel, ch.Reach, ch.Decisions, want[ch.Channel])
		}
	}
	var reach, decisions int64
	for _, vc := range body.Experiments[0].Channels {
		if vc.Channel == "web" && vc.Reach != nil {
			reach += *vc.Reach
			decisions += vc.Decisions
		}
	}
	if reach != 3 {
		t.Errorf("web's reach summed over variants = %d, want 3 (each customer is in one variant)", reach)
	}
}
