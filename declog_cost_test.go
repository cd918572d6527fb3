package nextbest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/internal/catalogtest"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// BenchmarkDecideLoggedBench decides as `go run ./bench --mode declog`
// does, in process: the generated catalog (100 offers, 20 segments),
// 5,000 customers of the generated population cached, the five channels
// in turn, limit 3; with the decision log off and on (sample 1, the real
// log writing to a temporary directory). CPU-µs/op counts the process's
// CPU from the first decision until the writer has drained, so the
// writer's work and the collector's are in it.
func BenchmarkDecideLoggedBench(b *testing.B) {
	const customers = 5000
	cat, err := rules.Load("generated.yaml", catalogtest.Generate(catalogtest.Options{Offers: 100, Segments: 20}))
	if err != nil {
		b.Fatal(err)
	}
	now := catalogtest.Epoch
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			back := &mapBackend{recs: map[string]*featurestore.Record{}, locks: featurestore.NewLocks()}
			p := catalogtest.Population{}
			for i := range customers {
				cust := p.Customer(i)
				back.recs[cust.ID] = cust.Record(cat.Schema, now)
			}
			c, err := cache.New(back, cache.Options{MaxCost: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			var ptr atomic.Pointer[rules.Catalog]
			ptr.Store(cat)
			opts := Options{Catalog: &ptr, Store: c, Cache: c}
			var l *decisionlog.Log
			if on {
				if l, err = decisionlog.Open(decisionlog.Options{Dir: b.TempDir()}); err != nil {
					b.Fatal(err)
				}
				opts.DecisionLog, opts.DecisionLogSample = l, 1
			}
			svc, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			if l != nil {
				go func() { _ = l.Run(ctx); close(done) }()
			} else {
				close(done)
			}
			ids := make([]string, customers)
			for i := range ids {
				ids[i] = p.Customer(i).ID
			}
			var d Decision
			req := Request{Limit: 3, Now: now}
			// Warm the cache: every customer read once.
			for i := range customers {
				req.CustomerID, req.Channel = ids[i], "web"
				d.Reset()
				if err := svc.Decide(ctx, &req, &d); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				req.CustomerID = ids[(i*7919)%customers]
				req.Channel = catalogtest.Channels[i%len(catalogtest.Channels)]
				i++
				d.Reset()
				if err := svc.Decide(ctx, &req, &d); err != nil {
					b.Fatal(err)
				}
			}
			cancel()
			<-done
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "CPU-µs/op")
			if l != nil {
				b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
			}
		})
	}
}
