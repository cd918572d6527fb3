// Package httpapi is nextbest's HTTP API on fasthttp: it routes requests,
// parses and strictly validates their JSON bodies, calls the decision engine
// and the feature store, encodes the responses and maps every error to one
// JSON shape and status code.
//
// Nothing but HTTP lives here: rules are compiled by package rules,
// decisions are made by package decision, and the store is whatever the
// caller passes as a RecordStore. A *Server is safe for concurrent use; it
// reads the catalog through an atomic pointer, so a reload may swap it at
// any time and each request sees one catalog from start to end. Handlers
// never keep a *fasthttp.RequestCtx, nor any byte slice of it, after they
// return, and per-request scratch (parser, feature vector, decision result,
// response buffer) comes from pools, so the decide path allocates only what
// rule evaluation must (pinned by TestDecideAllocs). Admission control
// sheds what cannot be served in time (admission.go); the first Server
// with it on starts one process-wide goroutine that samples the Go
// scheduler's delay every 10 ms for the life of the process.
package httpapi
