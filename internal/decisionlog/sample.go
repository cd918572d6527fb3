package decisionlog

// Sampled reports whether the decision of id is logged at rate (0 to 1).
// It is a function of the id alone, so every surface that makes or
// replays the decision (a node, a batch, replay) agrees on it. The hash
// is salted and so independent of the decision's seed
// (decision.SeedOf, FNV-1a of the same bytes): were it not, the sampled
// decisions would be those of some random draws, and the log biased.
func Sampled(id []byte, rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	}
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, b := range "decisionlog\x00" {
		h ^= uint64(b)
		h *= prime
	}
	for _, b := range id {
		h ^= uint64(b)
		h *= prime
	}
	// A SplitMix64 finaliser spreads FNV's weak low bits.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return float64(h>>11)/(1<<53) < rate
}
