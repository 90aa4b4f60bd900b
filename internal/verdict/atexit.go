package verdict

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/lockorder"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/waitfor"
	"github.com/lockscope/lockscope/report"
)

// The end of a program (or of a test binary) turns some waits into
// certainties: a lock still held by a goroutine that has exited will not be
// unlocked by anyone now, and a goroutine still waiting for a lock it holds
// itself will not be rescued by a hand-off. The watchdog waits a threshold
// or a grace before it says so; at the end there is no time left to wait,
// so CheckEnd says so at once.

// CheckEnd reports, now, what the end of a program makes final: every lock
// held by a goroutine that has exited (a leaked lock), whatever the hold
// threshold, and every goroutine waiting for a lock it holds itself (a
// recursive-locking deadlock), whatever the recursive grace. Then it runs
// the watchdog's usual checks. Locks held by goroutines still alive are not
// reported unless held past the threshold: holding a lock while the program
// ends is no bug. A lock that other goroutines than its locker have
// unlocked before (a baton) is not reported as leaked either.
//
// Call it when the program or a test binary is about to end; Exiting does.
func CheckEnd() {
	if config.Disabled {
		return
	}
	WatchdogRunMu.Lock()
	now := rt.Nanotime()
	var found []*report.Report
	// Recursive waits: the grace is over. Reported here, as the watchdog
	// would at the end of the grace, without touching the wait's state
	// (its goroutine reads it outside waitMu right after it began): when the
	// watchdog reports it later, the report counts as seen again.
	record.GtableMu.Lock()
	record.WaitMu.Lock()
	if record.Nwaiting.Load() > 0 {
		record.ForEachG(func(id int64, g *record.Gstate) {
			w := &g.Wait
			if !w.Active.Load() || w.Proven || w.SelfWait && now >= w.SelfSeq {
				return // not waiting, decided already, or a recursive wait the watchdog reports now
			}
			// A recursive wait whose goroutine has not yet marked it as one
			// (it is between announcing the wait and its search) is one all
			// the same: the lock's holder is the waiter.
			c := w.Core()
			if !c.HandedOff() && (rt.LdInt64(&c.Holder) == w.G.Goid || w.G.FindHeldAny(w.Lock, w.LockID, report.Read) != nil) {
				found = append(found, waitfor.SelfWaitReport(w))
			}
		})
	}
	record.WaitMu.Unlock()
	// Holds of goroutines that may have exited, whatever their age.
	var candidates []longHold
	record.ForEachG(func(id int64, g *record.Gstate) {
		n := g.Count()
		for i := int32(0); i < n; i++ {
			e := g.Entry(i)
			if e == nil || !e.Live() || e.IsUncertain() || rt.LdInt32(&e.Flags)&record.FlagBaton != 0 {
				continue
			}
			start := rt.LdInt64(&e.Start)
			if start == 0 {
				atomic.CompareAndSwapInt64(&e.Start, 0, now)
				start = rt.LdInt64(&e.Start)
			}
			k := holdKey{id, record.LdUint64(&e.LockID), start}
			if s := holdsSeen[k]; (s != nil && s.exited) || endReported[k] {
				continue // reported as leaked already
			}
			candidates = append(candidates, longHold{g: id, e: e, gen: rt.LdUint32(&e.Gen), lock: k.lock, start: start, age: max(now-start, 0)})
		}
	})
	record.GtableMu.Unlock()

	if len(candidates) > 0 {
		live, complete := liveGoroutines()
		// A holder that is running may be on its way out (it has just
		// signalled that it is done, and returns): give it a moment, as
		// the end of a test binary comes right after such a signal.
		for try := 0; complete && try < endSettleTries && finishing(live, candidates); try++ {
			time.Sleep(time.Millisecond)
			live, complete = liveGoroutines()
		}
		for i := range candidates {
			h := &candidates[i]
			if _, alive := live[h.g]; alive || !complete || !h.still() {
				continue
			}
			r := longHoldReport(h, goroutineDump{}, true)
			if !h.still() {
				continue
			}
			if len(endReported) >= maxEndReported {
				clear(endReported) // bounded: at worst a leak is counted twice
			}
			endReported[holdKey{h.g, h.lock, h.start}] = true
			found = append(found, r)
		}
	}
	WatchdogRunMu.Unlock()
	for _, r := range found {
		delivery.EmitNoAction(r)
	}
	// The usual checks.
	WatchdogCheck()
}

// endSettleTries bounds how many times (a millisecond apart) CheckEnd
// looks again while a holder of a candidate hold is still running.
const endSettleTries = 50

// finishing says whether the holder of some candidate hold is alive and
// running or runnable (not blocked) in the dump live.
func finishing(live goroutineTable, candidates []longHold) bool {
	for i := range candidates {
		h := &candidates[i]
		if d, ok := live.get(h.g); ok && h.still() && (d.state == "running" || d.state == "runnable") {
			return true
		}
	}
	return false
}

// endReported are the holds CheckEnd has reported as leaked (the
// watchdog forgets the holds below its threshold at each run); guarded by
// watchdogRunMu, at most maxEndReported.
var endReported = map[holdKey]bool{}

const maxEndReported = 4096

var (
	atExitMu    sync.Mutex
	atExitFuncs []func()
	exitingOnce sync.Once
)

// AtExit registers f to run in Exiting, after CheckEnd, in the order of
// registration: for the writers of what lockscope recorded (profiles),
// which must see the reports of the end.
func AtExit(f func()) {
	atExitMu.Lock()
	atExitFuncs = append(atExitFuncs, f)
	atExitMu.Unlock()
}

// Exiting is for the end of main or TestMain: it runs CheckEnd, adds to
// LOCKSCOPE_REPORT_FILE a Repeat line for each problem seen again since its
// report was written (Report.Repeat), and runs the functions registered
// with AtExit, the first time it is called, and returns code unchanged.
// It waits (at most 2 s) for flight-recorder traces still being written.
//
//	func TestMain(m *testing.M) { os.Exit(inspect.Exiting(m.Run())) }
//
// Go has no exit hook: a program that ends another way (os.Exit elsewhere,
// log.Fatal) skips it, and its last moments are checked only by the
// watchdog's timer. lockscope test calls it at the end of every test binary
// of the module, after TestMain.
func Exiting(code int) int {
	exitingOnce.Do(func() {
		CheckEnd()
		delivery.FlushRepeats()
		if os.Getenv(config.EnvReportFile) != "" {
			delivery.WriteClassEdges(lockorder.ClassEdges())
		}
		// A report of CheckEnd's, or one just before, may be writing its
		// trace: let it finish, within bounds.
		delivery.WaitTraceWrites(delivery.TraceWriteWait)
		atExitMu.Lock()
		fs := append([]func(){}, atExitFuncs...)
		atExitMu.Unlock()
		for _, f := range fs {
			f()
		}
	})
	return code
}
