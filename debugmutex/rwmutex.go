//go:build !nolockscope

package debugmutex

import (
	"context"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/engine"
	"github.com/lockscope/lockscope/internal/lockorder"
	"github.com/lockscope/lockscope/internal/misuse"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"

	"github.com/petermattis/goid"
)

// An RWMutex is a reader/writer mutual exclusion lock, a drop-in for
// sync.RWMutex. The lock can be held by an arbitrary number of readers or a
// single writer. The zero value for a RWMutex is an unlocked mutex.
//
// An RWMutex must not be copied after first use.
//
// If any goroutine calls Lock while the lock is already held by one or more
// readers, concurrent calls to RLock will block until the writer has acquired
// (and released) the lock, to ensure that the lock eventually becomes
// available to the writer. Note that this prohibits recursive read-locking:
// lockscope reports it (KindRecursiveRead) the first time it happens, and as
// a deadlock when a writer is queued in between.
//
// The real sync.RWMutex sits inside, so Go's memory model holds unchanged:
// the n'th call to Unlock "synchronizes before" the m'th call to Lock for any
// n < m, just as for Mutex, and for any call to RLock there exists an n such
// that the n'th call to Unlock "synchronizes before" that call to RLock, and
// the corresponding call to RUnlock "synchronizes before" the n+1'th call to
// Lock.
//
// Recorded: as for Mutex, for the writer and for every reader (each reader's
// hold is in its own goroutine's record). The lock is 80 bytes
// on 64-bit platforms (72 on 32-bit; sync.RWMutex: 24).
type RWMutex struct {
	rw sync.RWMutex
	c  record.LockCore
}

// RLock locks rw for reading.
//
// It should not be used for recursive read locking; a blocked Lock call
// excludes new readers from acquiring the lock. See the documentation on the
// RWMutex type.
//
//go:noinline
func (rw *RWMutex) RLock() {
	if config.Disabled {
		rw.rw.RLock()
		return
	}
	// The body of rlock(fp, nil), written out to save a call on the
	// uncontended path (as in Mutex.Lock).
	fp := rt.Getfp()
	id := goid.Get()
	if !rt.GoidFast {
		id = rt.GoidSlow()
	}
	g := record.ProbeG(id)
	if g == nil {
		g = record.LookupG(id)
	}
	if g != nil && g.N > 0 {
		lockorder.CheckRecursiveRead(&rw.c, g, id, fp)
	}
	if rw.rw.TryRLock() {
		if g == nil || !rw.c.FastAcquire(g, id, fp, record.FastRead) {
			engine.Acquired(&rw.c, g, id, fp, record.RwMutexType, report.Read, false, nil)
		}
		return
	}
	rw.rlockSlow(fp, id, g, nil)
}

// TryRLock tries to lock rw for reading and reports whether it succeeded.
//
// Note that while correct uses of TryRLock do exist, they are rare, and use
// of TryRLock is often a sign of a deeper problem in a particular use of
// mutexes.
//
//go:noinline
func (rw *RWMutex) TryRLock() bool {
	if config.Disabled {
		return rw.rw.TryRLock()
	}
	return rw.tryRLock(rt.Getfp(), nil)
}

// RUnlock undoes a single RLock call; it does not affect other simultaneous
// readers. It is a run-time error if rw is not locked for reading on entry
// to RUnlock; lockscope prints its diagnosis first.
//
//go:noinline
func (rw *RWMutex) RUnlock() {
	if config.Disabled {
		rw.rw.RUnlock()
		return
	}
	id := goid.Get()
	if !rt.GoidFast {
		id = rt.GoidSlow()
	}
	if g := record.ProbeG(id); g != nil && g.N > 0 {
		if g.CanFastRelease(&rw.c, record.FlagRead) && atomic.LoadInt32(&rw.c.State)&record.StateReadHandedOff == 0 {
			g.ReleaseFirst()
			rw.rw.RUnlock()
			return
		}
		if e := g.Entry(g.N - 1); e.Lock == uintptr(unsafe.Pointer(&rw.c)) && e.Flags&(record.FlagRead|record.FlagRegistered) == record.FlagRead &&
			rt.LdInt64(&e.Start) == 0 && e.Pend == nil && atomic.LoadInt32(&e.Released) == 0 &&
			atomic.LoadInt32(&rw.c.State)&record.StateReadHandedOff == 0 {
			// The common case: our newest hold, untimed, nothing pending.
			// (Read unlocks are not noted as the lock's last unlock: every
			// reader writing the lock's line would make readers contend.)
			g.Pop(e)
			rw.rw.RUnlock()
			return
		}
	}
	// The frame pointer is RUnlock's wherever in its body it is taken:
	// only the slow path needs it.
	if r := rw.runlock(rt.Getfp(), id); r != nil {
		rw.rw.RUnlock()
		panic(r)
	}
	rw.rw.RUnlock()
}

