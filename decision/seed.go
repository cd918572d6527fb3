package decision

// A decision's random draws come from its request: Request.Rand, or a
// PCG reseeded from Request.Seed. The engine reads no clock and keeps no
// stream across decisions, so a decision can be replayed from its inputs.

// seed resets s's own source to the stream of seed. The seed is expanded
// by SplitMix64, Vigna's recommended way to seed a generator from one
// 64-bit value: seeds that differ in a bit or two (decision ids a counter
// apart) give unrelated PCG states, where seeding PCG with them directly
// would start it on nearby, correlated states. It costs a few
// multiplications and allocates nothing.
func (s *scratch) seed(seed uint64) {
	x := seed
	hi := splitmix64(&x)
	lo := splitmix64(&x)
	s.src.Seed(hi, lo)
}

func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// SeedOf returns the seed of a decision identified by id (the bytes of
// its decision id), folded by 64-bit FNV-1a. Production seeds every
// decision this way rather than from a generator seeded at start-up:
// decision ids are unique (time, machine, process, counter), so no two
// decisions share a stream; deriving the seed costs a dozen
// multiplications and no allocation or lock; and the id in a response or
// log is all it takes to replay the decision's draws. The seed is not
// secret, and need not be: Thompson sampling needs draws independent of
// the offers' statistics, not unpredictable ones.
func SeedOf(id []byte) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, b := range id {
		h ^= uint64(b)
		h *= prime
	}
	return h
}
