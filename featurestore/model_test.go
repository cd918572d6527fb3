package featurestore

import "testing"

func TestModelKeys(t *testing.T) {
	tests := []struct {
		key     string
		ok      bool
		kind    byte
		i, j    int
		sig     string
		isModel bool
	}{
		{ModelKey("abc", 'a', 0, 3), true, 'a', 0, 3, "abc", true},
		{ModelKey("abc", 'a', 2, 2), true, 'a', 2, 2, "abc", true},
		{ModelKey("abc", 'b', 5, 0), true, 'b', 5, 0, "abc", true},
		{ModelKey("a:b", 'b', 1, 0), true, 'b', 1, 0, "a:b", true},
		{ModelTotalKey("abc"), false, 0, 0, 0, "", true},
		{modelPrefix + "abc:a3,1", false, 0, 0, 0, "", true}, // j < i
		{modelPrefix + "abc:a1", false, 0, 0, 0, "", true},   // no column
		{modelPrefix + "abc:c1", false, 0, 0, 0, "", true},   // no such kind
		{modelPrefix + "abc:b99", false, 0, 0, 0, "", true},  // beyond maxModelDim
		{modelPrefix + "abc:b-1", false, 0, 0, 0, "", true},  // negative
		{"vip", false, 0, 0, 0, "", false},                   // a learn key
		{"", false, 0, 0, 0, "", false},
	}
	for _, tt := range tests {
		sig, kind, i, j, ok := parseModelKey(tt.key)
		if ok != tt.ok || (ok && (sig != tt.sig || kind != tt.kind || i != tt.i || j != tt.j)) {
			t.Errorf("parseModelKey(%q) = %q %c %d %d %v, want %q %c %d %d %v", tt.key, sig, kind, i, j, ok, tt.sig, tt.kind, tt.i, tt.j, tt.ok)
		}
		if got := IsModelKey(tt.key); got != tt.isModel {
			t.Errorf("IsModelKey(%q) = %v, want %v", tt.key, got, tt.isModel)
		}
	}
}

// TestLearnTableModels: NewLearnTable gathers a model's cells into its
// symmetric sums, summed over the maps it is given; the model's total is
// an ordinary cell Add counts at once; a sum's delta waits for the next
// table; the model's cells are no learn key's.
func TestLearnTableModels(t *testing.T) {
	cell := func(key string) StatKey { return StatKey{Offer: "o", Channel: "web", Key: key} }
	base := map[StatKey]Counts{
		cell(ModelKey("s", 'a', 0, 0)): {Value: 10},
		cell(ModelKey("s", 'a', 0, 1)): {Value: 4},
		cell(ModelKey("s", 'a', 1, 1)): {Value: 4},
		cell(ModelKey("s", 'b', 0, 0)): {Value: 2},
		cell(ModelTotalKey("s")):       {Impressions: 10, Conversions: 2},
		cell("vip"):                    {Impressions: 3},
	}
	pending := map[StatKey]Counts{
		cell(ModelKey("s", 'a', 0, 1)): {Value: 1},
		cell(ModelKey("s", 'b', 1, 0)): {Value: 1},
	}
	tb := NewLearnTable(base, pending)
	m := tb.Model("o", "web", "s")
	if m == nil || m.Dim != 2 {
		t.Fatalf("model %+v, want 2 terms", m)
	}
	if want := []float64{10, 5, 5, 4}; !equal(m.A, want) {
		t.Errorf("A = %v, want %v", m.A, want)
	}
	if want := []float64{2, 1}; !equal(m.B, want) {
		t.Errorf("B = %v, want %v", m.B, want)
	}
	if tb.Model("o", "web", "other") != nil || tb.Model("p", "web", "s") != nil {
		t.Error("a model of another signature or offer is not nil")
	}
	if tb.Len() != 2 {
		t.Errorf("Len = %d, want 2 (vip and the model's total; sums are no cells)", tb.Len())
	}
	if !tb.Add(StatDelta{Key: cell(ModelTotalKey("s")), Counts: Counts{Impressions: 1}}) {
		t.Fatal("Add of the model's total: false")
	}
	if got := tb.Get("o", "web", ModelTotalKey("s")).Impressions; got != 11 {
		t.Errorf("total after Add: %d impressions, want 11", got)
	}
	if !tb.Add(StatDelta{Key: cell(ModelKey("s", 'a', 0, 0)), Counts: Counts{Value: 1}}) {
		t.Error("Add of a model's sum asked for a rebuild; it waits for the next table")
	}
	if m.A[0] != 10 {
		t.Errorf("A[0][0] after Add = %v, want 10: the table's sums are fixed", m.A[0])
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
