package featurestore

import (
	"fmt"
	"testing"
	"unsafe"
)

// TestInternName: a decoded record's attribute and aggregate names are
// shared between records, not copied per record, and the table of names
// stops growing at maxInterned while names past it still decode.
func TestInternName(t *testing.T) {
	r := &Record{}
	r.SetAttr("intern_test_tier", String("gold"))
	b := AppendRecord(nil, r)
	var first string
	for i := range 2 {
		got, err := UnmarshalRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		for name := range got.Attrs {
			if i == 0 {
				first = name
			} else if unsafe.StringData(name) != unsafe.StringData(first) {
				t.Errorf("attribute name %q decoded twice into two copies, want one interned string", name)
			}
		}
	}
	for i := range maxInterned + 10 {
		name := fmt.Sprintf("intern_test_%d", i)
		if got := internName([]byte(name)); got != name {
			t.Fatalf("internName(%q) = %q", name, got)
		}
	}
	if n := len(*interned.table.Load()); n > maxInterned {
		t.Errorf("%d names interned, want at most %d", n, maxInterned)
	}
}
