// Command nextbest is the nextbest decision service and its tools:
//
//	nextbest serve      serve the HTTP API on the embedded feature store
//	nextbest validate   check a catalog: a summary, or every error
//	nextbest decide     one decision from the command line, as JSON
//
// main only calls run, which parses flags (falling back to NEXTBEST_*
// environment variables), wires the catalog, the store, its cache and the
// HTTP API together and runs them as actors (oklog/run): the first to stop
// stops the others. This is the only package that reads flags and the
// environment or chooses concrete backends. Exit status: 0 success, 1 a
// validation or runtime error, 2 a usage error.
package main
