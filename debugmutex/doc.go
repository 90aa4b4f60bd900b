// Package debugmutex is a drop-in debug build of Go's sync locks. Replace
//
//	import "sync"
//
// with
//
//	import sync "github.com/lockscope/lockscope/debugmutex"
//
// and the program compiles and behaves as before: Mutex and RWMutex have
// sync's method sets and zero values and wrap the real sync locks (so the
// memory model and the race detector see what they always saw), Once and
// OnceFunc, OnceValue and OnceValues are sync's own code on this package's
// Mutex (a wait in Do is a wait for a lock), and every other name of
// package sync is re-exported. What changes is that the locks now record,
// and diagnose.
//
// # What is recorded
//
// For every lock: the holder goroutine (the writer and every reader), the
// acquire site, and when it was taken; for every contended acquisition, the
// wait, the waiter's stack and the holder's; for every failed TryLock, the
// site (exactly); hold times on a sample of acquisitions (every acquisition
// for locks held for 10µs or more, a random 1 in up to 64 for hot short
// locks, weighted so that totals are unbiased). Read it with Snapshot (held
// and awaited now), Records and LockStats (aggregated by stack and by lock),
// Subscribe (long waits and holds as they happen), or through packages
// profiler (pprof profiles) and exporter (OpenTelemetry spans).
//
// # What is reported
//
// A Report is made, printed to standard error in the manner of the race
// detector, appended as a JSON line to $LOCKSCOPE_REPORT_FILE and passed to
// OnReport handlers, for:
//
//   - KindDeadlock: goroutines waiting for each other in a cycle, found at
//     the blocking call that closes it (through Mutex, both sides of RWMutex,
//     RLocker, Cond and Once: a goroutine in Do waits for whoever runs its
//     function); a lock waiter that Go's goroutine leak profile
//     proves blocked forever (Go 1.27, or Go 1.26 with
//     GOEXPERIMENT=goroutineleakprofile), with the chain of holders and what
//     the last one is blocked on (a channel, select, WaitGroup, Cond),
//     within about a second; and a goroutine waiting for a lock it holds
//     itself: at once when the runtime proves it stuck, and without the
//     proof (or for a package-level lock, which the runtime always
//     reaches) after the recursive grace (1s), unless the lock has been
//     unlocked by a goroutine other than its locker before (a baton). Do
//     called from inside its own function (or a OnceFunc's function from
//     inside it) is reported at once, before it blocks: a Once's Mutex is
//     unlocked only by the Do that locked it.
//   - KindLockOrder: lock-order inversions of any length, the first time the
//     dependency that closes the cycle is confirmed, though nothing blocked.
//     Cycles whose edges were all taken under one common outer lock, edges
//     into locks taken by TryLock, and longer copies of a reported cycle are
//     not reported. The orders are kept by instance and by lock class (the
//     lock's declaration, "example.com/bank.Bank.accounts"; SetClass): one
//     order on one Bank and the inverse on another is a cycle of classes,
//     reported as such; a process with LOCKSCOPE_REPORT_FILE writes its
//     class graph there at its end, so that lockscope test and lockscope
//     report find the cycles between test binaries and processes.
//   - KindRecursiveRead: RLock of an RWMutex the goroutine already
//     read-holds, reported when it releases the first hold itself (a
//     deadlock as soon as a writer queues in between; reported as
//     KindDeadlock when one has).
//   - KindUnlockUnlocked: Unlock or RUnlock that sync is about to die of (its
//     own state says so), with who unlocked the lock last and where, printed
//     before sync's fatal error.
//   - KindLongHold, KindLongWait, KindLeakedLock: held or awaited longer than
//     LOCKSCOPE_HOLD_THRESHOLD / LOCKSCOPE_WAIT_THRESHOLD (30s), with the
//     holder's current stack (a Once whose function runs that long holds
//     every other call of Do as long: a long hold); a lock held past the threshold whose locker has
//     exited without unlocking it (a long hold, for a baton).
//   - KindLivelock: two goroutines that each hold a lock and keep failing
//     TryLock of the other's for a second, neither letting go.
//   - KindCopiedLock: a lock used at an address other than the one it was
//     first used at, copied with its state after use (through generics,
//     interfaces or reflection, where go vet cannot see), with where the
//     original was last unlocked and, for a copy made while the original was
//     held, its holder: reported before the copy's locker blocks.
//
// # Hand-offs
//
// Go lets a goroutine other than the locker unlock a lock. A dependency
// "B taken while A was held" (and a second RLock under a read hold) is
// pending on A's hold until it is released: by the locker, it is real and
// checked then; by another goroutine, it is dropped. A lock once unlocked by
// a goroutine other than its locker is a baton: its holder is no edge of the
// wait-for graph, a wait for it by its locker is no recursive deadlock, and
// its locker's exit is no leak. Until the runtime can prove a goroutine
// blocked forever, the first hand-off of a lock whose locker meanwhile waits
// for it past the recursive grace is reported as recursive locking.
//
// # Bounds
//
// Every table is bounded; a full one stops tracking and counts what it
// dropped (DroppedCounts), and never makes or loses a report for what it
// still tracks. Goroutine records have no bound: the table grows, and the
// records of exited goroutines are reclaimed. See the README for each bound.
//
// The same problem at the same sites is reported once and counted after
// that. After a report the program continues, unless LOCKSCOPE_ON_REPORT
// says panic or exit. Package locktest fails tests that leave reports or
// held locks behind.
//
// # Costs and switches
//
// An uncontended Lock+Unlock costs about 4 times sync's (18 ns against
// 4.7 ns on a 2-core AMD EPYC VM), with no allocation, whatever the stack
// depth and however many locks other goroutines hold, and with no global
// lock: goroutines on distinct locks scale as with sync. A nested
// acquisition costs 6 to 9 times sync's per lock (16 deep, across runs).
// See bench/ and the README for the measured table.
//
// LOCKSCOPE=off in the environment turns recording off at start: each call
// then costs one function call and a branch more than sync's (the same as
// sync for Lock and RLock within measurement noise; 1.4 times for a failing
// TryLock, which sync inlines). Building with
// -tags nolockscope makes Mutex, RWMutex and Once aliases of the sync types,
// OnceFunc, OnceValue and OnceValues sync's, and the rest of this API
// no-ops: identical types, zero cost.
//
// Goroutine ids come from github.com/petermattis/goid, checked at start
// against the runtime's own stack header (and replaced by the slow, always
// right way if they disagree).
package debugmutex
