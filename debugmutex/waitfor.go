package debugmutex

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"unsafe"
)

// The wait-for graph.
//
// A goroutine that finds a lock busy becomes a waiter of that lock: its
// record says which lock it wants and how, and it joins the lock's waiter
// set (in the lock's meta), and, for every lock it read-holds, that lock's
// set of waiting read-holders. Then, before it blocks, the graph is searched
// from it through holders only: a writer is blocked by the lock's writer and
// by the waiting goroutines that read-hold it; a reader by the writer and by
// the writers queued for the lock (Go's RWMutex makes new readers wait
// behind a queued writer; all queued writers of one lock are blocked by the
// same goroutines, so one of them stands for all). Goroutines that are not
// waiting cannot be on a cycle, so the search visits only waiting goroutines
// reachable from this one: its cost does not grow with the number of
// goroutines waiting elsewhere. The last goroutine to block closes a cycle
// and finds it, at once.
//
// Hand-offs: Go allows a lock to be unlocked by a goroutine other than the
// one that locked it. Once that has happened to a lock, its holder is not
// taken for the goroutine that will release it: such a lock is not an edge
// of the wait-for graph.
//
// A goroutine blocked on a lock it holds itself is usually a recursive lock,
// but the lock may be a baton another goroutine will unlock. Where the
// runtime can prove a goroutine blocked forever (leakproof.go), such a wait
// is reported when it proves it, and never otherwise. Where it cannot, the
// wait is reported only if it lasts the recursive grace period (default 1s)
// with the lock still held by that goroutine, and never for a lock that has
// been unlocked by a goroutine other than the one that locked it.
//
// The search runs under waitMu, one mutex for the whole graph: the work done
// under it is the registration (a few appends) and the search (the waiters
// reachable through holders), so the critical section stays short however
// many goroutines wait. Lock order inside lockscope: see lockrank.go.

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

// beginWait registers the calling goroutine as waiting for c and checks for
// a deadlock before it blocks. fp is the lock method's frame. It returns the
// report whose configured action is a panic, if one was made: the caller
// panics with it instead of blocking.
func (c *lockCore) beginWait(g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode) (*waiter, *Report) {
	now := nanotime()
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(g, typ, pc1, pc2)
	stack := captureStack(fp)
	var reports []*Report

	// Lock order first: what this goroutine holds while it waits is a
	// dependency, checked exactly as for an acquisition that did not wait.
	if g != nil && g.n > 0 {
		if g.holes || g.hasReleased() {
			g.trim()
		}
		if top := g.top(); top != nil {
			chain := chainMix(g.chainOf(top), ldUint64(&c.id), mode)
			checkOrder(g, id, c, typ, mode, fp, chain)
		}
	}

	var w *waiter
	if g != nil {
		w = &g.wait
	} else {
		w = &waiter{g: &gstate{goid: id}}
	}
	holder := ldInt64(&c.holder)
	var holderStack uint32
	if he := c.writerEntry(holder); he != nil {
		holderStack = he.stackOrSite()
	}

	// Register: shared, so that waits on different locks do not queue
	// on one mutex.
	waitMu.RLock()
	w.lock, w.lockID, w.meta, w.typ, w.mode = uintptr(unsafe.Pointer(c)), ldUint64(&c.id), meta, typ, mode
	w.since, w.stack, w.pc1, w.pc2, w.holder, w.holderStack = now, stack, pc1, pc2, holder, holderStack
	w.rh = w.rh[:0]
	w.visit, w.selfWait, w.selfSeq, w.static, w.reportedLong = 0, false, 0, false, false
	w.consulted, w.proven = 0, false
	meta.wmu.Lock()
	w.idx = len(meta.waiters)
	meta.waiters = append(meta.waiters, w)
	if mode == Write {
		meta.nwriters.Add(1)
	}
	meta.wmu.Unlock()
	if g != nil {
		n := g.n
		for i := int32(0); i < n; i++ {
			e := g.entry(i)
			if !e.live() || e.mode() != Read || e.isUncertain() {
				continue
			}
			if m := entryMeta(g, e); m != nil {
				m.wmu.Lock()
				w.rh = append(w.rh, rhReg{m: m, idx: len(m.rhWaiters)})
				m.rhWaiters = append(m.rhWaiters, rhWait{w: w, e: e, gen: e.gen, k: len(w.rh) - 1})
				m.nrh.Add(1)
				m.wmu.Unlock()
			}
		}
	}
	nwaiting.Add(1)
	w.active.Store(true)
	waitMu.RUnlock()

	// Search, exclusively, only if a cycle through w is possible now: w's
	// lock is held by a waiting goroutine (or by w's own), or waiting
	// read-holders or queued writers of it could block w. Of two goroutines
	// closing a cycle, each sets its active flag before it looks at the
	// other's, so at least one of them sees the other and searches.
	selfWait := false // w.selfWait as set here: the watchdog clears it under waitMu
	if w.mightCycle(id) {
		waitMu.Lock()
		cycle := findCycle(w)
		if len(cycle) == 1 && !c.handedOff() {
			w.selfWait = true
			w.selfSeq = now + cfg.recursiveGrace.Load()
			w.static = proofAvailable() && staticAddr(unsafe.Pointer(c))
			selfWait = true
		}
		if len(cycle) > 1 {
			// The goroutines of the cycle hold what they hold for good:
			// what was pending on their holds is now proven, and committed
			// (they are blocked, so their records stand still while waitMu
			// is held). Those reports go first: they say how the deadlock
			// came about, and a program that ends on a deadlock report
			// (LOCKSCOPE_ON_REPORT=exit, or its own handler) has them.
			dl := deadlockReport(cycle)
			for _, x := range cycle {
				reports = append(reports, commitAllPending(x.g)...)
			}
			reports = append(reports, dl)
		}
		waitMu.Unlock()
	}

	panicWith := emitAll(reports)
	if selfWait {
		// With the runtime's proof, ask it as soon as the goroutine has
		// parked; without it, or for a package variable (which the runtime
		// always reaches), decide when the grace ends.
		if proofAvailable() && !w.static {
			kickWatchdogAfter(int64(selfWaitProofDelay))
		} else {
			kickWatchdogAfter(cfg.recursiveGrace.Load())
		}
	}
	if panicWith != nil {
		c.endWaitAbandoned(w)
	}
	return w, panicWith
}

