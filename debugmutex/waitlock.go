package debugmutex

import (
	"sync"
	"sync/atomic"
)

// waitShards is how many ways waitMu is split.
const waitShards = 16

// A waitLock is waitMu: a reader/writer lock split into shards, each on a
// cache line of its own, with the count of registered waits kept per shard.
// A wait registers and unregisters under one shard, taken shared (any shard
// will do; each call picks one at random); a search, the watchdog and
// Snapshot take every shard, in order, and so exclude all registrations.
//
// One sync.RWMutex was a cache line that every contended Lock of every lock
// wrote four times (two RLock/RUnlock pairs) and the waits counter twice
// more: with thousands of goroutines waiting on two cores it was the line
// they all queued on.
//
// Ranked as one lock (rankWait) under lockscope_lockrank.
type waitLock struct {
	shards [waitShards]waitShard
}

type waitShard struct {
	mu sync.RWMutex
	// waiting is this shard's share of the count of registered waits: a
	// wait may be counted under one shard and uncounted under another, so
	// only the sum (waitLock.waiting) means anything.
	waiting atomic.Int64
	_       [64 - 24 - 8]byte
}

// RLock takes one shard shared and returns it, for RUnlock and for
// counting the waits registered under it.
func (l *waitLock) RLock() *waitShard {
	if lockrankOn {
		rankAcquire(rankWait)
	}
	s := &l.shards[cheaprand()%waitShards]
	s.mu.RLock()
	return s
}

// RUnlock releases a shard RLock returned.
func (l *waitLock) RUnlock(s *waitShard) {
	s.mu.RUnlock()
	if lockrankOn {
		rankRelease(rankWait)
	}
}

// Lock takes every shard exclusively.
func (l *waitLock) Lock() {
	if lockrankOn {
		rankAcquire(rankWait)
	}
	for i := range l.shards {
		l.shards[i].mu.Lock()
	}
}

// Unlock releases what Lock took.
func (l *waitLock) Unlock() {
	for i := len(l.shards) - 1; i >= 0; i-- {
		l.shards[i].mu.Unlock()
	}
	if lockrankOn {
		rankRelease(rankWait)
	}
}

// waiting returns how many waits are registered. waitMu held (exclusive).
func (l *waitLock) waiting() int64 {
	var n int64
	for i := range l.shards {
		n += l.shards[i].waiting.Load()
	}
	return n
}
