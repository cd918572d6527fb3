package main

import "testing"

func TestMedianOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.3}, 0.3},
		{[]float64{0.5, -0.1, 0.2}, 0.2},
		{[]float64{0.4, 0.1, 0.3, 0.2}, 0.3},
	}
	for _, tt := range tests {
		if got := medianOf(tt.in); got != tt.want {
			t.Errorf("medianOf(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestAdminAddrFromLog: the admin listener's address is read from the
// line serve logs (cmd/nextbest/admin.go).
func TestAdminAddrFromLog(t *testing.T) {
	line := `time=2026-12-05T11:00:00Z level=INFO msg="admin listening (pprof, metrics)" addr=127.0.0.1:43127` + "\n"
	m := adminRE.FindStringSubmatch(line)
	if m == nil || m[1] != "127.0.0.1:43127" {
		t.Fatalf("got %q from %q", m, line)
	}
}

func TestDeclogOptions(t *testing.T) {
	for _, o := range []options{
		{Mode: "declog", Target: "http://127.0.0.1:1"},
		{Mode: "declog", Rate: 100},
	} {
		o.Rounds, o.Conns, o.Duration, o.Customers, o.Batch, o.ZipfS, o.Channels = 3, 1, 1, 1, 1, 1.1, []string{"web"}
		if err := o.validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
