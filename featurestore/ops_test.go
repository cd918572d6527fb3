package featurestore

import "testing"

// TestOpsTableComplete checks every row of the op table: a new op cannot
// be added half-way.
func TestOpsTableComplete(t *testing.T) {
	names := OpNames()
	if len(names) != len(ops)-1 {
		t.Fatalf("OpNames() = %v, want one name per op (%d)", names, len(ops)-1)
	}
	for o := Op(1); int(o) < len(ops); o++ {
		s := o.spec()
		if s.name == "" || s.fold == nil || s.read == nil || s.merge == nil {
			t.Errorf("op %d: row incomplete: %+v", o, *s)
		}
		if got, ok := ParseOp(o.String()); !ok || got != o {
			t.Errorf("ParseOp(%q) = %v, %v; want %v", o.String(), got, ok, o)
		}
	}
	if _, ok := ParseOp(""); ok {
		t.Error(`ParseOp("") succeeded`)
	}
	if got := Op(0).Check(TypeNumber, ""); got == nil || got.Problem != OpUnknown {
		t.Errorf("Op(0).Check = %v, want OpUnknown", got)
	}
}

// TestOpCheck pins what each op accepts, in both wordings: the one
// NewSchema returns and the one a catalog author reads.
func TestOpCheck(t *testing.T) {
	tests := []struct {
		op          Op
		typ         Type
		field       string
		attr        string // "" when accepted
		err, detail string
	}{
		{op: OpCount, typ: TypeNumber},
		{OpCount, TypeNumber, "page", "field", "op count reads no field", "op count reads no property"},
		{OpCount, TypeString, "", "op", "op count makes a number, feature is a string", "count makes a number, but the feature's type is string"},
		{op: OpSum, typ: TypeNumber, field: "amount"},
		{OpSum, TypeNumber, "", "field", "op sum needs a field", "op sum needs the event property to read"},
		{OpSum, TypeBool, "amount", "op", "op sum makes a number, feature is a bool", "sum makes a number, but the feature's type is bool"},
		{op: OpLast, typ: TypeString, field: "category"},
		{op: OpLast, typ: TypeList, field: "tags"},
		{OpLast, TypeString, "", "field", "op last needs a field", "op last needs the event property to read"},
		{op: OpLastTime, typ: TypeTime},
		{OpLastTime, TypeTime, "at", "field", "op last_time reads no field", "op last_time reads no property"},
		{OpLastTime, TypeNumber, "", "op", "op last_time makes a time, feature is a number", "last_time makes a time, but the feature's type is number"},
		{op: OpTop, typ: TypeString, field: "category"},
		{OpTop, TypeNumber, "category", "op", "op top makes a string, feature is a number", "top makes a string, but the feature's type is number"},
		{OpTop, TypeString, "", "field", "op top needs a field", "op top needs the event property to read"},
		{op: OpDistinct, typ: TypeNumber, field: "channel"},
		{OpDistinct, TypeString, "channel", "op", "op distinct makes a number, feature is a string", "distinct makes a number, but the feature's type is string"},
		{OpDistinct, TypeNumber, "", "field", "op distinct needs a field", "op distinct needs the event property to read"},
		{Op(0), TypeNumber, "", "op", "op must be one of count, sum, last, last_time, top, distinct", "op must be one of count, sum, last, last_time, top, distinct"},
	}
	for _, tt := range tests {
		got := tt.op.Check(tt.typ, tt.field)
		if tt.attr == "" {
			if got != nil {
				t.Errorf("%v.Check(%v, %q) = %v, want nil", tt.op, tt.typ, tt.field, got)
			}
			continue
		}
		if got == nil || got.Attr != tt.attr || got.Error() != tt.err || got.Detail() != tt.detail {
			t.Errorf("%v.Check(%v, %q) = %+v; want attr %q, error %q, detail %q", tt.op, tt.typ, tt.field, got, tt.attr, tt.err, tt.detail)
		}
	}
}

// TestNewSchemaRejectsFieldOfCount pins the stricter rule the catalog
// always had: an op that reads no property is given none.
func TestNewSchemaRejectsFieldOfCount(t *testing.T) {
	_, err := NewSchema([]Feature{{Name: "visits", Type: TypeNumber, From: &Aggregation{Event: "visit", Op: OpCount, Field: "page"}}})
	if want := `feature "visits": from: op count reads no field`; err == nil || err.Error() != want {
		t.Errorf("NewSchema error = %v, want %q", err, want)
	}
}
