package report

import (
	"context"
	"time"
)

// Mode is how a lock is (or is wanted to be) held.
type Mode uint8

const (
	// Write is exclusive: Mutex.Lock, RWMutex.Lock.
	Write Mode = iota
	// Read is shared: RWMutex.RLock and locks taken through RLocker().
	Read
)

// String returns "write" or "read".
func (m Mode) String() string {
	if m == Read {
		return "read"
	}
	return "write"
}

// MarshalText encodes m as its String form.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText decodes "read" or "write".
func (m *Mode) UnmarshalText(b []byte) error {
	if string(b) == "read" {
		*m = Read
	} else {
		*m = Write
	}
	return nil
}

// LockInfo identifies a lock in snapshots, statistics and events.
type LockInfo struct {
	// ID is unique for the life of the process (0 for a lock never seen by
	// a slow path).
	ID uint64 `json:"id"`
	// Name is the name given with SetName, or the lock's first acquire site.
	Name string `json:"name"`
	// Type is "Mutex", "RWMutex", "Once", or "OnceFunc" (the Once of a
	// function OnceFunc, OnceValue or OnceValues returned).
	Type string `json:"type"`
}

// Holding is a lock held right now, as seen by Snapshot.
type Holding struct {
	Lock      LockInfo `json:"lock"`
	Mode      Mode     `json:"mode"`
	Goroutine int64    `json:"goroutine"`
	// Site is where the lock was acquired.
	Site Frame `json:"site"`
	// Since is when it was acquired. When the acquisition was not timed
	// (see the package documentation on sampling), Since is the first time
	// lockscope saw it held and Exact is false: the lock is at least that old.
	Since time.Time     `json:"since"`
	For   time.Duration `json:"for"`
	Exact bool          `json:"exact"`
	// Stack is the acquire stack (program counters, innermost first) when it
	// was captured, else just the acquire site.
	Stack []uintptr `json:"-"`
}

// Waiting is a goroutine blocked in Lock or RLock right now.
type Waiting struct {
	Lock      LockInfo `json:"lock"`
	Mode      Mode     `json:"mode"`
	Goroutine int64    `json:"goroutine"`
	// Site is where the goroutine called Lock/RLock.
	Site  Frame         `json:"site"`
	Since time.Time     `json:"since"`
	For   time.Duration `json:"for"`
	// Holder is a goroutine the snapshot shows holding the lock for writing
	// (0 if it shows none: the lock is read-held, or changed hands).
	Holder int64 `json:"holder,omitempty"`
	// Stack is the waiter's stack (program counters, innermost first).
	Stack []uintptr `json:"-"`
}

// State is what Snapshot returns: every lock held and every goroutine
// waiting, at one moment.
type State struct {
	Time    time.Time `json:"time"`
	Held    []Holding `json:"held"`
	Waiting []Waiting `json:"waiting"`
}

// StatKind says what a Record measures.
type StatKind uint8

const (
	// StatWait is time goroutines waited for a lock, keyed by the waiter's
	// stack. Count is contentions, Nanos total delay. Exact.
	StatWait StatKind = iota
	// StatWaitByHolder is the same waiting charged to the acquire stack of
	// the goroutine that held the lock when the wait began ("who made me
	// wait"). Exact counts; the holder's stack is its acquire site when its
	// full stack was not captured.
	StatWaitByHolder
	// StatHold is time locks were held, keyed by acquire stack. Count is
	// acquisitions, Nanos total hold time. Sampled: each timed acquisition
	// is weighted by its sampling period, so sums are unbiased estimates;
	// locks whose holds are long are timed on every acquisition.
	StatHold
	// StatTryFail is TryLock/TryRLock failures keyed by the caller's site
	// (one frame, expanded for inlining). Count is exact; Nanos is zero.
	StatTryFail
)