// endWaitAbandoned unregisters a wait that will not happen (the configured
// action panics instead).
func (c *lockCore) endWaitAbandoned(w *waiter) { w.unregister() }

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
func (c *lockCore) endWait(w *waiter, id int64, mode Mode, ctx context.Context) (stack uint32) {
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

// findCycle returns the waiters on a wait-for cycle through start, start
// first, or nil. A cycle of one is a goroutine waiting for itself. Callers
// hold waitMu.
func findCycle(start *waiter) []*waiter {
	searchEpoch++
	s := search{start: start, epoch: searchEpoch, path: []*waiter{start}}
	start.visit = s.epoch
	if s.dfs(start) {
		return s.path
	}
	return nil
}

type search struct {
	start *waiter
	epoch uint64
	path  []*waiter
}

func (s *search) dfs(x *waiter) bool {
	return forBlockers(x, func(b *waiter) bool {
		if b == s.start {
			return true
		}
		if b.visit == s.epoch {
			return false
		}
		b.visit = s.epoch
		s.path = append(s.path, b)
		if s.dfs(b) {
			return true
		}
		s.path = s.path[:len(s.path)-1]
		return false
	})
}

// forBlockers calls f for each waiting goroutine (as its waiter) that keeps
// x waiting, until f returns true; it reports whether f did. Goroutines that
// are not waiting cannot be on a cycle and are left out. waitMu held.
func forBlockers(x *waiter, f func(*waiter) bool) bool {
	c := x.core()
	if c.handedOff() {
		return false
	}
	if h := ldInt64(&c.holder); h != 0 {
		if hg := findG(h); hg != nil && hg.wait.active.Load() && hg.wait.g == hg {
			if f(&hg.wait) {
				return true
			}
		}
	}
	m := x.meta
	if x.mode == Write {
		for i := 0; i < len(m.rhWaiters); i++ {
			r := m.rhWaiters[i]
			if r.w.active.Load() && r.e.live() && ldUint32(&r.e.gen) == r.gen && f(r.w) {
				return true
			}
		}
		return false
	}
	for _, q := range m.waiters {
		if q != x && q.mode == Write {
			return f(q) // every queued writer is blocked by the same goroutines
		}
	}
	return false
}

func (w *waiter) wants() string {
	if w.mode == Read {
		return "read lock"
	}
	return "write lock"
}

func deadlockReport(cycle []*waiter) *Report {
	r := &Report{Kind: KindDeadlock, Time: wallTime(nanotime())}
	metas := make([]*lockMeta, len(cycle))
	for i, w := range cycle {
		metas[i] = w.meta
	}
	names := displayNames(metas)
	var parts, keys []string
	for i, w := range cycle {
		next := cycle[(i+1)%len(cycle)]
		name := names[w.meta.id]
		if w.mode == Read && next.lock == w.lock && next.mode == Write {
			// Not a holder: a writer queued for the lock, which Go's RWMutex
			// makes new readers wait behind.
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s behind goroutine %d, queued to write-lock it",
				w.g.goid, w.wants(), name, next.g.goid))
		} else {
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s held by goroutine %d",
				w.g.goid, w.wants(), name, next.g.goid))
		}
		keys = append(keys, keySite(w.stack, w.pc1, w.pc2))
		r.Locks = appendLock(r.Locks, w.meta, name)
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: w.g.goid, Role: "waits for " + w.wants(), Lock: name,
			For: durationNS(nanotime() - w.since), Stack: stackFrames(w.stack),
		})
		if hs, site := holdStackOf(next.g, w.lock, w.lockID); len(hs) > 0 {
			r.Goroutines = append(r.Goroutines, GoroutineRef{
				ID: next.g.goid, Role: "holds", Lock: name, Stack: hs, SiteOnly: site,
			})
		}
	}
	r.Summary = "deadlock: " + strings.Join(parts, ", ")
	r.Key = string(KindDeadlock) + "|" + strings.Join(sortedCopy(keys), "|")
	return r
}

