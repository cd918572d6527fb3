// Package decisionlog is the decision log: an append-only, rotated,
// bounded record of the decisions a node made, one JSON object per line
// in segment files under a directory, with what replay and off-policy
// evaluation need of each (the offers returned, their scores and the
// probability each was chosen with), and the outcomes (clicks,
// conversions, dismisses) of the decisions it logged, as outcome lines
// among them (outcome.go).
//
// A Log is written by one goroutine (Run) from a bounded channel, which
// it drains every DrainEvery (10ms) or when half full: Append
// never blocks, and an entry that finds the channel full is dropped and
// counted (Dropped). Entries are visible to Lookup once written and
// flushed, which the writer does every FlushEvery (100ms). A Log is
// safe for concurrent use; an Entry passed to Append belongs to the Log.
// Entries and Read depend on nothing but the standard library, so tools
// read a stopped node's log without the service.
//
// Why plain segment files of JSON lines rather than pebble or a binary
// form: the log is written once and read in order (replay, evaluation),
// so an LSM's sorted keys and compactions buy nothing and cost write
// amplification on the node's store volume; dropping a whole segment is
// the cheapest retention there is; and JSON lines are read by jq, grep,
// pandas and every data tool, which is where an analyst takes a log.
// The price is size (about 3x a binary form) and the encoding in the
// writer goroutine, off the decision path.
package decisionlog
