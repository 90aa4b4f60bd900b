package debugmutex

import "testing"

// TestWaitLockExclusiveTakesEveryShard: Lock excludes readers of every
// shard (each shard's TryRLock fails), RLock takes one shard and excludes
// Lock, and the count of waits sums over the shards whichever shard each
// change was made under.
func TestWaitLockExclusiveTakesEveryShard(t *testing.T) {
	var l waitLock
	l.Lock()
	for i := range l.shards {
		if l.shards[i].mu.TryRLock() {
			t.Errorf("shard %d could be read-locked while the wait lock was held exclusively", i)
			l.shards[i].mu.RUnlock()
		}
	}
	l.Unlock()
	for i := range l.shards {
		if !l.shards[i].mu.TryLock() {
			t.Fatalf("shard %d still locked after Unlock", i)
		}
		l.shards[i].mu.Unlock()
	}

	s := l.RLock()
	locked := 0
	for i := range l.shards {
		if l.shards[i].mu.TryLock() {
			l.shards[i].mu.Unlock()
		} else {
			locked++
		}
	}
	if locked != 1 {
		t.Errorf("RLock held %d shards against writers, want 1", locked)
	}
	s.waiting.Add(1)
	l.RUnlock(s)

	// Uncounted under another shard (RLock picks at random).
	l.shards[(indexOf(&l, s)+1)%waitShards].waiting.Add(-1)
	l.shards[3].waiting.Add(2)
	l.Lock()
	if n := l.waiting(); n != 2 {
		t.Errorf("waiting() = %d, want 2", n)
	}
	l.Unlock()
}

func indexOf(l *waitLock, s *waitShard) int {
	for i := range l.shards {
		if &l.shards[i] == s {
			return i
		}
	}
	return -1
}
