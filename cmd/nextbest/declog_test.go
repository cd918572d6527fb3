package main

import (
	"testing"
	"time"
)

func TestRetentionFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    retention
		wantErr bool
	}{
		{"7d", retention{age: 7 * 24 * time.Hour}, false},
		{"36h", retention{age: 36 * time.Hour}, false},
		{"2GiB", retention{bytes: 2 << 30}, false},
		{"512MiB", retention{bytes: 512 << 20}, false},
		{"0", retention{}, true},
		{"-1h", retention{}, true},
		{"0d", retention{}, true},
		{"week", retention{}, true},
	}
	for _, tt := range tests {
		var got retention
		err := got.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("%q: got %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