// holdStackOf returns where goroutine g acquired the lock (addr, id), if it
// holds it.
func holdStackOf(g *gstate, addr uintptr, id uint64) (stack []Frame, siteOnly bool) {
	n := g.count()
	for i := int32(0); i < n; i++ {
		e := g.entry(i)
		if e == nil || e.addr() != addr || ldUint64(&e.lockID) != id || atomic.LoadInt32(&e.released) != 0 {
			continue
		}
		return stackFrames(e.stackOrSite()), e.siteOnly()
	}
	return nil, false
}

func appendLock(locks []LockRef, m *lockMeta, name string) []LockRef {
	for _, l := range locks {
		if l.ID == m.id {
			return locks
		}
	}
	return append(locks, LockRef{ID: m.id, Name: name, Type: m.typ})
}

// displayNames names the locks of one report: their names, with the lock id
// added where two different locks would otherwise share one.
func displayNames(metas []*lockMeta) map[uint64]string {
	out := make(map[uint64]string, len(metas))
	byName := map[string]map[uint64]bool{}
	for _, m := range metas {
		n := m.Name()
		out[m.id] = n
		if byName[n] == nil {
			byName[n] = map[uint64]bool{}
		}
		byName[n][m.id] = true
	}
	for id, n := range out {
		if len(byName[n]) > 1 {
			out[id] = fmt.Sprintf("%s (#%d)", n, id)
		}
	}
	return out
}

// selfWaitReport is made by the watchdog for a goroutine that has waited a
// whole grace period for a lock it holds itself.
func selfWaitReport(w *waiter) *Report {
	name := w.meta.Name()
	r := &Report{
		Kind: KindDeadlock, Time: wallTime(w.since),
		Summary: fmt.Sprintf("deadlock: goroutine %d waits for %s %s, which it holds itself (recursive locking)",
			w.g.goid, w.wants(), name),
		Locks: []LockRef{w.meta.ref()},
		Goroutines: []GoroutineRef{{
			ID: w.g.goid, Role: "waits for " + w.wants(), Lock: name,
			For: durationNS(nanotime() - w.since), Stack: stackFrames(w.stack),
		}},
	}
	if hs, site := holdStackOf(w.g, w.lock, w.lockID); len(hs) > 0 {
		r.Goroutines = append(r.Goroutines, GoroutineRef{ID: w.g.goid, Role: "holds", Lock: name, Stack: hs, SiteOnly: site})
	}
	r.Key = string(KindDeadlock) + "|self|" + keySite(w.stack, w.pc1, w.pc2)
	return r
}

// checkRecursiveRead notes an RLock of c by a goroutine that read-holds it.
// Whether it is a hazard depends on who releases the first hold: if this
// goroutine does (after the second RLock), a writer queued in between would
// have deadlocked it; if another goroutine does (a read transaction handed
// over), nothing was wrong. So it is pending on the first hold, and reported
// when this goroutine releases that hold itself.
func (c *lockCore) checkRecursiveRead(g *gstate, id int64, fp unsafe.Pointer) {
	if prev := g.findHeld(c, Read); prev != nil && !prev.isUncertain() {
		if prev.pend == nil || prev.pend.rr == nil {
			c.recursiveRead(g, id, fp, prev)
		}
	}
}

