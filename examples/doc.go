// Package examples holds the example catalogs the README and the
// benchmarks use, one directory each (retail/catalog.yaml). It has no code:
// its tests compile every catalog under it, so an example cannot rot.
//
// The catalogs are data, read by path; nothing imports this package.
package examples
