package debugmutex

import (
	"sync"
	"testing"
)

// Goroutines keep their record slot while they live; once the table is
// half full, the watchdog frees the slots of those that have exited.
func TestExitedGoroutinesSlotsAreReclaimed(t *testing.T) {
	before := gclaimed.Load()
	n := gtableSize/2 + 1000 - int(before)
	for done := 0; done < n; {
		// Batches: the race detector allows 8128 live goroutines.
		batch := min(1000, n-done)
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
	}
	if got := gclaimed.Load(); got <= gtableSize/2 {
		t.Fatalf("%d slots claimed after %d goroutines locked; want more than half the table", got, n)
	}
	gtableMu.Lock()
	lastReclaim = 0
	gtableMu.Unlock()
	watchdogCheck()
	if got := gclaimed.Load(); got > before+100 {
		t.Fatalf("%d slots still claimed after reclamation (%d before the test)", got, before)
	}
	// A goroutine whose slot was freed gets one again.
	var mu Mutex
	mu.Lock()
	if findG(curGoid()) == nil {
		t.Error("this goroutine has no record while it holds a lock")
	}
	mu.Unlock()
}
