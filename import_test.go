package nextbest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// testLine is the line format of the tests' parser: the service checks
// what events mean whoever parses them (httpapi.ParseImportLine is the
// real parser, tested there).
type testLine struct {
	ID     string `json:"customer_id"`
	Tier   string `json:"tier"`
	Events []struct {
		ID      string `json:"event_id"`
		Type    string `json:"type"`
		Offer   string `json:"offer_id"`
		Channel string `json:"channel"`
	} `json:"events"`
}

func parseTestLine(line []byte, cat *rules.Catalog, now time.Time) (ImportLine, error) {
	var tl testLine
	if err := json.Unmarshal(line, &tl); err != nil {
		return ImportLine{}, errors.New("malformed JSON")
	}
	if tl.ID == "" {
		return ImportLine{}, errors.New("customer_id: is required")
	}
	l := ImportLine{CustomerID: tl.ID}
	if tl.Tier != "" {
		l.Attrs = map[string]featurestore.Value{"tier": featurestore.String(tl.Tier)}
	}
	for i, e := range tl.Events {
		ev := featurestore.Event{ID: e.ID, CustomerID: tl.ID, Type: e.Type, OfferID: e.Offer, Channel: e.Channel, Time: now.Add(-time.Hour)}
		if err := cat.Schema.CheckEvent(&ev); err != nil {
			return ImportLine{}, fmt.Errorf("events[%d]: %v", i, err)
		}
		l.Events = append(l.Events, ev)
	}
	return l, nil
}

func TestImport(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		failFast bool
		batch    int
		maxLine  int
		want     ImportResult // Errors compared by line and message
		wantErr  string       // the error Import returns, "" for none
		tiers    map[string]string
		carts    map[string]float64
	}{
		{
			name:  "profiles and events",
			input: `{"customer_id":"a","tier":"gold"}` + "\n" + `{"customer_id":"b","events":[{"type":"cart_add"},{"type":"cart_add"}]}` + "\n",
			want:  ImportResult{Lines: 2, Imported: 2, Events: 2},
			tiers: map[string]string{"a": "gold", "b": "none"},
			carts: map[string]float64{"a": 0, "b": 2},
		},
		{
			name:  "blank lines count, no newline at the end",
			input: "\n" + `{"customer_id":"a","tier":"gold"}` + "\n  \r\n" + `{"customer_id":"b","tier":"silver"}`,
			want:  ImportResult{Lines: 4, Imported: 2},
			tiers: map[string]string{"a": "gold", "b": "silver"},
		},
		{
			name: "bad lines skipped whole, with their numbers",
			input: `{"customer_id":"a","tier":"gold"}` + "\n" +
				`{"customer_id":"b","tier":"gold","events":[{"type":"cart_add"},{"type":"click","channel":"web"}]}` + "\n" +
				"not json\n" +
				`{"customer_id":"c","events":[{"type":"cart_add","offer_id":"x"}]}` + "\n" +
				`{"tier":"gold"}` + "\n" +
				`{"customer_id":"d","events":[{"type":"cart_add"}]}` + "\n",
			want: ImportResult{Lines: 6, Imported: 2, Skipped: 4, Events: 1, Errors: []ImportError{
				{Line: 2, Err: errors.New("events[1].offer_id: required for a click event")},
				{Line: 3, Err: errors.New("malformed JSON")},
				{Line: 4, Err: errors.New("events[0].offer_id: only outcome events (impression, click, conversion, dismiss) name an offer")},
				{Line: 5, Err: errors.New("customer_id: is required")},
			}},
			tiers: map[string]string{"a": "gold", "b": "none", "c": "none", "d": "none"},
			carts: map[string]float64{"b": 0, "d": 1},
		},
		{
			name: "fail fast writes the lines before the bad one",
			input: `{"customer_id":"a","tier":"gold"}` + "\n" +
				`{"customer_id":"b","tier":"silver"}` + "\n" +
				`{"customer_id":"c"` + "\n" +
				`{"customer_id":"d","tier":"gold"}` + "\n",
			failFast: true,
			want: ImportResult{Lines: 3, Imported: 2, Skipped: 1, Errors: []ImportError{
				{Line: 3, Err: errors.New("malformed JSON")},
			}},
			wantErr: "line 3: malformed JSON",
			tiers:   map[string]string{"a": "gold", "b": "silver", "c": "none", "d": "none"},
		},
		{
			name:    "a line too long is skipped, the next read",
			input:   `{"customer_id":"a","tier":"gold"}` + "\n" + `{"customer_id":"b","tier":"` + strings.Repeat("x", 100) + `"}` + "\n" + `{"customer_id":"c","tier":"gold"}` + "\n",
			maxLine: 64,
			want: ImportResult{Lines: 3, Imported: 2, Skipped: 1, Errors: []ImportError{
				{Line: 2, Err: errors.New("longer than 64 bytes")},
			}},
			tiers: map[string]string{"a": "gold", "b": "none", "c": "gold"},
		},
		{
			// Dedupe of event ids is the store's (storetest's Bulk case).
			name: "batches of one; one customer on two lines",
			input: `{"customer_id":"a","events":[{"type":"cart_add"}]}` + "\n" +
				`{"customer_id":"a","tier":"gold","events":[{"type":"cart_add"},{"type":"cart_add"}]}` + "\n",
			batch: 1,
			want:  ImportResult{Lines: 2, Imported: 2, Events: 3},
			tiers: map[string]string{"a": "gold"},
			carts: map[string]float64{"a": 3},
		},
	}
	for _, cached := range []bool{false, true} { // Mutate, MutateVisible
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/cached=%v", tt.name, cached), func(t *testing.T) {
				svc, store := newTestService(t, cached, nil)
				got, err := svc.Import(context.Background(), strings.NewReader(tt.input), ImportOptions{
					Parse: parseTestLine, FailFast: tt.failFast, BatchSize: tt.batch, MaxLineBytes: tt.maxLine,
				})
				if gotErr := errString(err); gotErr != tt.wantErr {
					t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
				}
				var ie *ImportError
				if tt.wantErr != "" && !errors.As(err, &ie) {
					t.Errorf("error %v is not an *ImportError", err)
				}
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return errString(a) == errString(b) })); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				cat := svc.catalog.Load()
				for id, tier := range tt.tiers {
					if r := store.recs[id]; r.Features(cat.Schema, testNow, nil)[mustLookup(t, cat, "tier")].Str != tier {
						t.Errorf("%s: tier = %v, want %s", id, r.Features(cat.Schema, testNow, nil)[mustLookup(t, cat, "tier")], tier)
					}
				}
				for id, n := range tt.carts {
					if got := store.recs[id].Features(cat.Schema, testNow, nil)[mustLookup(t, cat, "cart_items")].Num; got != n {
						t.Errorf("%s: cart_items = %v, want %v", id, got, n)
					}
				}
			})
		}
	}
}

