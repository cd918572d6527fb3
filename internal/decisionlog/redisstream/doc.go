// Package redisstream sends the decision log to a Redis Stream: each
// entry a stream entry with one field, "entry", the entry's JSON (one
// line of the log), added by XADD key MAXLEN ~ N, so the stream keeps
// about the last N decisions and Redis trims it in whole nodes, which is
// cheap. Consumers read it with XRANGE, XREAD or a consumer group.
//
// A Stream is a decisionlog.Sink: the log's writer hands it batches,
// which Send queues without blocking (a full queue drops the batch,
// counted); Run sends each batch as one pipeline of XADDs. An entry is
// counted sent only when Redis acknowledged its XADD, failed otherwise;
// failures are logged at most once per LogEvery. The decision path never
// waits on Redis: the log's Append does not, and the writer hands over
// a batch without waiting either. A Stream is safe for concurrent use.
package redisstream
