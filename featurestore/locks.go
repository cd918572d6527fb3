package featurestore

import (
	"hash/maphash"
	"slices"
	"sync"
)

// LockStripes is the number of mutexes of a Locks. Two customers share
// one with probability 1/512, and a mutex is held for one commit.
const LockStripes = 512

// Locks are the customer locks of a store: LockStripes mutexes, the one
// of a customer picked by a hash of its id. A backend owns one Locks and
// every write of a customer's data, in the process, holds the customer's
// mutex: the backend's own Mutate, or the cache tier in front of it, which
// holds them around the backend's unlocked Apply (featurestore/cache).
// Several mutexes are taken in ascending order and each once, so calls
// covering several customers cannot deadlock. A Locks is safe for
// concurrent use.
type Locks struct {
	seed maphash.Seed
	mu   [LockStripes]sync.Mutex
}

// NewLocks returns a set of customer locks.
func NewLocks() *Locks {
	return &Locks{seed: maphash.MakeSeed()}
}

// Stripe returns the index of the customer's mutex.
func (l *Locks) Stripe(id string) int {
	return int(maphash.String(l.seed, id) % LockStripes)
}

// Stripes returns the distinct mutexes of the customers of groups, in
// the order Lock takes them.
func (l *Locks) Stripes(groups []Group) []int {
	stripes := make([]int, len(groups))
	for i := range groups {
		stripes[i] = l.Stripe(groups[i].CustomerID)
	}
	slices.Sort(stripes)
	return slices.Compact(stripes)
}

// Lock takes the mutexes stripes, which must be sorted and distinct (as
// Stripes returns them).
func (l *Locks) Lock(stripes []int) {
	for _, i := range stripes {
		l.mu[i].Lock()
	}
}

// Unlock releases the mutexes stripes.
func (l *Locks) Unlock(stripes []int) {
	for _, i := range stripes {
		l.mu[i].Unlock()
	}
}

// LockOne and TryLockOne take mutex i alone; UnlockOne releases it.
func (l *Locks) LockOne(i int)         { l.mu[i].Lock() }
func (l *Locks) TryLockOne(i int) bool { return l.mu[i].TryLock() }
func (l *Locks) UnlockOne(i int)       { l.mu[i].Unlock() }
