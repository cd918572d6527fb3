// Package nextbest is the service layer of nextbest: the one door through
// which every surface (the HTTP API, the CLI, and what comes next) makes a
// decision. A Service loads the catalog in force, reads the customer's
// record (from the cache first, from the store under a deadline on a
// miss, answering from the schema's defaults and saying why when the
// store fails), reads the contact history and the learned statistics,
// names and seeds the decision, runs the decision.Engine and records what
// deciding does to the customer (the impressions of a
// decision_is_impression channel). It also applies events, checking
// what they mean first (outcome events name an offer and a channel;
// one impression per decision and offer), and credits their outcomes;
// reads and sets profiles; imports customers in bulk (profiles and
// historical events, a batch per store write); and reports the outcome statistics and each
// experiment's uplift. Transports only decode, call it and encode; its
// refusals of bad input are *EventError and *RequestError.
//
// The package knows no transport: it reaches no fasthttp, net/http,
// go-redis, pebble or ristretto, and YAML only through rules (a test
// enforces it). Stores are injected by cmd as the small interfaces
// declared here. A Service is safe for concurrent use; a decision on a
// cache hit allocates nothing beyond what rule evaluation must.
package nextbest
