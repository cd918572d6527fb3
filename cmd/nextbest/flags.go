package main

import (
	"fmt"
	"strconv"
	"strings"
)

// byteSize is a flag value in bytes, written as a number with an optional
// unit: 512, 64KiB, 256MiB, 1GiB (KB, MB, GB are read as the same powers
// of two).
type byteSize int64

var byteUnits = []struct {
	suffix string
	scale  int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

func (b *byteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	scale := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, scale = strings.TrimSpace(n), u.scale
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/scale {
		return fmt.Errorf("%q is not a size such as 512, 64MiB or 1GiB", text)
	}
	*b = byteSize(n * scale)
	return nil
}

func (b byteSize) String() string { return strconv.FormatInt(int64(b), 10) }

// diskFloor is --min-free-disk, the free space the embedded store's volume
// keeps: a size (256MiB), a share of the volume (5%), or both separated by
// a comma, the smaller applying; 0 turns the floor off.
type diskFloor struct {
	bytes   int64   // 0: not set
	percent float64 // 0: not set
}

func (f *diskFloor) UnmarshalText(text []byte) error {
	bad := fmt.Errorf("%q is not a free-space floor such as 256MiB, 5%% or 256MiB,5%% (0: none)", text)
	parts := strings.Split(string(text), ",")
	if len(parts) > 2 {
		return bad
	}
	var v diskFloor
	var sawSize, sawPercent bool
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if n, ok := strings.CutSuffix(p, "%"); ok {
			pct, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || !(pct >= 0 && pct < 100) || sawPercent {
				return bad
			}
			v.percent, sawPercent = pct, true
			continue
		}
		var b byteSize
		if err := b.UnmarshalText([]byte(p)); err != nil || sawSize {
			return bad
		}
		v.bytes, sawSize = int64(b), true
	}
	*f = v
	return nil
}

// options returns the floor as embedded.Options's MinFreeBytes and
// MinFreePercent: a negative size for none.
func (f diskFloor) options() (bytes int64, percent float64) {
	if f.bytes == 0 && f.percent == 0 {
		return -1, 0
	}
	return f.bytes, f.percent
}
