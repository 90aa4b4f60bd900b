package debugmutex

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The wait-for graph.
//
// A goroutine that finds a lock busy becomes a waiter: its record says which
// lock it wants and how, and it is added to the list of waiting goroutines.
// Then, before it blocks, the graph is searched for a cycle through it:
// a writer is blocked by the lock's writer and by every goroutine that
// read-holds it; a reader is blocked by the writer and by the writers queued
// for the lock (Go's RWMutex makes new readers wait behind a queued writer).
// Only waiting goroutines can be on a cycle, so the search walks the waiting
// list, not every goroutine. The last goroutine to block closes the cycle
// and finds it, at once.
//
// A goroutine blocked on a lock it holds itself is usually a recursive lock,
// but Go allows a lock to be unlocked by another goroutine (a mutex used as a
// baton). So such a wait is reported only if it lasts the recursive grace
// period (default 1s) with the lock still held by that goroutine, and never
// for a lock that has already been unlocked by a goroutine other than the one
// that locked it.

type waiter struct {
	g      *gstate
	active bool
	core   *lockCore
	meta   *lockMeta
	mode   Mode
	since  int64 // nanotime the wait began
	stack  uint32
	pc1    uintptr
	pc2    uintptr
	ctx    context.Context

	holder      int64  // writer holding the lock when the wait began
	holderStack uint32 // its acquire stack, or site

	selfWait     bool  // waits for a lock it holds itself
	selfSeq      int64 // nanotime after which the self-wait is reported
	reportedLong bool
}

var (
	waitMu  sync.Mutex
	waiting []*waiter // guarded by waitMu
)

// beginWait registers the calling goroutine as waiting for c and checks for
// a deadlock before it blocks. fp is the lock method's frame.
func (c *lockCore) beginWait(g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, ctx context.Context) *waiter {
	now := nanotime()
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(typ, pc1, pc2)
	stack := captureStack(fp)

	// Lock order first: an inversion is worth reporting even (especially)
	// when this wait then deadlocks.
	if g != nil && g.n > 0 {
		if g.holes || g.hasReleased() {
			g.trim()
		}
		if top := g.top(); top != nil {
			chain := chainMix(top.chain, c, mode)
			if !chainKnown(chain) {
				lockOrderSlow(g, id, c, meta, mode, fp, chain)
			}
		}
	}

	var w *waiter
	if g != nil {
		w = &g.wait
	} else {
		w = &waiter{g: &gstate{goid: id}}
	}
	holder := ldInt64(&c.holder)
	*w = waiter{
		g: w.g, core: c, meta: meta, mode: mode, since: now, stack: stack,
		pc1: pc1, pc2: pc2, ctx: ctx, holder: holder,
	}
	if holder != 0 {
		if he := c.writerEntry(holder); he != nil {
			w.holderStack = he.stackOrSite()
		}
	}

	waitMu.Lock()
	w.active = true
	waiting = append(waiting, w)
	cycle := findCycle(w)
	if len(cycle) == 1 && atomic.LoadInt32(&c.handedOff) == 0 {
		w.selfWait = true
		w.selfSeq = now + cfg.recursiveGrace.Load()
	}
	var rep *Report
	if len(cycle) > 1 {
		rep = deadlockReport(cycle)
	}
	waitMu.Unlock()

	if rep != nil {
		emit(rep, true)
	}
	if w.selfWait {
		kickWatchdogAfter(cfg.recursiveGrace.Load())
	}
	return w
}

// endWait records a finished wait and the acquisition that ended it.
func (c *lockCore) endWait(w *waiter, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, ctx context.Context) {
	now := nanotime()
	waitMu.Lock()
	for i, x := range waiting {
		if x == w {
			last := len(waiting) - 1
			waiting[i] = waiting[last]
			waiting[last] = nil
			waiting = waiting[:last]
			break
		}
	}
	w.active = false
	waitMu.Unlock()

	wait := now - w.since
	addStat(StatWait, w.stack, w.meta, mode, 1, wait)
	addStat(StatWaitByHolder, w.holderStack, w.meta, mode, 1, wait)
	if wait >= minWaitSubscribed() {
		publishEvent(Event{
			Kind: EventWait, Lock: w.meta.info(), Mode: mode, Goroutine: id,
			Start: wallTime(w.since), Duration: durationNS(wait), Stack: stackPCs(w.stack),
			Holder: w.holder, HolderStack: stackPCs(w.holderStack), Context: ctx,
		})
	}
	c.acquired(g, id, fp, typ, mode, false, ctx, now)
}

// findCycle returns the waiters on a wait-for cycle through start, start
// first, or nil. A cycle of one is a goroutine waiting for itself. Callers
// hold waitMu.
func findCycle(start *waiter) []*waiter {
	path := []*waiter{start}
	seen := map[*gstate]bool{start.g: true}
	var dfs func(w *waiter) []*waiter
	dfs = func(w *waiter) []*waiter {
		for _, b := range blockers(w) {
			if b == start {
				return path
			}
			if seen[b.g] {
				continue
			}
			seen[b.g] = true
			path = append(path, b)
			if r := dfs(b); r != nil {
				return r
			}
			path = path[:len(path)-1]
		}
		return nil
	}
	return dfs(start)
}

// blockers returns the waiting goroutines (as their waiters) that keep w
// waiting. Goroutines that are not waiting cannot be on a cycle and are
// left out. Callers hold waitMu.
func blockers(w *waiter) []*waiter {
	c := w.core
	var out []*waiter
	handedOff := atomic.LoadInt32(&c.handedOff) != 0
	if h := ldInt64(&c.holder); h != 0 && !handedOff {
		for _, x := range waiting {
			if x.g.goid == h {
				out = append(out, x)
			}
		}
	}
	for _, x := range waiting {
		switch {
		case w.mode == Write && x.g.findHeldAny(c, Read):
			out = append(out, x)
		case w.mode == Read && x != w && x.core == c && x.mode == Write:
			out = append(out, x)
		}
	}
	return out
}

