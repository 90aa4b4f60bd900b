package debugmutex

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// Goroutines keep their record slot while they live; once the records have
// grown, the watchdog frees the slots of those that have exited.
func TestExitedGoroutinesSlotsAreReclaimed(t *testing.T) {
	// The watchdog's timer must not reclaim while the goroutines below are
	// still exiting: it would leave the survivors of that moment, now
	// fewer than a quarter of the grown table, for a reclamation that then
	// never starts. A reclamation just done holds it off for
	// reclaimInterval.
	watchdogRunMu.Lock()
	gtableMu.Lock()
	lastReclaim = nanotime()
	gtableMu.Unlock()
	watchdogRunMu.Unlock()
	before := gtab.Load().claimed.Load()
	baseGoroutines := runtime.NumGoroutine()
	size := func() int { return int(gtab.Load().mask + 1) }
	n := 0
	for done := 0; gtab.Load().claimed.Load() <= int64(size()/4) || done < 2*int(before); {
		// Batches: the race detector allows 8128 live goroutines.
		batch := 1000
		var wg sync.WaitGroup
		for i := 0; i < batch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mu Mutex
				mu.Lock()
				mu.Unlock()
			}()
		}
		wg.Wait()
		done += batch
		n = done
	}
	// wg.Wait returns when the goroutines have called Done, a moment before
	// they exit; the dump must not see them alive. Nothing signals an exit:
	// wait for the count of goroutines to come down.
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > baseGoroutines+5; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still alive", runtime.NumGoroutine())
		}
		runtime.Gosched()
	}
	watchdogRunMu.Lock()
	gtableMu.Lock()
	lastReclaim, lastSurvivors = 0, 0
	gtableMu.Unlock()
	watchdogRunMu.Unlock()
	watchdogCheck()
	if got := gtab.Load().claimed.Load(); got > before+100 {
		t.Fatalf("%d slots still claimed after reclamation (%d before %d goroutines locked and exited)", got, before, n)
	}
	// A goroutine whose slot was freed gets one again.
	var mu Mutex
	mu.Lock()
	if findG(curGoid()) == nil {
		t.Error("this goroutine has no record while it holds a lock")
	}
	mu.Unlock()
}

// Every goroutine gets a record, however many hold locks at once: the table
// grows rather than leaving goroutines untracked.
func TestTableGrowsBeyondItsInitialSize(t *testing.T) {
	n := 3 << gtableInitBits // three times the initial table
	var wg sync.WaitGroup
	release := make(chan struct{})
	locked := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mu Mutex
			mu.Lock()
			locked <- curGoid()
			<-release
			mu.Unlock()
		}()
	}
	missing := 0
	for i := 0; i < n; i++ {
		id := <-locked
		if g := findG(id); g == nil || g.count() == 0 {
			missing++
		}
	}
	close(release)
	wg.Wait()
	if missing > 0 {
		t.Fatalf("%d of %d goroutines holding a lock have no record", missing, n)
	}
	if d := DroppedCounts(); d.Goroutines != 0 {
		t.Errorf("Dropped.Goroutines = %d", d.Goroutines)
	}
}
