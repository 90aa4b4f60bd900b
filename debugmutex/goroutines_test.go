package debugmutex

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Goroutines keep their record slot while they live; once the records have
// grown, the watchdog frees the slots of those that have exited.
func TestExitedGoroutinesSlotsAreReclaimed(t *testing.T) {
	// The background watchdog must not reclaim part of the records while
	// they are made (those claimed after its dump survive it, and what is
	// left may be below the size that triggers reclamation): no run starts
	// until the goroutines have exited. A run that starts between the
	// unlock below and watchdogCheck sees them all exited, as that does.
	verdict.WatchdogRunMu.Lock()
	locked := true
	defer func() {
		if locked {
			verdict.WatchdogRunMu.Unlock()
		}
	}()
	before := record.Gtab.Load().Claimed.Load()
	baseGoroutines := runtime.NumGoroutine()
	size := func() int { return int(record.Gtab.Load().Mask + 1) }
	n := 0
	for done := 0; record.Gtab.Load().Claimed.Load() <= int64(size()/4) || done < 2*int(before); {
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
	record.GtableMu.Lock()
	verdict.LastReclaim, verdict.LastSurvivors = 0, 0
	record.GtableMu.Unlock()
	locked = false
	verdict.WatchdogRunMu.Unlock()
	verdict.WatchdogCheck()
	if got := record.Gtab.Load().Claimed.Load(); got > before+100 {
		t.Fatalf("%d slots still claimed after reclamation (%d before %d goroutines locked and exited)", got, before, n)
	}
	// A goroutine whose slot was freed gets one again.
	var mu Mutex
	mu.Lock()
	if record.FindG(rt.CurGoid()) == nil {
		t.Error("this goroutine has no record while it holds a lock")
	}
	mu.Unlock()
}

// Every goroutine gets a record, however many hold locks at once: the table
// grows rather than leaving goroutines untracked.
func TestTableGrowsBeyondItsInitialSize(t *testing.T) {
	n := 3 << record.GtableInitBits // three times the initial table
	var wg sync.WaitGroup
	release := make(chan struct{})
	locked := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mu Mutex
			mu.Lock()
			locked <- rt.CurGoid()
			<-release
			mu.Unlock()
		}()
	}
	missing := 0
	for i := 0; i < n; i++ {
		id := <-locked
		if g := record.FindG(id); g == nil || g.Count() == 0 {
			missing++
		}
	}
	close(release)
	wg.Wait()
	if missing > 0 {
		t.Fatalf("%d of %d goroutines holding a lock have no record", missing, n)
	}
	if d := inspect.DroppedCounts(); d.Goroutines != 0 {
		t.Errorf("Dropped.Goroutines = %d", d.Goroutines)
	}
}
