package rules

import "testing"

// TestRuneColumn checks a byte offset becomes the column of the
// character holding it, multi-byte and invalid UTF-8 included.
func TestRuneColumn(t *testing.T) {
	tests := []struct {
		line string
		off  int
		want int
	}{
		{"abc", 0, 1},
		{"abc", 2, 3},
		{"abc", 3, 4},  // just past the end
		{"abc", 10, 4}, // past the end
		{"—x", 0, 1},
		{"—x", 2, 1}, // inside the dash's three bytes
		{"—x", 3, 2},
		{"\"0é—0", 6, 4},
		{"\xe2\x80", 1, 2}, // invalid UTF-8 counts a character a byte
		{"", 0, 1},
	}
	for _, tt := range tests {
		if got := runeColumn(tt.line, tt.off); got != tt.want {
			t.Errorf("runeColumn(%q, %d) = %d, want %d", tt.line, tt.off, got, tt.want)
		}
	}
}
