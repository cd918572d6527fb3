package embedded_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
	"github.com/nextbest/nextbest/featurestore/storetest"
)

func TestScanContract(t *testing.T) {
	storetest.RunScan(t, func(t *testing.T) storetest.Scanner {
		return open(t, embedded.Options{})
	})
}

// TestScanOrderedByID: the embedded store's scan is ordered by id, and
// its cursor is the last id of a page, so a scan resumes after any
// customer (nextbest campaign's cursor file).
func TestScanOrderedByID(t *testing.T) {
	s := open(t, embedded.Options{})
	var muts []featurestore.Mutation
	for i := range 100 {
		muts = append(muts, featurestore.AttrsMutation(fmt.Sprintf("c-%03d", 99-i), map[string]featurestore.Value{"tier": featurestore.String("gold")}))
	}
	if _, err := s.Mutate(context.Background(), muts); err != nil {
		t.Fatal(err)
	}
	ids, next, err := s.ScanCustomers(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(ids) || ids[0] != "c-000" || next != "c-009" {
		t.Fatalf("first page %q, next %q; want c-000 to c-009 in order, next c-009", ids, next)
	}
	ids, _, err = s.ScanCustomers(context.Background(), "c-041", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c-042", "c-043", "c-044"}; !slices.Equal(ids, want) {
		t.Errorf("after c-041: %q, want %q", ids, want)
	}
	ids, next, err = s.ScanCustomers(context.Background(), "c-0415", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 58 || ids[0] != "c-042" || next != "" {
		t.Errorf("after c-0415 (no such customer): %d ids from %q, next %q; want 58 from c-042, next \"\"", len(ids), ids[0], next)
	}
}
