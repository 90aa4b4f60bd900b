package debugmutex

import (
	"context"
	"sync/atomic"
	"unsafe"
)

// acquired records a hold that has just been taken. fp is the frame of the
// lock method (not inlined) that the user called, so the acquire site is the
// return address above it.
//
// This is the fast path: everything rare (first use, sampling, nesting,
// deep nesting) is outlined so that an uncontended, unsampled, outermost
// acquisition is a few loads, compares and plain stores.
func acquired(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, try bool, ctx context.Context) {
	acquiredStack(c, g, id, fp, typ, mode, try, ctx, false, 0)
}

// acquiredStack is acquired after a wait (waited), with the acquire stack
// the wait captured (stack, 0 if none). A waited-for hold is always timed.
func acquiredStack(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, try bool, ctx context.Context, waited bool, stack uint32) {
	if atomic.LoadInt32(&c.state)&stateTagMask != addrTag(c) {
		tagOrCheckCopied(c, g, id, fp, typ, mode) // first acquisition, or a copy (copied.go)
	}
	pc1, pc2 := callerPCs(fp)
	lid := ldUint64(&c.id)
	if lid == 0 {
		lid = c.assignID(g)
	}

	// Sampling. Two clock reads cost ten times an uncontended Lock+Unlock,
	// so holds are timed on a sample of acquisitions: every gap-th one, with
	// gaps drawn at random around the lock's period so that periodic programs
	// do not alias. A sampled hold stands for the gap of acquisitions it
	// ends, so sums weighted by gap are unbiased. A lock starts with period 1
	// and doubles it (up to the configured maximum) each time a timed hold is
	// short; a long hold resets it to 1, so locks held for microseconds or
	// more are timed every time, exactly. The very first acquisition of a
	// lock that has no meta yet (not named, never contended) is not timed
	// (the second stands for it) unless a subscriber wants holds: a fresh
	// lock used once costs no clock read and no allocation.
	var weight int32
	if mode == Write {
		c.countdown--
		if c.countdown <= 0 {
			weight = c.sampleWrite()
		}
	} else if p := ldInt32(&c.period); p > 1 && g != nil {
		// A lock whose reads are short: sampled per goroutine (no write
		// to the shared lock). Locks whose holds are long (period 1), and
		// new ones, are timed every time.
		g.rcount--
		if g.rcount <= 0 {
			weight = g.sampleRead(p)
		}
	} else if atomic.AddInt32(&c.rcount, -1) <= 0 {
		weight = c.sampleRead()
	}

	var e *heldEntry
	if g != nil {
		var chain uint64 // computed for nested acquisitions; lazily for outermost ones
		if g.n > 0 {
			chain = nested(c, g, id, fp, typ, mode, try)
		} else if typ == rwMutexType && mode == Write && !try {
			writeOutermost(c)
		}
		if n := g.n; n < inlineHeld {
			e = &g.inline[n]
			stInt32(&g.n, n+1)
		} else {
			e = g.push()
		}
		if e != nil {
			flags := int32(0)
			if mode == Read {
				flags = flagRead
			}
			if typ == rwMutexType {
				flags |= flagRW
			}
			if try {
				flags |= flagTry
			}
			if atomic.LoadInt32(&c.state)&stateHandedOff != 0 {
				flags |= flagBaton
			}
			stUintptr(&e.pc1, pc1)
			stUintptr(&e.pc2, pc2)
			stUint64(&e.lockID, lid)
			stPtr(&e.meta, atomic.LoadPointer(&c.meta))
			stUint32(&e.gen, e.gen+1)
			e.weight = weight
			e.chain = chain
			if ctx != nil {
				e.ctx = ctx
			}
			if weight != 0 || waited {
				flags |= flagExact
				e.timed(fp, stack)
			} else {
				stUint32(&e.stack, 0)
				stInt64(&e.start, 0)
			}
			stInt32(&e.flags, flags)
			stUintptr(&e.lock, uintptr(unsafe.Pointer(c)))
			if mode == Read {
				if st := atomic.LoadInt32(&c.state); st&(stateReadHandedOff|stateReadSeen) != stateReadSeen {
					c.readState(g, e, st)
				}
			}
		}
	}
	if mode == Write {
		stInt64(&c.holder, id)
	}
}

