// Package httpapi is nextbest's HTTP API on fasthttp: it routes requests,
// parses and strictly validates their JSON bodies, calls the service
// (package nextbest), encodes the responses and maps every error to one
// JSON shape and status code.
//
// Nothing but HTTP lives here: rules are compiled by package rules; a
// decision is made by nextbest.Service.Decide, events are checked for
// what they mean and applied by ApplyEvents, profiles are read and set by
// Profile and SetProfile, and statistics and experiment uplift are
// computed by Report (each handler only decodes, calls the service and
// encodes; the service's refusals become 400s in errors.go). The server
// holds no store, catalog or clock of its own: it is given a
// *nextbest.Service, which has them. A *Server is safe for concurrent
// use; it reads the catalog in force from the service once per request,
// so a reload may swap it at any time and each request sees one catalog
// from start to end. Handlers
// never keep a *fasthttp.RequestCtx, nor any byte slice of it, after they
// return, and per-request scratch (parser, feature vector, decision result,
// response buffer) comes from pools, so the decide path allocates only what
// rule evaluation must (pinned by TestDecideAllocs). Admission control
// sheds what cannot be served in time (admission.go); the first Server
// with it on starts one process-wide goroutine that samples the Go
// scheduler's delay every 10 ms for the life of the process. API keys
// are package keys' (internal/keys); auth.go is their HTTP side.
//
// # Routes
//
// Every endpoint is one row of the table in routes.go: method, path,
// scope, metric label, admission class, body kind and handler. Dispatch,
// the key's scope check, the request metrics' route label, admission
// control, the 405's Allow header, the body checks (and HandleExpect's,
// before a body is uploaded) and the CORS preflight are all derived from
// it. To add an endpoint, add one row and write its handler, a
// func(*Server, *fasthttp.RequestCtx, *keys.Key, time.Time) that decodes
// the request, does the work and encodes the answer; a new metric label
// also goes in routeNames. TestRouteTable fails if a row lacks a scope
// (or open: true), a metric label or a handler, or repeats a method and
// path.
package httpapi
