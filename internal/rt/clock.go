package rt

import (
	"time"
	_ "unsafe" // for go:linkname
)

// Nanotime is the runtime's monotonic clock: one vDSO call, about half the
// cost of time.Now (which reads the wall clock too). It is on the runtime's
// list of symbols kept for linkname (go.dev/issue/67401). It is still too
// dear for every acquisition (~24 ns against a 4.6 ns Lock+Unlock), so
// acquisitions are timed by sampling; see sampling in lock.go.
//
//go:linkname Nanotime runtime.nanotime
func Nanotime() int64

// Cheaprand is the runtime's per-M wyrand generator (also on the linkname
// list): about 2 ns, no locking.
//
//go:linkname Cheaprand runtime.cheaprand
func Cheaprand() uint32

// The wall clock at start paired with nanotime at start, to turn monotonic
// readings into time.Time for reports and snapshots.
var (
	startWall = time.Now()
	startMono = Nanotime()
)

// WallTime converts a nanotime reading to wall-clock time.
func WallTime(mono int64) time.Time {
	return startWall.Add(time.Duration(mono - startMono))
}