// nested handles an acquisition by a goroutine that already holds locks:
// tidy its list, then check the lock order unless this chain of held locks
// was checked before. It returns the new chain hash (0: compute it lazily).
//
//go:noinline
func nested(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, try bool) uint64 {
	if g.holes || g.hasReleased() {
		g.trim()
	}
	top := g.top()
	if top == nil {
		return 0
	}
	chain := chainMix(g.chainOf(top), ldUint64(&c.id), mode)
	if !try {
		checkOrder(g, id, c, typ, mode, fp, chain)
		if typ == rwMutexType && mode == Write {
			guardKnownChain(c, g)
		}
	}
	return chain
}

// unlockWrite is Unlock's bookkeeping: the common case (the holder unlocks
// its newest hold, untimed, with nothing pending) inline, the rest outlined.
// It returns the report whose configured action is a panic, if the unlock
// made one: the caller panics with it after the real unlock.
func unlockWrite(c *lockCore, id int64, fp unsafe.Pointer, typ string) *Report {
	if ldInt64(&c.holder) == id {
		if g := probeG(id); g != nil && g.n > 0 {
			if e := g.entry(g.n - 1); e.lock == uintptr(unsafe.Pointer(c)) && ldInt64(&e.start) == 0 && e.flags&flagRead == 0 && e.pend == nil {
				c.noteUnlock(id, fp)
				stInt64(&c.holder, 0)
				g.pop(e)
				return nil
			}
		}
	}
	return unlockWriteSlow(c, id, fp, typ)
}

func unlockWriteSlow(c *lockCore, id int64, fp unsafe.Pointer, typ string) *Report {
	if syncUnlocked(c, typ, Write) {
		unlockOfUnlocked(c, id, fp, typ, Write)
		return nil
	}
	return releaseWrite(c, id, fp, typ)
}

// releaseWrite clears the writer's hold before the real unlock, in the
// general case: timed holds, pending lock-order checks, and unlocks by a
// goroutine other than the holder. id is the unlocking goroutine, fp the
// frame of the unlock method.
func releaseWrite(c *lockCore, id int64, fp unsafe.Pointer, typ string) *Report {
	holder := ldInt64(&c.holder)
	var e *heldEntry
	if holder == id {
		if g := probeG(id); g != nil {
			e = g.findHeld(c, Write)
		} else if g := findG(id); g != nil {
			e = g.findHeld(c, Write)
		}
	} else {
		e = c.writerEntry(holder)
	}
	if e != nil && ldInt64(&e.start) != 0 {
		c.released(e, typ, Write)
	}
	c.noteUnlock(id, fp)
	stInt64(&c.holder, 0)
	if holder != id {
		// Unlocked by another goroutine than the one that locked it:
		// legal in Go (a lock handed over). The owner drops the entry, and
		// with it whatever this hold seemed to say about its lock order.
		if e != nil {
			e.markReleased()
		}
		c.markHandedOff()
		return nil
	}
	if e != nil {
		return popReporting(e.rec, e)
	}
	if g := findG(id); g != nil && g.untrackedHeld > 0 {
		g.untrackedHeld--
	}
	return nil
}

// popReporting pops the owner's own released hold e, committing what was
// pending on it, and returns the report made then whose action is a panic.
func popReporting(g *gstate, e *heldEntry) *Report {
	var r *Report
	if e.pend != nil {
		r = commitPending(g, e)
	}
	g.pop(e)
	return r
}

// beginWait registers the calling goroutine as waiting for c and checks for
// a deadlock before it blocks. fp is the lock method's frame. It returns the
// report whose configured action is a panic, if one was made: the caller
// panics with it instead of blocking.
func beginWait(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode) (*waiter, *Report) {
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
		endWaitAbandoned(c, w)
	}
	return w, panicWith
}

// tryFailed counts a failed TryLock/TryRLock at its call site. The caller's
// frame is fp.
func tryFailed(c *lockCore, fp unsafe.Pointer, typ string, mode Mode) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(nil, typ, pc1, pc2)
	tryLivelock(c, fp, meta, pc1, pc2) // leakproof_livelock.go
	h := (uint64(pc1)*0x9E3779B97F4A7C15 ^ meta.id*0xBF58476D1CE4E5B9 ^ uint64(mode)) >> (64 - trySlotsBits)
	for p := uint64(0); p < 32; p++ {
		s := &tryTab[(h+p)&(trySlots-1)]
		switch s.state.Load() {
		case 2:
			if s.pc1 == pc1 && s.lockID == meta.id && s.mode == mode {
				s.count.Add(1)
				return
			}
		case 0:
			if s.state.CompareAndSwap(0, 1) {
				s.pc1, s.pc2, s.lockID, s.meta, s.mode = pc1, pc2, meta.id, meta, mode
				s.count.Store(1)
				s.state.Store(2)
				return
			}
		}
	}
	tryOverflow.Add(1)
}
