package debugmutex

import (
	"context"
	"sync/atomic"
	"unsafe"
)

type waiter struct {
	g *gstate
	// active: the goroutine is waiting and registered (atomic: the check
	// for whether a search is needed reads it without waitMu).
	active atomic.Bool
	// lock is the awaited lock's address. While the waiter is active the
	// waiting goroutine, blocked inside Lock, keeps the lock alive, so a
	// search under waitMu may follow it; nothing else may.
	lock   uintptr
	lockID uint64
	meta   *lockMeta
	typ    string
	mode   Mode
	since  int64 // nanotime the wait began
	stack  uint32
	pc1    uintptr
	pc2    uintptr

	holder      int64  // writer holding the lock when the wait began
	holderStack uint32 // its acquire stack, or site

	idx   int     // position in meta.waiters
	rh    []rhReg // registrations as a waiting read-holder
	visit uint64  // search epoch that last visited this waiter

	selfWait     bool  // waits for a lock it holds itself
	selfSeq      int64 // nanotime after which the self-wait is reported
	static       bool  // that lock is a package variable (staticAddr): the proof cannot decide
	reportedLong bool

	// The runtime's proof (leakproof.go); guarded by waitMu.
	consulted int64 // since of the wait the proof was last asked about
	proven    bool  // decided: the runtime proved this wait endless
}

// rhWait is a waiting goroutine that read-holds a lock: an element of the
// lock's meta.rhWaiters.
type rhWait struct {
	w   *waiter
	e   *heldEntry
	gen uint32 // e.gen at registration: the hold still is the one registered
	k   int    // index of this registration in w.rh
}

type rhReg struct {
	m   *lockMeta
	idx int // position in m.rhWaiters
}

var (
	// waitMu guards the wait-for graph. Registering and unregistering a
	// wait take it shared (and the metas' wmu of the locks involved, one at
	// a time); a search, the watchdog and Snapshot take it exclusively, and
	// so see every registration whole.
	waitMu      rankedRWMutex[rWait]
	nwaiting    atomic.Int64 // goroutines waiting
	searchEpoch uint64       // guarded by waitMu (exclusive)
)

// core returns the awaited lock. Only under waitMu while w is active.
func (w *waiter) core() *lockCore { return *(**lockCore)(unsafe.Pointer(&w.lock)) }

// lockOf returns the lock of the owner's entry e if its memory still holds
// that lock, or nil. Only the owner calls it, for a lock it holds: a held
// lock is reachable by the program unless the program dropped it while
// holding it, and the id check rules out memory that was reused since.
func lockOf(e *heldEntry) *lockCore {
	c := *(**lockCore)(unsafe.Pointer(&e.lock))
	if c == nil || ldUint64(&c.id) != e.lockID {
		return nil
	}
	return c
}

// entryMeta returns the meta of the owner's held entry e, creating it if the
// lock had none when it was taken.
func entryMeta(g *gstate, e *heldEntry) *lockMeta {
	if m := e.getMeta(); m != nil {
		return m
	}
	c := lockOf(e)
	if c == nil {
		return nil
	}
	m := c.metaFor(g, e.typ(), e.pc1, e.pc2)
	stPtr(&e.meta, unsafe.Pointer(m))
	return m
}

// endWaitAbandoned unregisters a wait that will not happen (the configured
// action panics instead).
func endWaitAbandoned(c *lockCore, w *waiter) { w.unregister() }

// mightCycle reports whether a search from w could find a cycle now. It
// reads the blockers' active flags and the lock's sets without waitMu.
func (w *waiter) mightCycle(id int64) bool {
	// A goroutine that holds no lock is waited for by nobody: no cycle can
	// pass through it (most contended waits of a service are such).
	if g := w.g; g.n == 0 && g.untrackedHeld == 0 {
		return false
	}
	c := w.core()
	if c.handedOff() {
		return false
	}
	if h := ldInt64(&c.holder); h != 0 {
		if h == id {
			return true
		}
		if hg := findG(h); hg != nil && hg.wait.active.Load() {
			return true
		}
	}
	// The counts change with the sets, under wmu, before the registering
	// goroutine sets its active flag: the argument above holds.
	if w.mode == Write {
		return w.meta.nrh.Load() > 0
	}
	return w.meta.nwriters.Load() > 0 // w, a reader, is not among them
}

// unregister removes w from the lock's waiters and from the read-holder
// sets, and drops its references. waitMu not held.
func (w *waiter) unregister() {
	if !w.active.Load() {
		return
	}
	w.active.Store(false)
	waitMu.RLock()
	defer waitMu.RUnlock()
	m := w.meta
	m.wmu.Lock()
	last := len(m.waiters) - 1
	if w.idx != last {
		m.waiters[w.idx] = m.waiters[last]
		m.waiters[w.idx].idx = w.idx
	}
	m.waiters[last] = nil
	m.waiters = m.waiters[:last]
	if w.mode == Write {
		m.nwriters.Add(-1)
	}
	if cap(m.waiters) > 64 && len(m.waiters) < cap(m.waiters)/4 {
		m.waiters = append([]*waiter(nil), m.waiters...)
	}
	m.wmu.Unlock()
	for k := range w.rh {
		r := &w.rh[k]
		rm := r.m
		rm.wmu.Lock()
		last := len(rm.rhWaiters) - 1
		if r.idx != last {
			moved := rm.rhWaiters[last]
			rm.rhWaiters[r.idx] = moved
			moved.w.rh[moved.k].idx = r.idx
		}
		rm.rhWaiters[last] = rhWait{}
		rm.rhWaiters = rm.rhWaiters[:last]
		rm.nrh.Add(-1)
		if cap(rm.rhWaiters) > 64 && len(rm.rhWaiters) < cap(rm.rhWaiters)/4 {
			rm.rhWaiters = append([]rhWait(nil), rm.rhWaiters...)
		}
		rm.wmu.Unlock()
		r.m = nil
	}
	w.rh = w.rh[:0]
	w.selfWait = false
	w.lock = 0
	w.meta = nil
	nwaiting.Add(-1)
}

// endWait records a finished wait; the caller then records the acquisition.
func endWait(c *lockCore, w *waiter, id int64, mode Mode, ctx context.Context) (stack uint32) {
	now := nanotime()
	meta, since, stack, holder, holderStack := w.meta, w.since, w.stack, w.holder, w.holderStack
	w.unregister()

	wait := now - since
	addStatCtx(ctx, StatWait, stack, meta, mode, 1, wait)
	addStatCtx(ctx, StatWaitByHolder, holderStack, meta, mode, 1, wait)
	if wait >= minWaitSubscribed() {
		publishEvent(Event{
			Kind: EventWait, Lock: meta.info(), Mode: mode, Goroutine: id,
			Start: wallTime(since), Duration: durationNS(wait), Stack: stackPCs(stack),
			Holder: holder, HolderStack: stackPCs(holderStack), Context: ctx,
		})
	}
	return stack
}

func (w *waiter) wants() string {
	if w.mode == Read {
		return "read lock"
	}
	return "write lock"
}
