package debugmutex

import "time"

var (
	watchdogMu    rankedMutex[rWatchdogTimer] // serialises runs and rescheduling
	watchdogTimer *time.Timer
	watchdogNext  int64 // nanotime the timer is set to fire at
)

// kickWatchdog asks for a run soon.
func kickWatchdog() { kickWatchdogAfter(int64(10 * time.Millisecond)) }

// kickWatchdogAfter brings the next run forward to at most d from now.
//
// Not from inside a testing/synctest bubble: there, Reset would count d on
// the bubble's fake clock (which starts in 2000, decades after the real
// monotonic clock's readings), and the timer would not fire again for
// decades. There the next regular run (within watchdogMaxInterval) does.
func kickWatchdogAfter(d int64) {
	watchdogMu.Lock()
	defer watchdogMu.Unlock()
	if watchdogTimer == nil || inBubble() {
		return
	}
	if at := nanotime() + d; at < watchdogNext {
		watchdogNext = at
		watchdogTimer.Reset(time.Duration(d))
	}
}

// inBubble reports whether the calling goroutine's clock is a synctest
// bubble's fake one: time.Now there is not the real wall clock.
func inBubble() bool {
	skew := time.Now().Sub(wallTime(nanotime()))
	return skew > time.Hour || skew < -time.Hour
}
