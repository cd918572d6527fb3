// Package decision is the pure decision engine: given a compiled catalog,
// a customer's features, a channel, placement and request context, it
// evaluates the customer's segments, the eligibility of the channel's
// offers, ranks the eligible ones and returns the best, or the channel's
// fallback content, with an explanation when asked.
//
// Decide performs no I/O, reads no clock (the request carries Now), logs
// nothing and takes no context: the same inputs always give the same
// result. It imports no HTTP, storage or cache package (a test enforces
// it). An Engine is safe for concurrent use; per-request scratch space is
// pooled.
package decision
