//go:build race

package main

// raceEnabled: simulations run ten times slower under the race detector,
// so the default-size run is skipped.
const raceEnabled = true