// Lock locks rw for writing. If the lock is already locked for reading or
// writing, Lock blocks until the lock is available.
//
//go:noinline
func (rw *RWMutex) Lock() {
	if config.Disabled {
		rw.rw.Lock()
		return
	}
	// Mutex.Lock's body, for an RWMutex.
	fp := rt.Getfp()
	id := goid.Get()
	if !rt.GoidFast {
		id = rt.GoidSlow()
	}
	g := record.ProbeG(id)
	if g == nil {
		g = record.LookupG(id)
	}
	if rw.rw.TryLock() {
		if g == nil || !rw.c.FastAcquire(g, id, fp, record.FastRWWrite) {
			engine.Acquired(&rw.c, g, id, fp, record.RwMutexType, report.Write, false, nil)
		}
		return
	}
	rw.lockSlow(fp, id, g, nil)
}

// TryLock tries to lock rw for writing and reports whether it succeeded.
//
// Note that while correct uses of TryLock do exist, they are rare, and use
// of TryLock is often a sign of a deeper problem in a particular use of
// mutexes.
//
//go:noinline
func (rw *RWMutex) TryLock() bool {
	if config.Disabled {
		return rw.rw.TryLock()
	}
	return rw.tryLock(rt.Getfp(), nil)
}

// Unlock unlocks rw for writing. It is a run-time error if rw is not locked
// for writing on entry to Unlock; lockscope prints its diagnosis first.
//
// As with Mutexes, a locked RWMutex is not associated with a particular
// goroutine. One goroutine may RLock (Lock) a RWMutex and then arrange for
// another goroutine to RUnlock (Unlock) it.
//
//go:noinline
func (rw *RWMutex) Unlock() {
	if config.Disabled {
		rw.rw.Unlock()
		return
	}
	id := goid.Get()
	if !rt.GoidFast {
		id = rt.GoidSlow()
	}
	if rw.c.ReleaseFast(id, rt.Getfp()) {
		rw.rw.Unlock()
		return
	}
	if r := engine.UnlockWrite(&rw.c, id, rt.Getfp(), record.RwMutexType); r != nil {
		rw.rw.Unlock()
		panic(r)
	}
	rw.rw.Unlock()
}

// RLocker returns a Locker interface that implements the Lock and Unlock
// methods by calling rw.RLock and rw.RUnlock. Its read holds are recorded
// like any other.
func (rw *RWMutex) RLocker() sync.Locker {
	return (*rlocker)(rw)
}

type rlocker RWMutex

func (r *rlocker) Lock()   { (*RWMutex)(r).RLock() }
func (r *rlocker) Unlock() { (*RWMutex)(r).RUnlock() }

func (rw *RWMutex) lock(fp unsafe.Pointer, ctx context.Context) {
	id := rt.CurGoid()
	g := record.LookupG(id)
	if rw.rw.TryLock() {
		engine.Acquired(&rw.c, g, id, fp, record.RwMutexType, report.Write, false, ctx)
		return
	}
	rw.lockSlow(fp, id, g, ctx)
}

