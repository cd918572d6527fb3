// Package catalogs keeps the catalogs a server runs: it compiles a new one
// (uploaded, reloaded from a watched file, or rolled back to), swaps it in
// atomically, names each accepted catalog by a version, keeps a bounded
// history of them on disk so that they survive a restart, and records
// every change, and every rejected one, in an audit log.
//
// A *Registry is safe for concurrent use. Readers never lock: they load
// the catalog in force from the atomic pointer the registry publishes to
// and read its Version, set before it is published and never after.
// Changes are serialised; a catalog that does not compile, is over its
// Budget (rules' static limits, then the median time of a few decisions
// against synthetic customers), or whose version cannot be persisted, is
// rejected and the one in force keeps serving. The registry owns its directory: nothing else writes there.
// An *Audit is safe for concurrent use and is shared with whatever else
// must be audited (API key management).
package catalogs