// String names the statistic.
func (k StatKind) String() string {
	switch k {
	case StatWait:
		return "wait"
	case StatWaitByHolder:
		return "wait-by-holder"
	case StatHold:
		return "hold"
	case StatTryFail:
		return "trylock-fail"
	}
	return "unknown"
}

// Record is one row of the aggregated statistics: a (kind, stack, lock, mode)
// key and its cumulative totals since the program started. Records only grow,
// so two calls to Records can be subtracted to get a delta.
type Record struct {
	Kind StatKind
	// Lock is the lock's name (SetName, or its first acquire site).
	Lock     string
	LockType string
	Mode     Mode
	// Labels are the pprof labels of the context given to LockContext.
	Labels map[string]string
	// Stack holds return program counters, innermost first, as returned by
	// runtime.Callers: symbolise them with runtime.CallersFrames.
	Stack []uintptr
	Count int64
	Nanos int64
}

// LockStat is the per-lock summary of the aggregated statistics: every lock
// sharing a name (e.g. every instance created at one site) is added up.
type LockStat struct {
	Lock            string        `json:"lock"`
	Type            string        `json:"type"`
	Acquisitions    int64         `json:"acquisitions"`
	HoldTime        time.Duration `json:"hold_time"`
	Contentions     int64         `json:"contentions"`
	WaitTime        time.Duration `json:"wait_time"`
	TryLockFailures int64         `json:"trylock_failures"`
}

// EventKind says what an Event is.
type EventKind uint8

const (
	// EventWait: a goroutine waited for a lock at least the subscription's
	// MinWait.
	EventWait EventKind = iota
	// EventHold: a timed hold lasted at least the subscription's MinHold.
	EventHold
	// EventReport: a Report was made.
	EventReport
)

// String names the event kind.
func (k EventKind) String() string {
	switch k {
	case EventWait:
		return "wait"
	case EventHold:
		return "hold"
	case EventReport:
		return "report"
	}
	return "unknown"
}

// Event is a notable lock event delivered to a Subscription.
type Event struct {
	Kind      EventKind
	Lock      LockInfo
	Mode      Mode
	Goroutine int64
	// Start is when the wait or hold began; Duration how long it lasted.
	Start    time.Time
	Duration time.Duration
	// Stack is the waiter's stack (EventWait) or the acquire stack
	// (EventHold): program counters, innermost first.
	Stack []uintptr
	// Holder, for EventWait, is the goroutine that held the lock when the
	// wait began, and HolderStack its acquire stack (or site).
	Holder      int64
	HolderStack []uintptr
	// Context is the context passed to LockContext, if any: the exporter
	// makes the lock's span a child of the span it carries.
	Context context.Context
	// HolderContext, for EventWait, carries the span the holder ran in
	// when the wait ended (from inspect.SetEventContext's function), if
	// any: the exporter links the wait's span to it.
	HolderContext context.Context
	// Report is set for EventReport.
	Report *Report
}

// Dropped says what the bounded tables could not keep.
type Dropped struct {
	// StatRows: rows added to an "(overflow)" row because the statistics
	// table was full.
	StatRows int64
	// Stacks: stacks not interned because the stack table was full.
	Stacks int64
	// TryLockSites: TryLock failures not attributed to a site.
	TryLockSites int64
	// Goroutines: goroutines whose holds were not tracked. Always 0: the
	// record table grows with the goroutines; kept for compatibility.
	Goroutines int64
	// Nesting: acquisitions not tracked because a goroutine held more than
	// 4036 locks at once. Their unlocks pay them off; nothing is reported
	// about them.
	Nesting int64
	// Edges: lock-order dependencies not recorded because the graph (256K
	// edges) or a hold's pending list (256) was full.
	Edges int64
	// Reports: distinct problems not delivered because a million distinct
	// problems had been seen already (repeats of those are still counted).
	Reports int64
	// TryStreaks: failed TryLocks not looked at for a livelock because
	// the table of goroutines failing TryLocks (256) was full around the
	// goroutine's slot: a livelock among them may go unreported.
	TryStreaks int64
}
