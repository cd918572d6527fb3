package nextbest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/rules"
)

// campaignService is a service as nextbest serve wires it (the embedded
// store behind the cache, the store as the customers' scanner) over
// testdata/campaign.yaml, with n customers: c-00000 on, every other one
// lapsed, every tenth not opted in to email.
func campaignService(t testing.TB, n int) (*Service, *embedded.Store) {
	t.Helper()
	cat, err := rules.LoadFile("testdata/campaign.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := cache.New(st, cache.Options{MaxCost: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var muts []featurestore.Mutation
	for i := range n {
		tier := "active"
		if i%2 == 0 {
			tier = "lapsed"
		}
		muts = append(muts, featurestore.AttrsMutation(customer(i), map[string]featurestore.Value{
			"tier": featurestore.String(tier), "email_opt_in": featurestore.Bool(i%10 != 0)}))
		if len(muts) == 5000 || i == n-1 {
			if _, err := st.Mutate(context.Background(), muts); err != nil {
				t.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	var ptr atomic.Pointer[rules.Catalog]
	ptr.Store(cat)
	svc, err := New(Options{Catalog: &ptr, Store: c, Cache: c, Customers: st, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

func customer(i int) string { return fmt.Sprintf("c-%05d", i) }

// sent is what a batch emitted: customer → the offers of its decision
// ("-" for none, with the suppression's reason when withheld).
type sent map[string]string

func runBatch(t *testing.T, svc *Service, r *BatchRequest) (sent, BatchSummary) {
	t.Helper()
	got := sent{}
	sum, err := svc.DecideBatch(context.Background(), r, func(d *Decision) error {
		if _, dup := got[d.CustomerID]; dup {
			t.Errorf("%s decided twice", d.CustomerID)
		}
		v := "-"
		if len(d.Result.Offers) > 0 {
			v = d.Result.Offers[0].Offer.ID
		} else if d.Result.Suppressed.Reason != "" {
			v = "-" + string(d.Result.Suppressed.Reason)
		}
		got[d.CustomerID] = v
		return nil
	})
	if err != nil {
		t.Fatalf("DecideBatch: %v", err)
	}
	return got, sum
}

// TestDecideBatchSegment: a campaign over a segment decides each stored
// customer in it, once, through the contact policy: consent refuses
// some, the website's impressions cap others, and the impressions it
// records make a second run send nothing new.
func TestDecideBatchSegment(t *testing.T) {
	const n = 200
	svc, _ := campaignService(t, n)
	ctx := context.Background()
	// The website showed the win-back to c-00002 and c-00004 this
	// morning: its cap counts every channel.
	for _, id := range []string{customer(2), customer(4)} {
		var d Decision
		if err := svc.Decide(ctx, &Request{CustomerID: id, Channel: "web", Limit: 1}, &d); err != nil {
			t.Fatal(err)
		}
		ev := []featurestore.Event{{CustomerID: id, Type: "impression", OfferID: "winback", Channel: "web", DecisionID: d.ID.String(), Time: testNow.Add(-time.Hour)}}
		if _, err := svc.ApplyEvents(svc.Catalog(), ev, testNow, true); err != nil {
			t.Fatal(err)
		}
	}
	got, sum := runBatch(t, svc, &BatchRequest{Channel: "email", Segment: "lapsed", PageSize: 7})
	if len(got) != n/2 {
		t.Fatalf("decided %d customers, want the %d lapsed", len(got), n/2)
	}
	for i := 0; i < n; i += 2 {
		want := "winback"
		switch {
		case i%10 == 0:
			want = "-channel_ineligible"
		case i == 2 || i == 4:
			want = "-" // capped by the website's impression: the fallback, no default set
		}
		if g := got[customer(i)]; g != want {
			t.Errorf("%s: %q, want %q", customer(i), g, want)
		}
	}
	wantSum := BatchSummary{Scanned: n, Decided: n / 2, Offered: n/2 - n/10 - 2, Fallback: 2,
		Suppressed: map[decision.Reason]int{decision.ChannelIneligible: n / 10}, Done: true, Last: customer(n - 2)}
	if !summaryEqual(sum, wantSum) {
		t.Errorf("summary %+v, want %+v", sum, wantSum)
	}

	// The same campaign again: every customer emailed is at the
	// channel's contact limit, the capped ones still capped.
	again, sum := runBatch(t, svc, &BatchRequest{Channel: "email", Segment: "lapsed"})
	for id, g := range got {
		want := g
		if g == "winback" {
			want = "-contact_limit"
		}
		if again[id] != want {
			t.Errorf("second run: %s: %q, want %q", id, again[id], want)
		}
	}
	if sum.Offered != 0 {
		t.Errorf("second run sent %d offers, want none", sum.Offered)
	}
}

func summaryEqual(a, b BatchSummary) bool {
	return maps.Equal(a.Suppressed, b.Suppressed) && cmp.Equal(a, b, cmpopts.IgnoreFields(BatchSummary{}, "Suppressed"))
}

// TestDecideBatchResume: a batch stopped after a page, or inside one,
// resumes from its summary's cursor after its last customer, and the
// parts add up to the whole segment, each customer once.
func TestDecideBatchResume(t *testing.T) {
	const n = 100
	svc, _ := campaignService(t, n)
	all := sent{}
	r := BatchRequest{Channel: "email", Segment: "lapsed", PageSize: 10, MaxPages: 2}
	for parts := 0; ; parts++ {
		if parts > n {
			t.Fatal("no end")
		}
		got, sum := runBatch(t, svc, &r)
		for id, v := range got {
			if _, dup := all[id]; dup {
				t.Errorf("%s decided again after resuming", id)
			}
			all[id] = v
		}
		if sum.Done {
			break
		}
		r.Cursor, r.After = sum.Cursor, sum.Last
	}
	if len(all) != n/2 {
		t.Errorf("resumed parts decided %d customers, want %d", len(all), n/2)
	}

	// Stopped inside a page (the client went away after 3 decisions):
	// resumed after the last one emitted.
	svc, _ = campaignService(t, n)
	r = BatchRequest{Channel: "email", Segment: "lapsed", PageSize: 10}
	var first []string
	stop := errors.New("client gone")
	sum, err := svc.DecideBatch(context.Background(), &r, func(d *Decision) error {
		first = append(first, d.CustomerID)
		if len(first) == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || sum.Last != first[2] || sum.Done || sum.Cursor != "" {
		t.Fatalf("stopped batch: %v, last %q, cursor %q; want the emit error, last %q, the first page's cursor", err, sum.Last, sum.Cursor, first[2])
	}
	r.Cursor, r.After = sum.Cursor, sum.Last
	rest, _ := runBatch(t, svc, &r)
	if len(rest) != n/2-3 || slices.ContainsFunc(first, func(id string) bool { _, ok := rest[id]; return ok }) {
		t.Errorf("resumed: %d customers (want %d), first three among them: %v", len(rest), n/2-3, first)
	}
}

// TestDecideBatchList decides a list of customers in order, unknown ones
// from the schema's defaults, and needs no scan.
func TestDecideBatchList(t *testing.T) {
	svc, _ := campaignService(t, 10)
	svc.customers = nil
	var order []string
	ids := []string{customer(3), "nobody", customer(1)}
	sum, err := svc.DecideBatch(context.Background(), &BatchRequest{Channel: "email", CustomerIDs: ids}, func(d *Decision) error {
		order = append(order, d.CustomerID)
		return nil
	})
	if err != nil || !slices.Equal(order, ids) {
		t.Fatalf("DecideBatch = %v, decided %v; want %v in order", err, order, ids)
	}
	if sum.Offered != 2 || sum.Suppressed[decision.ChannelIneligible] != 1 {
		t.Errorf("summary %+v: want 2 offered, the unknown customer ineligible (no consent by default)", sum)
	}
}

func TestDecideBatchRefusals(t *testing.T) {
	svc, _ := campaignService(t, 1)
	noScan, _ := campaignService(t, 1)
	noScan.customers = nil
	tests := []struct {
		name string
		svc  *Service
		r    BatchRequest
		want string // the error
	}{
		{"neither", svc, BatchRequest{Channel: "email"}, "customer_ids, segment: exactly one of them is required"},
		{"both", svc, BatchRequest{Channel: "email", Segment: "lapsed", CustomerIDs: []string{"c"}}, "customer_ids, segment: exactly one of them is required"},
		{"unknown segment", svc, BatchRequest{Channel: "email", Segment: "lost"}, `segment: "lost" is not one of lapsed`},
		{"unknown channel", svc, BatchRequest{Channel: "emial", Segment: "lapsed"}, `channel: "emial" is not one of web, email`},
		{"cursor of a list", svc, BatchRequest{Channel: "email", CustomerIDs: []string{"c"}, Cursor: "x"}, "cursor, after, max_pages: resume a segment's scan; a list of customer_ids has none"},
		{"no scan", noScan, BatchRequest{Channel: "email", Segment: "lapsed"}, ErrNoScan.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.svc.DecideBatch(context.Background(), &tt.r, func(*Decision) error {
				t.Error("decided")
				return nil
			})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
			if cerr := tt.svc.CheckBatch(&tt.r); cerr == nil || cerr.Error() != tt.want {
				t.Errorf("CheckBatch: %v, want %s", cerr, tt.want)
			}
		})
	}
}

// TestDecideBatchCancelled: a cancelled context stops the batch.
func TestDecideBatchCancelled(t *testing.T) {
	svc, _ := campaignService(t, 50)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := svc.DecideBatch(ctx, &BatchRequest{Channel: "email", Segment: "lapsed", PageSize: 5}, func(*Decision) error {
		if n++; n == 4 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 4 {
		t.Errorf("cancelled after 4: %v after %d decisions, want context.Canceled after 4", err, n)
	}
}

// BenchmarkDecideBatch measures a campaign over a segment of 100,000
// stored customers (every one in it) on the embedded store behind the
// cache, as nextbest serve runs it: the scan, the read of every record,
// the decision and the impression it records. One iteration is a whole
// batch; decisions/s and the CPU per decision are reported. Run with
// -benchtime=1x (docs/benchmarks.md, issue 13).
func BenchmarkDecideBatch(b *testing.B) {
	const n = 100_000
	svc, _ := campaignService(b, 2*n) // every other customer lapsed
	b.ReportAllocs()
	b.ResetTimer()
	decided := 0
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		// A second run would find every customer at the channel's
		// contact limit: measure one (-benchtime=1x).
		sum, err := svc.DecideBatch(context.Background(), &BatchRequest{Channel: "email", Segment: "lapsed"}, func(*Decision) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		decided += sum.Decided
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(decided)/b.Elapsed().Seconds(), "decisions/s")
	if cpu > 0 {
		// The process's CPU per decision (every goroutine: pebble's,
		// the collector's), which the machine's other load does not
		// change as it changes wall time.
		b.ReportMetric(float64(cpu.Microseconds())/float64(decided), "cpu-µs/decision")
	}
}

// TestDecideBatchAlias: an id merged into another customer is decided as
// that customer (its caps, its impressions), and a segment scan decides
// the customer once, under their own id.
func TestDecideBatchAlias(t *testing.T) {
	svc, _ := campaignService(t, 10)
	ctx := context.Background()
	if _, err := svc.Merge(ctx, customer(2), customer(4)); err != nil {
		t.Fatal(err)
	}
	got, _ := runBatch(t, svc, &BatchRequest{Channel: "email", Segment: "lapsed"})
	if _, ok := got[customer(4)]; ok || got[customer(2)] != "winback" {
		t.Fatalf("segment after the merge: %v; want %s decided once (winback) and %s not at all", got, customer(2), customer(4))
	}
	// The campaign's impression for c-00002 caps the alias too.
	got, _ = runBatch(t, svc, &BatchRequest{Channel: "email", CustomerIDs: []string{customer(4)}})
	if got[customer(4)] == "winback" {
		t.Errorf("the alias of a customer just sent the win-back got it again: %v", got)
	}
	// A list naming one person twice (an id, and an id merged into it)
	// decides them once.
	var ids []string
	sum, err := svc.DecideBatch(ctx, &BatchRequest{Channel: "email", CustomerIDs: []string{customer(6), customer(4), customer(2), customer(6)}}, func(d *Decision) error {
		ids = append(ids, d.CustomerID)
		return nil
	})
	if err != nil || !slices.Equal(ids, []string{customer(6), customer(4)}) || sum.Duplicates != 2 || sum.Scanned != 4 {
		t.Errorf("list with duplicates: decided %v, summary %+v, %v; want c-00006 and c-00004 decided, 2 duplicates of 4", ids, sum, err)
	}
}
