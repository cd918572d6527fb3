package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// RunCorruptReach checks what a ReachStore does with a stored sketch that
// is not one (featurestore.ErrCorruptSketch), for each kind of damage:
// inject writes raw bytes into a cell, as damage or another writer
// would. A write replaces the corrupt cell, writes the batch's other
// cells and reports ErrCorruptSketch; the next write of the cell merges
// as usual; a read skips a corrupt cell and returns the others with
// ErrCorruptSketch.
func RunCorruptReach(t *testing.T, st featurestore.ReachStore, inject func(t *testing.T, k featurestore.ReachKey, raw []byte)) {
	ctx := context.Background()
	outOfRange := make([]byte, featurestore.SketchRegisters)
	outOfRange[7] = featurestore.MaxSketchRank + 1
	for i, damage := range []struct {
		name string
		raw  []byte
	}{
		{"short", []byte("not a sketch")},
		{"register out of range", outOfRange},
	} {
		t.Run(damage.name, func(t *testing.T) {
			hour := int64(600000 + 10*i)
			bad := featurestore.ReachKey{Hour: hour, Channel: "web"}
			good := featurestore.ReachKey{Hour: hour, Channel: "app"}
			inject(t, bad, damage.raw)

			// A read skips the corrupt cell.
			got, err := st.Reach(ctx, hour, hour)
			if !errors.Is(err, featurestore.ErrCorruptSketch) || len(got) != 0 {
				t.Fatalf("Reach over a corrupt cell: %d cells, %v; want none and ErrCorruptSketch", len(got), err)
			}

			// A write replaces it and writes the others.
			err = st.AddReach(ctx, []featurestore.ReachDelta{
				{Key: bad, Sketch: sketchOf(1, 4)},
				{Key: good, Sketch: sketchOf(4, 5)},
			})
			if !errors.Is(err, featurestore.ErrCorruptSketch) {
				t.Fatalf("AddReach over a corrupt cell: %v, want ErrCorruptSketch", err)
			}
			got, err = st.Reach(ctx, hour, hour)
			if err != nil {
				t.Fatalf("Reach after the write: %v", err)
			}
			web, app := featurestore.ReachKey{Channel: "web"}, featurestore.ReachKey{Channel: "app"}
			if got[web] == nil || *got[web] != *sketchOf(1, 4) || got[app] == nil || *got[app] != *sketchOf(4, 5) {
				t.Fatalf("after the write: web %v, app %v; want the sketches written", got[web] != nil, got[app] != nil)
			}

			// The next write merges as usual.
			merged := sketchOf(1, 4)
			merged.Merge(sketchOf(5, 6))
			if err := st.AddReach(ctx, []featurestore.ReachDelta{{Key: bad, Sketch: sketchOf(5, 6)}}); err != nil {
				t.Fatalf("AddReach after the replacement: %v", err)
			}
			got, err = st.Reach(ctx, hour, hour)
			if err != nil || got[web] == nil || *got[web] != *merged {
				t.Fatalf("after a second write: %v, %v; want the merge of both writes", got[web] != nil, err)
			}
		})
	}
}
