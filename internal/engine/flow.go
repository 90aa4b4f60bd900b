package engine

import (
	"context"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/lockorder"
	"github.com/lockscope/lockscope/internal/misuse"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/internal/waitfor"
	"github.com/lockscope/lockscope/report"
)

// Acquired records a hold that has just been taken. fp is the frame of the
// lock method (not inlined) that the user called, so the acquire site is the
// return address above it.
//
// This is the fast path: everything rare (first use, sampling, nesting,
// deep nesting) is outlined so that an uncontended, unsampled, outermost
// acquisition is a few loads, compares and plain stores.
func Acquired(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode, try bool, ctx context.Context) {
	AcquiredStack(c, g, id, fp, typ, mode, try, ctx, false, 0)
}

// AcquiredStack is acquired after a wait (waited), with the acquire stack
// the wait captured (stack, 0 if none). A waited-for hold is always timed.
func AcquiredStack(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode, try bool, ctx context.Context, waited bool, stack uint32) {
	if atomic.LoadInt32(&c.State)&record.StateTagMask != record.AddrTag(c) {
		misuse.TagOrCheckCopied(c, g, id, fp, typ, mode) // first acquisition, or a copy (copied.go)
	}
	pc1, pc2 := rt.CallerPCs(fp)
	lid := record.LdUint64(&c.Id)
	if lid == 0 {
		lid = c.AssignID(g)
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
	if mode == report.Write {
		c.Countdown--
		if c.Countdown <= 0 {
			weight = c.SampleWrite()
		}
	} else if p := rt.LdInt32(&c.Period); p > 1 && g != nil {
		// A lock whose reads are short: sampled per goroutine (no write
		// to the shared lock). Locks whose holds are long (period 1), and
		// new ones, are timed every time.
		g.Rcount--
		if g.Rcount <= 0 {
			weight = g.SampleRead(p)
		}
	} else if atomic.AddInt32(&c.Rcount, -1) <= 0 {
		weight = c.SampleRead()
	}

	var e *record.HeldEntry
	if g != nil {
		var chain uint64 // computed for nested acquisitions; lazily for outermost ones
		if g.N > 0 {
			chain = nested(c, g, id, fp, typ, mode, try)
		} else if typ == record.RwMutexType && mode == report.Write && !try {
			lockorder.WriteOutermost(c)
		}
		if n := g.N; n < record.InlineHeld {
			e = &g.Inline[n]
			rt.StInt32(&g.N, n+1)
		} else {
			e = g.Push()
		}
		if e != nil {
			flags := int32(0)
			if mode == report.Read {
				flags = record.FlagRead
			}
			flags |= record.TypeFlags(typ) // flagRW, flagOnce...
			if try {
				flags |= record.FlagTry
			}
			if atomic.LoadInt32(&c.State)&record.StateHandedOff != 0 {
				flags |= record.FlagBaton
			}
			rt.StUintptr(&e.Pc1, pc1)
			rt.StUintptr(&e.Pc2, pc2)
			record.StUint64(&e.LockID, lid)
			rt.StPtr(&e.Meta, atomic.LoadPointer(&c.Meta))
			rt.StUint32(&e.Gen, e.Gen+1)
			e.Weight = weight
			e.Chain = chain
			if ctx != nil {
				e.Ctx = ctx
			}
			if weight != 0 || waited {
				flags |= record.FlagExact
				e.Timed(fp, stack)
			} else {
				rt.StUint32(&e.Stack, 0)
				rt.StInt64(&e.Start, 0)
			}
			rt.StInt32(&e.Flags, flags)
			rt.StUintptr(&e.Lock, uintptr(unsafe.Pointer(c)))
			if mode == report.Read {
				if st := atomic.LoadInt32(&c.State); st&(record.StateReadHandedOff|record.StateReadSeen) != record.StateReadSeen {
					c.ReadState(g, e, st)
				}
			}
		}
	}
	if mode == report.Write {
		rt.StInt64(&c.Holder, id)
	}
}

// nested handles an acquisition by a goroutine that already holds locks:
// tidy its list, then check the lock order unless this chain of held locks
// was checked before. It returns the new chain hash (0: compute it lazily).
//
//go:noinline
func nested(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode, try bool) uint64 {
	if g.Holes || g.HasReleased() {
		g.Trim()
	}
	top := g.Top()
	if top == nil {
		return 0
	}
	chain := record.ChainMix(g.ChainOf(top), record.LdUint64(&c.Id), mode)
	if !try {
		lockorder.CheckOrder(g, id, c, typ, mode, fp, chain)
		if typ == record.RwMutexType && mode == report.Write {
			lockorder.GuardKnownChain(c, g)
		}
	}
	return chain
}

// UnlockWrite is Unlock's bookkeeping: the common case (the holder unlocks
// its newest hold, untimed, with nothing pending) inline, the rest outlined.
// It returns the report whose configured action is a panic, if the unlock
// made one: the caller panics with it after the real unlock.
func UnlockWrite(c *record.LockCore, id int64, fp unsafe.Pointer, typ string) *report.Report {
	if rt.LdInt64(&c.Holder) == id {
		if g := record.ProbeG(id); g != nil && g.N > 0 {
			if e := g.Entry(g.N - 1); e.Lock == uintptr(unsafe.Pointer(c)) && rt.LdInt64(&e.Start) == 0 && e.Flags&record.FlagRead == 0 && e.Pend == nil {
				c.NoteUnlock(id, fp)
				rt.StInt64(&c.Holder, 0)
				g.Pop(e)
				return nil
			}
		}
	}
	return unlockWriteSlow(c, id, fp, typ)
}

func unlockWriteSlow(c *record.LockCore, id int64, fp unsafe.Pointer, typ string) *report.Report {
	if record.SyncUnlocked(c, typ, report.Write) {
		misuse.UnlockOfUnlocked(c, id, fp, typ, report.Write)
		return nil
	}
	return releaseWrite(c, id, fp, typ)
}

// releaseWrite clears the writer's hold before the real unlock, in the
// general case: timed holds, pending lock-order checks, and unlocks by a
// goroutine other than the holder. id is the unlocking goroutine, fp the
// frame of the unlock method.
func releaseWrite(c *record.LockCore, id int64, fp unsafe.Pointer, typ string) *report.Report {
	holder := rt.LdInt64(&c.Holder)
	var e *record.HeldEntry
	if holder == id {
		if g := record.ProbeG(id); g != nil {
			e = g.FindHeld(c, report.Write)
		} else if g := record.FindG(id); g != nil {
			e = g.FindHeld(c, report.Write)
		}
	} else {
		e = c.WriterEntry(holder)
	}
	if e != nil && rt.LdInt64(&e.Start) != 0 {
		c.Released(e, typ, report.Write)
	}
	c.NoteUnlock(id, fp)
	rt.StInt64(&c.Holder, 0)
	if holder != id {
		// Unlocked by another goroutine than the one that locked it:
		// legal in Go (a lock handed over). The owner drops the entry, and
		// with it whatever this hold seemed to say about its lock order.
		if e != nil {
			e.MarkReleased()
		}
		c.MarkHandedOff()
		return nil
	}
	if e != nil {
		return PopReporting(e.Rec, e)
	}
	if g := record.FindG(id); g != nil && g.UntrackedHeld > 0 {
		g.UntrackedHeld--
	}
	return nil
}

// PopReporting pops the owner's own released hold e, committing what was
// pending on it, and returns the report made then whose action is a panic.
func PopReporting(g *record.Gstate, e *record.HeldEntry) *report.Report {
	var r *report.Report
	if e.Pend != nil {
		r = lockorder.CommitPending(g, e)
	}
	g.Pop(e)
	return r
}

// BeginWait registers the calling goroutine as waiting for c and checks for
// a deadlock before it blocks. fp is the lock method's frame. It returns the
// report whose configured action is a panic, if one was made: the caller
// panics with it instead of blocking.
func BeginWait(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode) (*record.Waiter, *report.Report) {
	now := rt.Nanotime()
	pc1, pc2 := rt.CallerPCs(fp)
	meta := c.MetaFor(g, typ, pc1, pc2)
	stack := stacks.CaptureStack(fp)
	var reports []*report.Report

	// Lock order first: what this goroutine holds while it waits is a
	// dependency, checked exactly as for an acquisition that did not wait.
	if g != nil && g.N > 0 {
		if g.Holes || g.HasReleased() {
			g.Trim()
		}
		if top := g.Top(); top != nil {
			chain := record.ChainMix(g.ChainOf(top), record.LdUint64(&c.Id), mode)
			lockorder.CheckOrder(g, id, c, typ, mode, fp, chain)
		}
	}

	var w *record.Waiter
	if g != nil {
		w = &g.Wait
	} else {
		w = &record.Waiter{G: &record.Gstate{Goid: id}}
	}
	holder := rt.LdInt64(&c.Holder)
	var holderStack uint32
	if he := c.WriterEntry(holder); he != nil {
		holderStack = he.StackOrSite()
	}

	// Register: shared, so that waits on different locks do not queue
	// on one mutex.
	record.WaitMu.RLock()
	w.Lock, w.LockID, w.Meta, w.Typ, w.Mode = uintptr(unsafe.Pointer(c)), record.LdUint64(&c.Id), meta, typ, mode
	w.Since, w.Stack, w.Pc1, w.Pc2, w.Holder, w.HolderStack = now, stack, pc1, pc2, holder, holderStack
	w.Rh = w.Rh[:0]
	w.Visit, w.SelfWait, w.SelfSeq, w.Static, w.ReportedLong = 0, false, 0, false, false
	w.Consulted, w.Proven = 0, false
	meta.Wmu.Lock()
	w.Idx = len(meta.Waiters)
	meta.Waiters = append(meta.Waiters, w)
	if mode == report.Write {
		meta.Nwriters.Add(1)
	}
	meta.Wmu.Unlock()
	if g != nil {
		n := g.N
		for i := int32(0); i < n; i++ {
			e := g.Entry(i)
			if !e.Live() || e.Mode() != report.Read || e.IsUncertain() {
				continue
			}
			if m := record.EntryMeta(g, e); m != nil {
				m.Wmu.Lock()
				w.Rh = append(w.Rh, record.RhReg{M: m, Idx: len(m.RhWaiters)})
				m.RhWaiters = append(m.RhWaiters, record.RhWait{W: w, E: e, Gen: e.Gen, K: len(w.Rh) - 1})
				m.Nrh.Add(1)
				m.Wmu.Unlock()
			}
		}
	}
	record.Nwaiting.Add(1)
	w.Active.Store(true)
	record.WaitMu.RUnlock()

	// Search, exclusively, only if a cycle through w is possible now: w's
	// lock is held by a waiting goroutine (or by w's own), or waiting
	// read-holders or queued writers of it could block w. Of two goroutines
	// closing a cycle, each sets its active flag before it looks at the
	// other's, so at least one of them sees the other and searches.
	selfWait := false // w.selfWait as set here: the watchdog clears it under waitMu
	if w.MightCycle(id) {
		record.WaitMu.Lock()
		cycle := waitfor.FindCycle(w)
		switch {
		case len(cycle) == 1 && w.IsOnce():
			// Do called from inside its own function: the Once's Mutex is
			// locked and unlocked by doSlow only, on one goroutine, so it
			// is never handed off and nothing else can ever unlock it.
			// Decided now, before blocking, with no grace and no proof
			// (sync.Once deadlocks here too).
			w.Proven, w.ReportedLong = true, true
			reports = append(reports, waitfor.SelfWaitReport(w))
		case len(cycle) == 1 && !c.HandedOff():
			w.SelfWait = true
			w.SelfSeq = now + config.Cfg.RecursiveGrace.Load()
			w.Static = rt.ProofAvailable() && rt.StaticAddr(unsafe.Pointer(c))
			selfWait = true
		case len(cycle) > 1:
			// The goroutines of the cycle hold what they hold for good:
			// what was pending on their holds is now proven, and committed
			// (they are blocked, so their records stand still while waitMu
			// is held). Those reports go first: they say how the deadlock
			// came about, and a program that ends on a deadlock report
			// (LOCKSCOPE_ON_REPORT=exit, or its own handler) has them.
			dl := waitfor.DeadlockReport(cycle)
			waitfor.NoteDeadlocked(cycle)
			for _, x := range cycle {
				reports = append(reports, lockorder.CommitAllPending(x.G)...)
			}
			reports = append(reports, dl)
		}
		record.WaitMu.Unlock()
	}

	panicWith := delivery.EmitAll(reports)
	if selfWait {
		// With the runtime's proof, ask it as soon as the goroutine has
		// parked; without it, or for a package variable (which the runtime
		// always reaches), decide when the grace ends.
		if rt.ProofAvailable() && !w.Static {
			rt.KickWatchdogAfter(int64(rt.SelfWaitProofDelay))
		} else {
			rt.KickWatchdogAfter(config.Cfg.RecursiveGrace.Load())
		}
	}
	if panicWith != nil {
		record.EndWaitAbandoned(c, w)
	}
	return w, panicWith
}

// TryFailed counts a failed TryLock/TryRLock at its call site. The caller's
// frame is fp.
func TryFailed(c *record.LockCore, fp unsafe.Pointer, typ string, mode report.Mode) {
	pc1, pc2 := rt.CallerPCs(fp)
	meta := c.MetaFor(nil, typ, pc1, pc2)
	misuse.TryLivelock(c, fp, meta, pc1, pc2) // leakproof_livelock.go
	h := (uint64(pc1)*0x9E3779B97F4A7C15 ^ meta.Id*0xBF58476D1CE4E5B9 ^ uint64(mode)) >> (64 - record.TrySlotsBits)
	for p := uint64(0); p < 32; p++ {
		s := &record.TryTab[(h+p)&(record.TrySlots-1)]
		switch s.State.Load() {
		case 2:
			if s.Pc1 == pc1 && s.LockID == meta.Id && s.Mode == mode {
				s.Count.Add(1)
				return
			}
		case 0:
			if s.State.CompareAndSwap(0, 1) {
				s.Pc1, s.Pc2, s.LockID, s.Meta, s.Mode = pc1, pc2, meta.Id, meta, mode
				s.Count.Store(1)
				s.State.Store(2)
				return
			}
		}
	}
	record.TryOverflow.Add(1)
}
