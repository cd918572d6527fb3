package httpapi

import (
	"bytes"
	"io"
	"sync"
)

// metricHelp is the HELP text of every metric family nextbest exports,
// whichever package registers it: the one place that says what a family
// means. VictoriaMetrics/metrics (v1.45) writes "# HELP name" with no text
// and has no way to attach one, so WriteMetrics fills the text in from
// here. A family missing here is exported with an empty HELP, which
// promtool reports; TestMetricHelpCoversSource fails naming it (any string
// literal of the module starting with "nextbest_" is a family name) and
// TestMetricsHelp fails on the scrape. Add one line per family, a plain
// sentence without newlines or backslashes.
var metricHelp = map[string]string{
	// httpapi: requests and decisions.
	"nextbest_requests_total":                         "Responses by route and status class.",
	"nextbest_request_duration_seconds":               "Request latency by route; decisions answered 200 also by channel.",
	"nextbest_decisions_total":                        "Decisions answered, degraded ones included.",
	"nextbest_decisions_degraded_total":               "Decisions answered from the catalog's defaults without the customer's stored features, by cause (deadline: the store read passed --store-timeout; error: the store failed; overload: shed by admission control).",
	"nextbest_offer_decisions_total":                  "Offers returned by decisions, by offer and channel.",
	"nextbest_events_accepted_total":                  "Events acknowledged with 202 (durably applied).",
	"nextbest_events_ignored_total":                   "Events accepted whose type no feature, outcome or experiment of the catalog in force reads, by type (the first 64 types seen; later ones under type _other).",
	"nextbest_event_requests_store_unavailable_total": "Event requests refused with 503 because the feature store failed.",
	"nextbest_requests_unauthorized_total":            "Requests refused with 401: no API key, or an unknown one.",
	"nextbest_requests_forbidden_total":               "Requests refused with 403: a key without the route's scope, or a public key from another origin.",
	"nextbest_requests_rate_limited_total":            "Requests refused with 429 by a key's rate limit.",
	"nextbest_requests_client_rate_limited_total":     "Requests of a public key refused with 429 because their client (customer or address) was over its own rate; also counted in nextbest_requests_rate_limited_total.",
	"nextbest_public_client_buckets":                  "Per-client rate-limit buckets held, over all public keys.",
	"nextbest_public_client_buckets_evicted_total":    "Per-client buckets forgotten to stay within client_buckets; steady growth at the bound means the bound is too small.",
	"nextbest_events_duplicate_total":                 "Events acknowledged but not applied: retries of an event_id applied within the dedupe window.",
	"nextbest_import_customers_total":                 "Customers written by bulk imports (POST /v1/customers:import), each line whole.",
	"nextbest_import_lines_skipped_total":             "Lines of bulk imports refused as bad (skipped, or the one that ended an import with on_error=fail).",
	"nextbest_store_read_duration_seconds":            "Latency of the feature store reads behind decisions (cache misses).",
	"nextbest_store_write_duration_seconds":           "Latency of feature store writes of events, profiles and impressions.",
	"nextbest_requests_shed_total":                    "Requests shed by admission control, by route class (decide: answered with the channel's fallback, degraded for overload; events, other: 503 with Retry-After).",
	"nextbest_requests_in_flight":                     "Requests being served per admission class (slots in use).",
	"nextbest_scheduler_delay_seconds":                "Median wait of runnable goroutines for a CPU over the last 10 ms: the delay admission control counts before a request is read.",
	"nextbest_store_writes_refused_total":             "Writes refused because they could not be made durable: disk_full (data volume below --min-free-disk or full) or write_error (a write-ahead log write failed; restart needed).",
	"nextbest_store_disk_free_bytes":                  "Bytes available on the embedded store's data volume (statfs, at most 100 ms old).",
	"nextbest_store_disk_min_free_bytes":              "Free-space floor of the data volume (--min-free-disk) below which writes are refused, in bytes.",
	"nextbest_store_errors_total":                     "Feature store reads behind decisions and writes of events that failed or timed out.",

	// cmd/nextbest: cache, catalogs, outcome statistics.
	"nextbest_cache_hit_ratio":               "Share of customer record lookups answered from the in-memory cache.",
	"nextbest_cache_entries":                 "Customer records held in the in-memory cache.",
	"nextbest_gc_releases_total":             "Times the server returned free heap memory to the system once quiet after a load (docs/operations.md, Memory).",
	"nextbest_gc_percent":                    "GOGC the server set from its live heap (docs/operations.md, Memory); 100 when the operator's GOGC is in force.",
	"nextbest_catalog_info":                  "Catalog versions this process has run: 1 for the version in force, 0 for the others.",
	"nextbest_catalog_reload_failures_total": "Catalog uploads and file reloads rejected.",
	"nextbest_catalog_file_stale":            "1 while the catalog file on disk was rejected and an earlier catalog version serves in its place; 0 otherwise.",
	"nextbest_catalog_decide_seconds":        "Median decision time of the catalog in force on its slowest channel, timed against synthetic customers once per catalog; compare with --catalog-decide-budget.",
	"nextbest_stats_dropped_total":           "Outcome statistics deltas dropped: invalid, or of a new cell while the pending bound was full during a long store outage.",
	"nextbest_stats_flush_failures_total":    "Flushes of outcome statistics to the store that failed; their cells stay pending and are retried.",
	"nextbest_stats_pending_cells":           "Cells of outcome statistics not yet confirmed by the store (pending or in flight).",
	// Issue 14: the decision log.
	"nextbest_decision_log_dropped_total":        "Sampled decisions not written to the decision log: its queue was full (--decision-log-buffer), or the entry could not be encoded or written.",
	"nextbest_decision_log_written_total":        "Decisions written to the decision log.",
	"nextbest_decision_log_stream_sent_total":    "Decision log entries the node's Redis Stream acknowledged (XADD).",
	"nextbest_decision_log_stream_failed_total":  "Decision log entries whose XADD to the node's Redis Stream failed or timed out (they stay in the local log).",
	"nextbest_decision_log_stream_dropped_total": "Decision log entries not sent to the node's Redis Stream: its queue was full (Redis slower than the decisions).",
}

var metricsBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeWithHelp copies the Prometheus text exposition text to w, filling
// each empty "# HELP name" line with the family's text from metricHelp.
func writeWithHelp(w io.Writer, text []byte) {
	const help = "# HELP "
	out := metricsBufs.Get().(*bytes.Buffer)
	defer metricsBufs.Put(out)
	out.Reset()
	for len(text) > 0 {
		line, rest, _ := bytes.Cut(text, []byte{'\n'})
		text = rest
		out.Write(line)
		if name, ok := bytes.CutPrefix(line, []byte(help)); ok && bytes.IndexByte(name, ' ') < 0 {
			if h := metricHelp[string(name)]; h != "" {
				out.WriteByte(' ')
				out.WriteString(h)
			}
		}
		out.WriteByte('\n')
	}
	w.Write(out.Bytes())
}
