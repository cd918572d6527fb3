// Package rules is the catalog: it loads the YAML a marketer writes
// (channels, the typed feature schema, segments, offers with per-channel
// content and eligibility rules), validates it, compiles every expression
// once with expr against a typed environment built from the feature schema,
// and exposes the compiled, immutable form the decision engine runs.
// Content strings may hold templates ({{customer.first_name}}), checked
// against the schema and compiled at load, rendered per decision by
// Content.AppendJSON (template.go).
//
// A *Catalog is built once by Load or Compile and never changes: it is safe
// for concurrent use, and a reload builds a new one. Every error an author
// can make is reported at load time with the file, line, column, the
// object (offer or segment id) and the field, never discovered per request.
// What a catalog may cost is bounded per expression (safety.go) and for the
// whole catalog (budget.go, the Options of Compile). Offers' eligible rules
// are planned over the catalog's distinct conditions and each channel's
// offers indexed by them (conditions.go), so a decision evaluates each
// condition once and visits only the offers that may be eligible, reading
// each from its channel's listings, the hot fields of the channel's offers
// in one array (listings.go).
// This package performs no I/O beyond reading the catalog file in LoadFile
// and imports only the standard library, expr, YAML and featurestore's pure
// model.
package rules
