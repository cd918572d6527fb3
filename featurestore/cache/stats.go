package cache

import (
	"math/rand/v2"
	"sync/atomic"
)

// Stats are the cache's counters since New.
type Stats struct {
	Hits     uint64  // reads answered from memory, negative entries included
	Misses   uint64  // Loads that went to the backend or joined a load that did
	HitRatio float64 // Hits / (Hits + Misses); 0 before the first read
	// CostAdded and CostEvicted are the estimated bytes of records
	// admitted and evicted (or deleted) since New; their difference is
	// the memory in use.
	CostAdded   uint64
	CostEvicted uint64
	Entries     uint64 // records held, negative entries included
}

// Metrics returns the cache's counters. Ristretto applies inserts in the
// background, so Entries and the costs may lag the latest inserts.
func (c *Cache) Metrics() Stats {
	m := c.rc.Metrics
	s := Stats{
		Hits:        c.hits.load(),
		Misses:      c.misses.load(),
		CostAdded:   m.CostAdded(),
		CostEvicted: m.CostEvicted(),
	}
	if added, evicted := m.KeysAdded(), m.KeysEvicted(); added > evicted {
		s.Entries = added - evicted
	}
	if total := s.Hits + s.Misses; total > 0 {
		s.HitRatio = float64(s.Hits) / float64(total)
	}
	return s
}

// counter is a counter spread over cache lines, so that concurrent reads
// on many cores do not contend on one.
type counter struct {
	shards [16]struct {
		n atomic.Uint64
		_ [56]byte
	}
}

func (c *counter) inc() {
	c.shards[rand.Uint32()%uint32(len(c.shards))].n.Add(1)
}

func (c *counter) load() uint64 {
	var n uint64
	for i := range c.shards {
		n += c.shards[i].n.Load()
	}
	return n
}