// lockSlow waits for the write lock: outlined so that Lock stays small.
func (rw *RWMutex) lockSlow(fp unsafe.Pointer, id int64, g *record.Gstate, ctx context.Context) {
	misuse.WaitCopied(&rw.c, g, id, fp, record.RwMutexType, report.Write)
	w, r := engine.BeginWait(&rw.c, g, id, fp, record.RwMutexType, report.Write)
	if r != nil {
		panic(r)
	}
	rw.rw.Lock()
	stk := record.EndWait(&rw.c, w, id, report.Write, ctx)
	engine.AcquiredStack(&rw.c, g, id, fp, record.RwMutexType, report.Write, false, ctx, true, stk)
}

func (rw *RWMutex) tryLock(fp unsafe.Pointer, ctx context.Context) bool {
	if rw.rw.TryLock() {
		id := rt.CurGoid()
		engine.Acquired(&rw.c, record.LookupG(id), id, fp, record.RwMutexType, report.Write, true, ctx)
		return true
	}
	engine.TryFailed(&rw.c, fp, record.RwMutexType, report.Write)
	return false
}

func (rw *RWMutex) rlock(fp unsafe.Pointer, ctx context.Context) {
	id := rt.CurGoid()
	g := record.LookupG(id)
	if g != nil && g.N > 0 {
		lockorder.CheckRecursiveRead(&rw.c, g, id, fp)
	}
	if rw.rw.TryRLock() {
		engine.Acquired(&rw.c, g, id, fp, record.RwMutexType, report.Read, false, ctx)
		return
	}
	rw.rlockSlow(fp, id, g, ctx)
}

func (rw *RWMutex) rlockSlow(fp unsafe.Pointer, id int64, g *record.Gstate, ctx context.Context) {
	misuse.WaitCopied(&rw.c, g, id, fp, record.RwMutexType, report.Read)
	w, r := engine.BeginWait(&rw.c, g, id, fp, record.RwMutexType, report.Read)
	if r != nil {
		panic(r)
	}
	rw.rw.RLock()
	stk := record.EndWait(&rw.c, w, id, report.Read, ctx)
	engine.AcquiredStack(&rw.c, g, id, fp, record.RwMutexType, report.Read, false, ctx, true, stk)
}

func (rw *RWMutex) tryRLock(fp unsafe.Pointer, ctx context.Context) bool {
	if rw.rw.TryRLock() {
		id := rt.CurGoid()
		engine.Acquired(&rw.c, record.LookupG(id), id, fp, record.RwMutexType, report.Read, true, ctx)
		return true
	}
	engine.TryFailed(&rw.c, fp, record.RwMutexType, report.Read)
	return false
}

// runlock is RUnlock's bookkeeping in the general case, before the real
// RUnlock; it returns a report whose action is a panic, for the caller to
// panic with after the real RUnlock.
func (rw *RWMutex) runlock(fp unsafe.Pointer, id int64) *report.Report {
	c := &rw.c
	var r *report.Report
	g := record.LookupG(id)
	var e *record.HeldEntry
	if g != nil {
		if m := c.GetMeta(); m != nil && atomic.LoadInt32(&c.State)&record.StateReadHandedOff != 0 {
			// Read holds of this lock are released by other goroutines
			// too: claim ours under the lock's reader mutex, which they
			// take to mark one, so that one hold is never released twice.
			m.Rmu.Lock()
			if e = g.FindHeld(c, report.Read); e != nil && !atomic.CompareAndSwapInt32(&e.Released, 0, 1) {
				e = nil
			}
			m.Rmu.Unlock()
		} else {
			e = g.FindHeld(c, report.Read)
		}
	}
	switch {
	case e != nil:
		if rt.LdInt64(&e.Start) != 0 {
			c.Released(e, record.RwMutexType, report.Read)
		}
		r = engine.PopReporting(g, e)
	case g != nil && g.UntrackedHeld > 0:
		// One of our holds that nesting too deep left untracked.
		g.UntrackedHeld--
	case record.ReleaseReadFor(c, id):
		// Another goroutine's read hold, released on its behalf (legal).
	case record.SyncUnlocked(c, record.RwMutexType, report.Read):
		misuse.UnlockOfUnlocked(c, id, fp, record.RwMutexType, report.Read) // sync's fatal error next
	}
	return r
}
