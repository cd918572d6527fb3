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
		if err == nil && k <= 36500 {
			d := time.Duration(k) * 24 * time.Hour
			if s[n-1] == 'w' {
				d *= 7
			}
			return d, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (like 30d, 12h or 90m)", s)
	}
	return d, nil
}
