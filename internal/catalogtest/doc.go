// Package catalogtest generates catalogs and customer populations of
// realistic shape, so that tests, the benchmarks in decision and rules and
// the load driver in bench/ all measure the same workload.
//
// Everything here is pure and deterministic: no I/O, no clock and no
// global random source. Generate returns the same bytes and a Population
// the same customers for the same seed (with the same Go release: the
// generator uses math/rand/v2's PCG). The generated catalogs and the
// example retail catalog (examples/retail/catalog.yaml) declare the same
// features, so a Population serves both.
package catalogtest