func TestImportStoreFailure(t *testing.T) {
	for _, cached := range []bool{false, true} {
		svc, store := newTestService(t, cached, nil)
		store.err = errors.New("disk on fire")
		input := `{"customer_id":"a","tier":"gold"}` + "\n" + `{"customer_id":"b","tier":"gold"}` + "\n"
		res, err := svc.Import(context.Background(), strings.NewReader(input), ImportOptions{Parse: parseTestLine})
		if err == nil || !strings.Contains(err.Error(), "write lines 1 to 2: disk on fire") {
			t.Errorf("cached=%v: error = %v, want the store's, naming the lines", cached, err)
		}
		if res.Imported != 0 {
			t.Errorf("cached=%v: Imported = %d after a failed write, want 0", cached, res.Imported)
		}
	}
}

// TestImportSyncFailure: with a cache tier, lines are counted imported
// only once their sync returned.
func TestImportSyncFailure(t *testing.T) {
	svc, store := newTestService(t, false, nil)
	svc.cache = failingSync{cachingStore{store}}
	input := `{"customer_id":"a","tier":"gold"}` + "\n" + `{"customer_id":"b","tier":"gold"}` + "\n"
	res, err := svc.Import(context.Background(), strings.NewReader(input), ImportOptions{Parse: parseTestLine, BatchSize: 1})
	if err == nil || !strings.Contains(err.Error(), "fsync failed") {
		t.Errorf("error = %v, want the sync's", err)
	}
	if res.Imported != 0 {
		t.Errorf("Imported = %d, want 0: no line is known durable", res.Imported)
	}
}

type failingSync struct{ cachingStore }

func (f failingSync) MutateVisible(ctx context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, func() error, error) {
	recs, _, err := f.cachingStore.MutateVisible(ctx, muts)
	return recs, func() error { return errors.New("fsync failed") }, err
}

func TestImportWritten(t *testing.T) {
	svc, _ := newTestService(t, false, nil)
	var input strings.Builder
	for i := range 5 {
		fmt.Fprintf(&input, `{"customer_id":"c-%d","tier":"gold"}`+"\n", i)
	}
	var progress []int
	_, err := svc.Import(context.Background(), strings.NewReader(input.String()), ImportOptions{
		Parse: parseTestLine, BatchSize: 2, Written: func(r ImportResult) { progress = append(progress, r.Imported) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 4, 5}; !cmp.Equal(progress, want) {
		t.Errorf("Written saw %v imported, want %v (one call per batch)", progress, want)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mustLookup(t *testing.T, cat *rules.Catalog, name string) int {
	t.Helper()
	f, ok := cat.Schema.Lookup(name)
	if !ok {
		t.Fatalf("no feature %q", name)
	}
	return f.Index
}
