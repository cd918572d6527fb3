package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a catalog duration: a Go duration ("90m", "12h",
// "1h30m") or a whole number of days or weeks ("30d", "2w").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		k, err := strconv.ParseUint(s[:n-1], 10, 32)
		days := k
		if s[n-1] == 'w' {
			days = k * 7
		}
		if err == nil && k > 0 && days <= 36500 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
		if err == nil {
			return 0, fmt.Errorf("%q is not between 1d and 36500d", s)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (like 30d, 12h or 90m)", s)
	}
	return d, nil
}

// FormatDuration writes d as a catalog would: whole days as "7d", else
// Go's form without zero units ("12h", "90m" as "1h30m").
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
