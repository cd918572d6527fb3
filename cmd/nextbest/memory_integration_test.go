package main

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

// TestMemoryBudget: --memory is shared between the record cache and the
// embedded store's block cache as the log line says, and with a cache
// that holds a tenth of the customers (--cache-size), every decision is
// still made from the customer's own features: evicted customers are
// read back from the store, none is answered degraded or from another's
// record.
func TestMemoryBudget(t *testing.T) {
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--catalog", testCatalog, "--memory", "64MiB", "--cache-size", "16KiB")
	m := regexp.MustCompile(`memory for customers.* budget=(\d+) .*record_cache=(\d+) cache_sketch=(\d+) block_cache=(\d+)`).FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no memory line in the logs:\n%s", s.logs)
	}
	budget, _ := strconv.ParseInt(m[1], 10, 64)
	records, _ := strconv.ParseInt(m[2], 10, 64)
	sketch, _ := strconv.ParseInt(m[3], 10, 64)
	block, _ := strconv.ParseInt(m[4], 10, 64)
	if budget != 64<<20 || records+sketch > 16<<10 || records < 8<<10 || block != 64<<20-16<<10 {
		t.Errorf("budget %d split into record cache %d + sketch %d and block cache %d; want 64MiB, 16KiB and the rest", budget, records, sketch, block)
	}

	// About 20 customers fit in 16 KiB: 200 are ten times the cache.
	const customers = 200
	for i := range customers {
		tier := "none"
		if i%2 == 0 {
			tier = "gold" // vip: the VIP lounge outranks the welcome offer
		}
		s.mustCall("PUT", fmt.Sprintf("/v1/customers/m-%d", i), fmt.Sprintf(`{"features":{"tier":%q,"lifetime_value":%d}}`, tier, i), 200)
	}
	for round := range 2 {
		for i := range customers {
			id := fmt.Sprintf("m-%d", (i*7+round)%customers) // an order that is not the write order
			d := s.decide(fmt.Sprintf(`{"customer_id":%q,"channel":"web","limit":1}`, id))
			want := "welcome"
			n, _ := strconv.Atoi(id[2:])
			if n%2 == 0 {
				want = "vip-lounge"
			}
			if d.Degraded || len(d.Offers) != 1 || d.Offers[0].ID != want {
				t.Fatalf("round %d, %s: degraded %v, offers %+v; want %s", round, id, d.Degraded, d.Offers, want)
			}
			if got := s.customerFeatures(id)["lifetime_value"]; got != float64(n) {
				t.Fatalf("round %d, %s: lifetime_value %v, want %d", round, id, got, n)
			}
		}
	}
}
