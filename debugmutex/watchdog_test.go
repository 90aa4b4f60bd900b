package debugmutex

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/verdict"
)

// A lock call inside a synctest bubble that brings the watchdog forward
// (here Configure, as a self-wait does) must not move its timer onto the
// bubble's fake clock, which starts decades after the real one: the
// watchdog went silent for the rest of the process.
func TestWatchdogKeepsRunningAfterKickFromSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu Mutex
		mu.Lock()
		Configure() // kicks the watchdog, from inside the bubble
		mu.Unlock()
	})
	rt.WatchdogMu.Lock()
	in := time.Duration(rt.WatchdogNext - rt.Nanotime())
	rt.WatchdogMu.Unlock()
	if in > verdict.WatchdogMaxInterval {
		t.Errorf("the watchdog's next run is %v away, want at most %v", in, verdict.WatchdogMaxInterval)
	}
	// Two runs: the one a kick may have brought forward, and the next.
	before := verdict.WatchdogRuns.Load()
	for deadline := time.Now().Add(5 * verdict.WatchdogMaxInterval); verdict.WatchdogRuns.Load() < before+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the watchdog ran %d times in the %v after a kick from a synctest bubble, want at least 2", verdict.WatchdogRuns.Load()-before, 5*verdict.WatchdogMaxInterval)
		}
	}
}
