package rt

import "time"

var (
	WatchdogMu    RankedMutex[rWatchdogTimer] // serialises runs and rescheduling
	WatchdogTimer *time.Timer
	WatchdogNext  int64 // nanotime the timer is set to fire at
)

// KickWatchdog asks for a run soon.
func KickWatchdog() { KickWatchdogAfter(int64(10 * time.Millisecond)) }

// KickWatchdogAfter brings the next run forward to at most d from now.
//
// Not from inside a testing/synctest bubble: there, Reset would count d on
// the bubble's fake clock (which starts in 2000, decades after the real
// monotonic clock's readings), and the timer would not fire again for
// decades. There the next regular run (within watchdogMaxInterval) does.
func KickWatchdogAfter(d int64) {
	WatchdogMu.Lock()
	defer WatchdogMu.Unlock()
	if WatchdogTimer == nil || inBubble() {
		return
	}
	if at := Nanotime() + d; at < WatchdogNext {
		WatchdogNext = at
		WatchdogTimer.Reset(time.Duration(d))
	}
}

// inBubble reports whether the calling goroutine's clock is a synctest
// bubble's fake one: time.Now there is not the real wall clock.
func inBubble() bool {
	skew := time.Now().Sub(WallTime(Nanotime()))
	return skew > time.Hour || skew < -time.Hour
}
