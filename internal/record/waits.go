package record

import (
	"context"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/events"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

type Waiter struct {
	G *Gstate
	// Active: the goroutine is waiting and registered (atomic: the check
	// for whether a search is needed reads it without waitMu).
	Active atomic.Bool
	// Lock is the awaited lock's address. While the waiter is active the
	// waiting goroutine, blocked inside Lock, keeps the lock alive, so a
	// search under waitMu may follow it; nothing else may.
	Lock   uintptr
	LockID uint64
	Meta   *LockMeta
	Typ    string
	Mode   report.Mode
	Since  int64 // nanotime the wait began
	Stack  uint32
	Pc1    uintptr
	Pc2    uintptr

	Holder      int64  // writer holding the lock when the wait began
	HolderStack uint32 // its acquire stack, or site

	Idx   int     // position in meta.waiters
	Rh    []RhReg // registrations as a waiting read-holder
	Visit uint64  // search epoch that last visited this waiter

	SelfWait     bool  // waits for a lock it holds itself
	SelfSeq      int64 // nanotime after which the self-wait is reported
	Static       bool  // that lock is a package variable (staticAddr): the proof cannot decide
	ReportedLong bool

	// The runtime's proof (leakproof.go); guarded by waitMu.
	Consulted int64 // since of the wait the proof was last asked about
	Proven    bool  // decided: the runtime proved this wait endless
}

// RhWait is a waiting goroutine that read-holds a lock: an element of the
// lock's meta.rhWaiters.
type RhWait struct {
	W   *Waiter
	E   *HeldEntry
	Gen uint32 // e.gen at registration: the hold still is the one registered
	K   int    // index of this registration in w.rh
}

type RhReg struct {
	M   *LockMeta
	Idx int // position in m.rhWaiters
}

var (
	// WaitMu guards the wait-for graph. Registering and unregistering a
	// wait take it shared (and the metas' wmu of the locks involved, one at
	// a time); a search, the watchdog and Snapshot take it exclusively, and
	// so see every registration whole.
	WaitMu      rt.RankedRWMutex[rt.RWait]
	Nwaiting    atomic.Int64 // goroutines waiting
	SearchEpoch uint64       // guarded by waitMu (exclusive)
)

// Core returns the awaited lock. Only under waitMu while w is active.
func (w *Waiter) Core() *LockCore { return *(**LockCore)(unsafe.Pointer(&w.Lock)) }

// lockOf returns the lock of the owner's entry e if its memory still holds
// that lock, or nil. Only the owner calls it, for a lock it holds: a held
// lock is reachable by the program unless the program dropped it while
// holding it, and the id check rules out memory that was reused since.
func lockOf(e *HeldEntry) *LockCore {
	c := *(**LockCore)(unsafe.Pointer(&e.Lock))
	if c == nil || LdUint64(&c.Id) != e.LockID {
		return nil
	}
	return c
}

// EntryMeta returns the meta of the owner's held entry e, creating it if the
// lock had none when it was taken.
func EntryMeta(g *Gstate, e *HeldEntry) *LockMeta {
	if m := e.GetMeta(); m != nil {
		return m
	}
	c := lockOf(e)
	if c == nil {
		return nil
	}
	m := c.MetaFor(g, e.typ(), e.Pc1, e.Pc2)
	rt.StPtr(&e.Meta, unsafe.Pointer(m))
	return m
}

// EndWaitAbandoned unregisters a wait that will not happen (the configured
// action panics instead).
func EndWaitAbandoned(c *LockCore, w *Waiter) { w.unregister() }

// MightCycle reports whether a search from w could find a cycle now. It
// reads the blockers' active flags and the lock's sets without waitMu.
func (w *Waiter) MightCycle(id int64) bool {
	// A goroutine that holds no lock is waited for by nobody: no cycle can
	// pass through it (most contended waits of a service are such).
	if g := w.G; g.N == 0 && g.UntrackedHeld == 0 {
		return false
	}
	c := w.Core()
	if c.HandedOff() {
		return false
	}
	if h := rt.LdInt64(&c.Holder); h != 0 {
		if h == id {
			return true
		}
		if hg := FindG(h); hg != nil && hg.Wait.Active.Load() {
			return true
		}
	}
	// The counts change with the sets, under wmu, before the registering
	// goroutine sets its active flag: the argument above holds.
	if w.Mode == report.Write {
		return w.Meta.Nrh.Load() > 0
	}
	return w.Meta.Nwriters.Load() > 0 // w, a reader, is not among them
}

// unregister removes w from the lock's waiters and from the read-holder
// sets, and drops its references. waitMu not held.
func (w *Waiter) unregister() {
	if !w.Active.Load() {
		return
	}
	w.Active.Store(false)
	WaitMu.RLock()
	defer WaitMu.RUnlock()
	m := w.Meta
	m.Wmu.Lock()
	last := len(m.Waiters) - 1
	if w.Idx != last {
		m.Waiters[w.Idx] = m.Waiters[last]
		m.Waiters[w.Idx].Idx = w.Idx
	}
	m.Waiters[last] = nil
	m.Waiters = m.Waiters[:last]
	if w.Mode == report.Write {
		m.Nwriters.Add(-1)
	}
	if cap(m.Waiters) > 64 && len(m.Waiters) < cap(m.Waiters)/4 {
		m.Waiters = append([]*Waiter(nil), m.Waiters...)
	}
	m.Wmu.Unlock()
	for k := range w.Rh {
		r := &w.Rh[k]
		rm := r.M
		rm.Wmu.Lock()
		last := len(rm.RhWaiters) - 1
		if r.Idx != last {
			moved := rm.RhWaiters[last]
			rm.RhWaiters[r.Idx] = moved
			moved.W.Rh[moved.K].Idx = r.Idx
		}
		rm.RhWaiters[last] = RhWait{}
		rm.RhWaiters = rm.RhWaiters[:last]
		rm.Nrh.Add(-1)
		if cap(rm.RhWaiters) > 64 && len(rm.RhWaiters) < cap(rm.RhWaiters)/4 {
			rm.RhWaiters = append([]RhWait(nil), rm.RhWaiters...)
		}
		rm.Wmu.Unlock()
		r.M = nil
	}
	w.Rh = w.Rh[:0]
	w.SelfWait = false
	w.Lock = 0
	w.Meta = nil
	Nwaiting.Add(-1)
}

// EndWait records a finished wait; the caller then records the acquisition.
func EndWait(c *LockCore, w *Waiter, id int64, mode report.Mode, ctx context.Context) (stack uint32) {
	now := rt.Nanotime()
	meta, since, stack, holder, holderStack := w.Meta, w.Since, w.Stack, w.Holder, w.HolderStack
	w.unregister()

	wait := now - since
	addStatCtx(ctx, report.StatWait, stack, meta, mode, 1, wait)
	addStatCtx(ctx, report.StatWaitByHolder, holderStack, meta, mode, 1, wait)
	if wait >= events.MinWaitSubscribed() {
		events.PublishEvent(report.Event{
			Kind: report.EventWait, Lock: meta.Info(), Mode: mode, Goroutine: id,
			Start: rt.WallTime(since), Duration: DurationNS(wait), Stack: stacks.StackPCs(stack),
			Holder: holder, HolderStack: stacks.StackPCs(holderStack), Context: ctx,
		})
	}
	return stack
}

// Wants says what w waits for, as reports put it: "write lock", "read
// lock", or the kind of Once whose function another call is running (a
// goroutine waiting in Do "waits for Once cfgOnce").
func (w *Waiter) Wants() string {
	switch {
	case w.IsOnce():
		return w.Typ
	case w.Mode == report.Read:
		return "read lock"
	}
	return "write lock"
}

// IsOnce says whether w waits in a Once's Do (or a OnceFunc's function).
func (w *Waiter) IsOnce() bool { return w.Typ == OnceType || w.Typ == OnceFuncType }
