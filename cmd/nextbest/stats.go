package main

import (
	"io"

	"github.com/VictoriaMetrics/metrics"

	"github.com/nextbest/nextbest/featurestore/outcomes"
)

// observeStats exports what the outcome statistics recorder could not get
// into the store: deltas it dropped, flushes that failed (retried), and
// the cells still waiting. Statistics are best effort, so none of these
// fails a request; they are how an operator sees statistics going astray
// during a store outage.
func observeStats(set *metrics.Set, r *outcomes.Recorder) {
	set.NewGauge("nextbest_stats_pending_cells", func() float64 { return float64(r.Pending()) })
	set.RegisterMetricsWriter(func(w io.Writer) {
		metrics.WriteCounterUint64(w, "nextbest_stats_dropped_total", uint64(r.Dropped()))
		metrics.WriteCounterUint64(w, "nextbest_stats_flush_failures_total", uint64(r.FlushFailures()))
	})
}
