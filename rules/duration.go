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
