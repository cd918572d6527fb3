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
//
// Randomness is an input too. Thompson sampling, the default exploration,
// draws from the request: Request.Rand when set, else a generator the
// engine reseeds from Request.Seed at the start of every decision, so the
// same inputs and seed give the same result, whichever pooled scratch
// runs it. Production (the HTTP decide handler and nextbest decide) seeds
// each decision with SeedOf its decision id: ids are unique, so every
// decision draws its own stream, at no cost in allocations or locks, and
// the id is enough to replay a decision. Simulations pass one Rand for a
// whole run.
package decision
