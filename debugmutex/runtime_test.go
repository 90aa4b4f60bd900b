package debugmutex_test

import (
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Code using debugmutex works inside a synctest bubble, and lockscope
// leaves nothing behind in it: synctest.Test fails if a goroutine or timer
// born in the bubble outlives it.
func TestWorksInsideSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu debugmutex.Mutex
		var rw debugmutex.RWMutex
		debugmutex.Configure(debugmutex.HoldThreshold(30 * time.Second)) // reschedules the watchdog from inside
		n := 0
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					mu.Lock()
					n++
					mu.Unlock()
					// Fake time. (Sleeping while holding a lock others wait
					// for would hang the bubble with plain sync too: a
					// goroutine blocked on a sync.Mutex is not durably
					// blocked, so fake time cannot advance.)
					time.Sleep(time.Millisecond)
					rw.RLock()
					rw.RUnlock()
				}
			}()
		}
		wg.Wait()
		if n != 200 {
			t.Errorf("n = %d", n)
		}
		synctest.Wait()
	})
}

// Per-lock side state (meta, lock-order graph nodes) is freed with the
// lock: create, use (nested, so graph nodes exist) and drop a million
// locks, and the heap comes back near where it started.
func TestSideStateFreedWithLocks(t *testing.T) {
	if testing.Short() {
		t.Log("-short: 100k locks instead of 1M")
	}
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	func() {
		locks := make([]debugmutex.Mutex, n)
		for i := 0; i+1 < n; i += 2 {
			locks[i].Lock()
			locks[i+1].Lock() // an edge: both become graph nodes
			locks[i+1].Unlock()
			locks[i].Unlock()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc < base+uint64(n)*72 {
			t.Fatalf("heap did not grow as expected: %d -> %d", base, ms.HeapAlloc)
		}
	}()
	// Cleanups run after the GC that finds the locks dead, one at a time on
	// one goroutine: a million of them take seconds, under -race on a
	// loaded machine over 30 s. Poll for them with a deadline (the poll
	// ends as soon as the heap is back).
	limit := base + 16<<20
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	var after uint64
	for {
		after = heap()
		if after < limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap %d MiB after dropping %d locks, started at %d MiB", after>>20, n, base>>20)
		}
		time.Sleep(50 * time.Millisecond) // let the cleanup goroutine run
	}
	t.Logf("heap: %d KiB before, %d KiB after %d locks were used and dropped (%v)", base>>10, after>>10, n, time.Since(start).Round(time.Millisecond))
}
