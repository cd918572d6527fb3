package featurestore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// TestDecidedSegments: a decision's segments are recorded per channel,
// written only when they change, and read back by the record and by a
// View of its packed form alike.
func TestDecidedSegments(t *testing.T) {
	steps := []struct {
		name     string
		channel  string
		segments []string
		changed  bool
		web, sms []string // what the record then holds
	}{
		{"none where none is known", "web", nil, false, nil, nil},
		{"first segments", "web", []string{"lapsed"}, true, []string{"lapsed"}, nil},
		{"the same again", "web", []string{"lapsed"}, false, []string{"lapsed"}, nil},
		{"another channel", "sms", []string{"lapsed", "vip"}, true, []string{"lapsed"}, []string{"lapsed", "vip"}},
		{"out of every segment", "web", nil, true, nil, []string{"lapsed", "vip"}},
		{"one more", "sms", []string{"lapsed", "vip", "new"}, true, nil, []string{"lapsed", "vip", "new"}},
		{"one fewer", "sms", []string{"vip", "new"}, true, nil, []string{"vip", "new"}},
	}
	s := testSchema(t)
	r := &featurestore.Record{}
	var v featurestore.View
	for i, st := range steps {
		at := now.Add(time.Duration(i) * time.Minute)
		if got := r.SetDecidedSegments(st.channel, st.segments, at); got != st.changed {
			t.Errorf("%s: SetDecidedSegments = %v, want %v", st.name, got, st.changed)
		}
		p := r.Pack()
		got, err := p.Record()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for _, c := range []struct {
			channel string
			want    []string
		}{{"web", st.web}, {"sms", st.sms}, {"app", nil}} {
			for _, rec := range []*featurestore.Record{r, got} {
				if segs := rec.DecidedSegments(c.channel); !slices.Equal(segs, c.want) {
					t.Errorf("%s: DecidedSegments(%s) = %q, want %q", st.name, c.channel, segs, c.want)
				}
			}
			v.Read(p, s, now)
			if !v.DecidedSegmentsAre(c.channel, c.want) {
				t.Errorf("%s: packed View: DecidedSegmentsAre(%s, %q) = false", st.name, c.channel, c.want)
			}
			for _, other := range [][]string{append(slices.Clone(c.want), "x"), {"x"}, nil} {
				if !slices.Equal(other, c.want) && v.DecidedSegmentsAre(c.channel, other) {
					t.Errorf("%s: packed View: DecidedSegmentsAre(%s, %q) = true, holds %q", st.name, c.channel, other, c.want)
				}
			}
			v.ReadRecord(got, s, now)
			if !v.DecidedSegmentsAre(c.channel, c.want) {
				t.Errorf("%s: record View: DecidedSegmentsAre(%s, %q) = false", st.name, c.channel, c.want)
			}
		}
	}
	// Without decision segments, a record is written as before they
	// existed.
	if b := featurestore.AppendRecord(nil, &featurestore.Record{}); b[0] != 4 {
		t.Errorf("a record without exposures or decision segments is version %d, want 4", b[0])
	}
	exposed := &featurestore.Record{}
	exposed.Expose("x", "a", now)
	if b := featurestore.AppendRecord(nil, exposed); b[0] != 5 {
		t.Errorf("a record with exposures and no decision segments is version %d, want 5", b[0])
	}
	if b := featurestore.AppendRecord(nil, r); b[0] != 6 {
		t.Errorf("a record with decision segments is version %d, want 6", b[0])
	}
	c := r.Clone()
	c.Decided[1].Segments[0] = "changed" // sms
	if got := r.DecidedSegments("sms"); !slices.Equal(got, []string{"vip", "new"}) {
		t.Errorf("a clone shares the record's segments: %q", got)
	}
	var empty featurestore.View
	if !empty.DecidedSegmentsAre("web", nil) || empty.DecidedSegmentsAre("web", []string{"a"}) {
		t.Error("a View of no record holds segments")
	}
}

// TestDecidedSegmentsViewAllocs: a decision's check of its segments
// against its record's allocates nothing.
func TestDecidedSegmentsViewAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a plain build")
	}
	s := testSchema(t)
	r := &featurestore.Record{}
	r.SetDecidedSegments("email", []string{"vip"}, now)
	r.SetDecidedSegments("web", []string{"lapsed", "vip"}, now)
	var none featurestore.Record // a record without decision segments (version 4)
	none.SetAttr("tier", featurestore.String("gold"))
	var v featurestore.View
	want := []string{"lapsed", "vip"}
	for _, p := range []featurestore.Packed{r.Pack(), none.Pack()} {
		if got := testing.AllocsPerRun(1000, func() {
			v.Read(p, s, now)
			if v.DecidedSegmentsAre("web", want) == (p[0] != 6) {
				t.Fatalf("record of version %d: segments found %v", p[0], p[0] != 6)
			}
		}); got != 0 {
			t.Errorf("record of version %d: allocs per Read and DecidedSegmentsAre: %v, want 0", p[0], got)
		}
	}
}

// TestMergeDecidedSegments: a merge keeps, per channel, the newer
// decision's segments.
func TestMergeDecidedSegments(t *testing.T) {
	s := testSchema(t)
	r, from := &featurestore.Record{}, &featurestore.Record{}
	r.SetDecidedSegments("web", []string{"a"}, now)
	r.SetDecidedSegments("sms", []string{"a"}, now)
	from.SetDecidedSegments("web", []string{"b"}, now.Add(time.Hour))
	from.SetDecidedSegments("sms", []string{"b"}, now.Add(-time.Hour))
	from.SetDecidedSegments("app", []string{"c"}, now)
	if !r.Merge(s, from, now) {
		t.Fatal("Merge reported no change")
	}
	for ch, want := range map[string][]string{"web": {"b"}, "sms": {"a"}, "app": {"c"}} {
		if got := r.DecidedSegments(ch); !slices.Equal(got, want) {
			t.Errorf("%s: %q after the merge, want %q", ch, got, want)
		}
	}
	from.Decided[0].Segments[0] = "changed"
	if got := r.DecidedSegments("web"); got[0] != "b" {
		t.Errorf("the merge shares the merged record's segments: %q", got)
	}
}
