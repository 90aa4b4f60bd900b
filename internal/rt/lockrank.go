package rt

import "sync"

// lockscope's own locks, and the order they are taken in.
//
// Like the runtime's lockrank.go, the order is written down as data: a lock
// may be taken only while every lock the goroutine already holds has a lower
// rank. Building with -tags lockscope_lockrank checks it on every
// acquisition (lockrank_on.go) and panics on the first violation; .ci/run
// runs the tests so. Without the tag the ranked mutexes are sync's, with no
// cost.
//
// The leaves, taken with nothing acquired under them and not ranked: the
// stack table's shard mutexes and stacksFullMu, pcInfoMu (stacks.go), and
// namingMu (naming.go).
// User locks are never taken while one of these is held.
const (
	rankWatchdogRun   = 1 + iota // watchdogRunMu: one watchdog round at a time
	rankGtable                   // gtableMu: observers of the goroutine records, reclamation, growth
	rankWait                     // waitMu: the wait-for graph (shared to register, exclusive to search)
	rankGraph                    // graphMu: the lock-order graph
	rankMetaReaders              // lockMeta.rmu: registered readers, write guard
	rankMetaWaiters              // lockMeta.wmu: a lock's waiter sets
	rankStats                    // statShard.mu
	rankReports                  // reports.mu
	rankReportOut                // reports.outMu: writing a report out
	rankSubs                     // subsMu: subscriptions
	rankWatchdogTimer            // watchdogMu: rescheduling the watchdog's timer
)

var rankNames = map[int]string{
	rankWatchdogRun: "watchdogRunMu", rankGtable: "gtableMu", rankWait: "waitMu", rankGraph: "graphMu",
	rankMetaReaders: "lockMeta.rmu", rankMetaWaiters: "lockMeta.wmu", rankStats: "statShard.mu",
	rankReports: "reports.mu", rankReportOut: "reports.outMu", rankSubs: "subsMu", rankWatchdogTimer: "watchdogMu",
}

// A ranker names a rank as a type, so that a ranked mutex's zero value
// knows its rank.
type ranker interface{ rank() int }

type (
	RWatchdogRun   struct{}
	RGtable        struct{}
	RWait          struct{}
	RGraph         struct{}
	RMetaReaders   struct{}
	RMetaWaiters   struct{}
	RStats         struct{}
	RReports       struct{}
	RReportOut     struct{}
	RSubs          struct{}
	rWatchdogTimer struct{}
)

func (RWatchdogRun) rank() int   { return rankWatchdogRun }
func (RGtable) rank() int        { return rankGtable }
func (RWait) rank() int          { return rankWait }
func (RGraph) rank() int         { return rankGraph }
func (RMetaReaders) rank() int   { return rankMetaReaders }
func (RMetaWaiters) rank() int   { return rankMetaWaiters }
func (RStats) rank() int         { return rankStats }
func (RReports) rank() int       { return rankReports }
func (RReportOut) rank() int     { return rankReportOut }
func (RSubs) rank() int          { return rankSubs }
func (rWatchdogTimer) rank() int { return rankWatchdogTimer }

// RankedMutex is a sync.Mutex of rank R.
type RankedMutex[R ranker] struct{ mu sync.Mutex }

func (m *RankedMutex[R]) Lock() {
	if LockrankOn {
		var r R
		rankAcquire(r.rank())
	}
	m.mu.Lock()
}

func (m *RankedMutex[R]) Unlock() {
	m.mu.Unlock()
	if LockrankOn {
		var r R
		rankRelease(r.rank())
	}
}

// RankedRWMutex is a sync.RWMutex of rank R.
type RankedRWMutex[R ranker] struct{ mu sync.RWMutex }

func (m *RankedRWMutex[R]) Lock() {
	if LockrankOn {
		var r R
		rankAcquire(r.rank())
	}
	m.mu.Lock()
}

func (m *RankedRWMutex[R]) Unlock() {
	m.mu.Unlock()
	if LockrankOn {
		var r R
		rankRelease(r.rank())
	}
}

func (m *RankedRWMutex[R]) RLock() {
	if LockrankOn {
		var r R
		rankAcquire(r.rank())
	}
	m.mu.RLock()
}

func (m *RankedRWMutex[R]) RUnlock() {
	m.mu.RUnlock()
	if LockrankOn {
		var r R
		rankRelease(r.rank())
	}
}