//go:noinline
func (c *lockCore) recursiveRead(g *gstate, id int64, fp unsafe.Pointer, prev *heldEntry) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(g, rwMutexType, pc1, pc2)
	if prev.getMeta() == nil {
		stPtr(&prev.meta, unsafe.Pointer(meta))
	}
	if prev.pend == nil {
		prev.pend = new(pending)
	}
	prev.pend.rr = &pendingRR{goid: id, stack: captureStack(fp), pc1: pc1, pc2: pc2}
}

// recursiveReadReport is made when a goroutine releases a read hold under
// which it read-locked the same lock again.
func recursiveReadReport(prev *heldEntry, rr *pendingRR) *Report {
	meta := prev.getMeta()
	name := meta.Name()
	return &Report{
		Kind: KindRecursiveRead, Time: wallTime(nanotime()),
		Summary: fmt.Sprintf("potential deadlock: goroutine %d read-locked %s again while it read-held it; a writer queued in between would have deadlocked it",
			rr.goid, name),
		Locks: []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{
			{ID: rr.goid, Role: "read-locked again", Lock: name, Stack: stackFrames(rr.stack)},
			{ID: rr.goid, Role: "first read-locked", Lock: name, Stack: stackFrames(prev.stackOrSite()), SiteOnly: prev.siteOnly()},
		},
		Key: string(KindRecursiveRead) + "|" + keySite(prev.stackOrSite(), 0, 0) + "|" + keySite(rr.stack, rr.pc1, rr.pc2),
	}
}

// unlockOfUnlocked prints the diagnosis sync's fatal error lacks. The caller
// has checked that sync will throw, and then calls the real unlock, which
// fails exactly as it does under sync.
func (c *lockCore) unlockOfUnlocked(id int64, fp unsafe.Pointer, typ string, mode Mode) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(nil, typ, pc1, pc2)
	name := meta.Name()
	verb := "Unlock"
	if mode == Read {
		verb = "RUnlock"
	}
	r := &Report{
		Kind: KindUnlockUnlocked, Time: wallTime(nanotime()),
		Summary: fmt.Sprintf("%s of unlocked %s %s by goroutine %d", verb, typ, name, id),
		Locks:   []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{
			{ID: id, Role: "unlocks", Lock: name, Stack: stackFrames(captureStack(fp))},
		},
		Key: string(KindUnlockUnlocked) + "|" + siteOf(pc1, pc2).Site(),
	}
	if pc := ldUintptr(&c.lastUnlockPC); pc != 0 {
		lg := int64(ldUint32(&c.lastUnlockG))
		role := "last unlocked"
		if typ == rwMutexType {
			role = "last write-unlocked" // read unlocks are not recorded
		}
		if lg == 0 {
			role += " (goroutine id not recorded)"
		}
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: lg, Role: role, Lock: name,
			Stack: []Frame{siteOf(pc, 0)},
		})
	} else {
		r.Summary += " (never unlocked before)"
	}
	// sync throws next: deliver the report, whatever the configured action.
	deliver(r, false)
}

// releaseReadFor releases, on behalf of the goroutine that took it, one read
// hold of c that the calling goroutine does not own (RUnlock from another
// goroutine, which Go allows). It reports false if no record has one.
func (c *lockCore) releaseReadFor(id int64) bool {
	addr, lid := uintptr(unsafe.Pointer(c)), ldUint64(&c.id)
	// Marking happens under the lock's reader mutex, as the owners' claims
	// do once the flag is set (see RWMutex.runlock).
	m := c.metaFor(nil, rwMutexType, 0, 0)
	gtableMu.Lock() // before rmu: lockrank.go
	defer gtableMu.Unlock()
	m.rmu.Lock()
	defer m.rmu.Unlock()
	atomicOr32(&c.state, stateReadHandedOff)
	c.markHandedOff()
	for e, gen := range m.readers {
		if ldUint32(&e.gen) == gen && e.addr() == addr && ldUint64(&e.lockID) == lid &&
			atomic.LoadInt64(&e.rec.goid) != id && e.markReleased() {
			return true
		}
	}
	// A hold taken before its lock was known to be handed off is not
	// registered: search the records, and mark every such hold uncertain
	// (holds taken from now on are marked as they are registered).
	done := false
	forEachG(func(gid int64, g *gstate) {
		n := g.count()
		for i := int32(0); i < n; i++ {
			e := g.entry(i)
			if e == nil || e.addr() != addr || ldUint64(&e.lockID) != lid || e.mode() != Read || !e.live() {
				continue
			}
			atomic.StoreInt32(&e.uncertain, 1)
			if !done && gid != id && e.markReleased() {
				done = true
			}
		}
	})
	return done
}