// findHeldAny reports whether the goroutine holds c in mode. Observers may
// call it: it reads the entries with racy loads.
func (g *gstate) findHeldAny(c *lockCore, mode Mode) bool {
	n := g.count()
	for i := int32(0); i < n; i++ {
		e := g.entry(i)
		if e != nil && e.lock() == c && e.mode() == mode && atomic.LoadInt32(&e.released) == 0 {
			return true
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
	var parts, keys []string
	for i, w := range cycle {
		next := cycle[(i+1)%len(cycle)]
		name := w.meta.Name()
		if w.mode == Read && next.core == w.core && next.mode == Write {
			// Not a holder: a writer queued for the lock, which Go's RWMutex
			// makes new readers wait behind.
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s behind goroutine %d, queued to write-lock it",
				w.g.goid, w.wants(), name, next.g.goid))
		} else {
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s held by goroutine %d",
				w.g.goid, w.wants(), name, next.g.goid))
		}
		keys = append(keys, siteOf(w.pc1, w.pc2).Site())
		r.Locks = appendLock(r.Locks, w.meta)
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: w.g.goid, Role: "waits for " + w.wants(), Lock: name,
			For: durationNS(nanotime() - w.since), Stack: stackFrames(w.stack),
		})
		if hs := holdStackOf(next.g, w.core); len(hs) > 0 {
			r.Goroutines = append(r.Goroutines, GoroutineRef{
				ID: next.g.goid, Role: "holds", Lock: name, Stack: hs,
			})
		}
	}
	r.Summary = "deadlock: " + strings.Join(parts, ", ")
	r.Key = string(KindDeadlock) + "|" + strings.Join(sortedCopy(keys), "|")
	return r
}

// holdStackOf returns where goroutine g acquired c, if it holds it.
func holdStackOf(g *gstate, c *lockCore) []Frame {
	n := g.count()
	for i := int32(0); i < n; i++ {
		e := g.entry(i)
		if e == nil || e.lock() != c || atomic.LoadInt32(&e.released) != 0 {
			continue
		}
		return stackFrames(e.stackOrSite())
	}
	return nil
}

func appendLock(locks []LockRef, m *lockMeta) []LockRef {
	for _, l := range locks {
		if l.ID == m.id {
			return locks
		}
	}
	return append(locks, m.ref())
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
	if hs := holdStackOf(w.g, w.core); len(hs) > 0 {
		r.Goroutines = append(r.Goroutines, GoroutineRef{ID: w.g.goid, Role: "holds", Lock: name, Stack: hs})
	}
	r.Key = string(KindDeadlock) + "|self|" + siteOf(w.pc1, w.pc2).Site()
	return r
}

// checkRecursiveRead reports an RLock of c by a goroutine that read-holds it.
func (c *lockCore) checkRecursiveRead(g *gstate, id int64, fp unsafe.Pointer) {
	if prev := g.findHeld(c, Read); prev != nil {
		c.recursiveRead(g, id, fp, prev)
	}
}

// recursiveRead reports an RLock by a goroutine that already read-holds the
// lock: a potential deadlock (a real one if a writer queues in between).
func (c *lockCore) recursiveRead(g *gstate, id int64, fp unsafe.Pointer, prev *heldEntry) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(rwMutexType, pc1, pc2)
	name := meta.Name()
	first := stackFrames(prev.stackOrSite())
	now := Symbolize(stackPCs(captureStack(fp)))
	r := &Report{
		Kind: KindRecursiveRead, Time: wallTime(nanotime()),
		Summary: fmt.Sprintf("potential deadlock: goroutine %d read-locks %s again while it read-holds it; a writer queued in between would deadlock it",
			id, name),
		Locks: []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{
			{ID: id, Role: "read-locks again", Lock: name, Stack: now},
			{ID: id, Role: "first read-locked", Lock: name, Stack: first},
		},
		Key: string(KindRecursiveRead) + "|" + siteOf(prev.site()).Site() + "|" + siteOf(pc1, pc2).Site(),
	}
	emit(r, true)
}

// unlockOfUnlocked prints the diagnosis sync's fatal error lacks. The caller
// then calls the real unlock, which fails exactly as it does under sync.
func (c *lockCore) unlockOfUnlocked(id int64, fp unsafe.Pointer, typ string, mode Mode) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(typ, pc1, pc2)
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
	if lg := ldInt64(&c.lastUnlockG); lg != 0 {
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: lg, Role: "last unlocked", Lock: name,
			Stack: []Frame{siteOf(ldUintptr(&c.lastUnlockPC), 0)},
		})
	} else {
		r.Summary += " (never unlocked before)"
	}
	// sync throws next: deliver the report, whatever the configured action.
	deliver(r, false)
}

// releaseReadFor releases, on behalf of the goroutine that took it, one read
// hold of c that the calling goroutine does not own (RUnlock from another
// goroutine, which Go allows). It reports false if nobody read-holds c.
func (c *lockCore) releaseReadFor(id int64) bool {
	gtableMu.Lock()
	defer gtableMu.Unlock()
	done := false
	forEachG(func(gid int64, g *gstate) {
		if done || gid == id {
			return
		}
		n := g.count()
		for i := int32(0); i < n; i++ {
			e := g.entry(i)
			if e != nil && e.lock() == c && e.mode() == Read && e.markReleased() {
				done = true
				return
			}
		}
	})
	if done {
		c.markHandedOff()
	}
	return done
}
