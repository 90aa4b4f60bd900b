package debugmutex

import (
	"context"
	"sync/atomic"
	"unsafe"
)

// lockCore is the recorded state of one lock, embedded in Mutex and RWMutex
// next to the real sync lock. Writer fields are written by the goroutine that
// holds the real lock (so writers are serialised by it) and read by observers
// with racy word loads (see racy.go).
type lockCore struct {
	meta   unsafe.Pointer // *lockMeta, set once on first acquisition (atomic CAS)
	holder int64          // goroutine id of the writer holding the lock, 0 if none (racy); its hold is in its record

	// Sampling of hold times for writers (see acquire). Written under the lock.
	countdown int32 // write acquisitions until the next timed one
	gap       int32 // the gap that ends at the next timed acquisition: its weight (racy for readers)
	period    int32 // mean gap; 1 for locks whose holds are long (racy for readers)

	rcount    int32 // RWMutex: read acquisitions until the next timed one (atomic)
	handedOff int32 // set once a goroutine unlocked a lock another one took (atomic)

	lastUnlockG  int64   // goroutine that last unlocked (racy)
	lastUnlockPC uintptr // and where (racy)
}

// lockMeta is what a lock needs beyond its hot fields, allocated on first
// acquisition and referenced only by the lock (and transiently by holders'
// entries), so it is freed with the lock. Lock-order graph nodes are keyed by
// id and removed by a cleanup attached to the meta.
type lockMeta struct {
	id       uint64
	typ      string // "Mutex" or "RWMutex"
	pc1, pc2 uintptr
	name     atomic.Pointer[string] // SetName
	label    atomic.Pointer[string] // cached display name
	inGraph  atomic.Bool
}

var nextLockID atomic.Uint64

func (c *lockCore) getMeta() *lockMeta { return (*lockMeta)(atomic.LoadPointer(&c.meta)) }

// metaFor returns the lock's meta, creating it on first use.
func (c *lockCore) metaFor(typ string, pc1, pc2 uintptr) *lockMeta {
	if m := c.getMeta(); m != nil {
		return m
	}
	return c.newMeta(typ, pc1, pc2)
}

//go:noinline
func (c *lockCore) newMeta(typ string, pc1, pc2 uintptr) *lockMeta {
	m := &lockMeta{id: nextLockID.Add(1), typ: typ, pc1: pc1, pc2: pc2}
	if atomic.CompareAndSwapPointer(&c.meta, nil, unsafe.Pointer(m)) {
		return m
	}
	return c.getMeta()
}

// Name returns the lock's display name: the SetName name, or its first
// acquire site.
func (m *lockMeta) Name() string {
	if n := m.name.Load(); n != nil {
		return *n
	}
	if l := m.label.Load(); l != nil {
		return *l
	}
	s := siteOf(m.pc1, m.pc2).Site()
	m.label.Store(&s)
	return s
}

func (m *lockMeta) info() LockInfo {
	if m == nil {
		return LockInfo{Name: "(unknown lock)"}
	}
	return LockInfo{ID: m.id, Name: m.Name(), Type: m.typ}
}

func (m *lockMeta) ref() LockRef {
	i := m.info()
	return LockRef{ID: i.ID, Name: i.Name, Type: i.Type}
}

// shortHold is the hold time from which a lock is timed on every acquisition:
// two clock reads (~50 ns) are then at most 0.5% of the hold.
const shortHold = 10_000 // ns

// acquired records a hold that has just been taken. fp is the frame of the
// lock method (not inlined) that the user called, so the acquire site is the
// return address above it. waitEnd is the nanotime at which a contended
// acquisition stopped waiting, 0 if it did not wait.
//
// This is the fast path: everything rare (first use, sampling, nesting,
// deep nesting) is outlined so that an uncontended, unsampled, outermost
// acquisition is a few loads, compares and plain stores.
func (c *lockCore) acquired(g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, try bool, ctx context.Context, waitEnd int64) {
	pc1, pc2 := callerPCs(fp)
	if c.getMeta() == nil {
		c.newMeta(typ, pc1, pc2)
	}

	// Sampling. Two clock reads cost ten times an uncontended Lock+Unlock,
	// so holds are timed on a sample of acquisitions: every gap-th one, with
	// gaps drawn at random around the lock's period so that periodic programs
	// do not alias. A sampled hold stands for the gap of acquisitions it
	// ends, so sums weighted by gap are unbiased. A lock starts with period 1
	// and doubles it (up to the configured maximum) each time a timed hold is
	// short; a long hold resets it to 1, so locks held for microseconds or
	// more are timed every time, exactly.
	var weight int32
	if mode == Write {
		c.countdown--
		if c.countdown <= 0 {
			weight = c.sampleWrite()
		}
	} else if atomic.AddInt32(&c.rcount, -1) <= 0 {
		weight = c.sampleRead()
	}

	var e *heldEntry
	if g != nil {
		var chain uint64 // computed for nested acquisitions; lazily for outermost ones
		if g.n > 0 {
			chain = c.nested(g, id, fp, mode, try)
		}
		if n := g.n; n < inlineHeld {
			e = &g.inline[n]
			stInt32(&g.n, n+1)
		} else {
			e = g.push()
		}
		if e != nil {
			var flags int32
			if mode == Read {
				flags = flagRead
			}
			if try {
				flags |= flagTry
			}
			stUintptr(&e.pc1, pc1)
			stUintptr(&e.pc2, pc2)
			e.weight = weight
			e.chain = chain
			if ctx != nil {
				e.ctx = ctx
			}
			if weight != 0 || waitEnd != 0 {
				flags |= flagExact
				e.timed(fp, waitEnd)
			} else {
				stUint32(&e.stack, 0)
				stInt64(&e.start, 0)
			}
			stInt32(&e.flags, flags)
			stPtr(&e.core, unsafe.Pointer(c))
		}
	}
	if mode == Write {
		stInt64(&c.holder, id)
	}
}

//go:noinline
func (c *lockCore) sampleWrite() int32 {
	weight := c.gap
	if weight <= 0 {
		weight = 1
	}
	c.gap = drawGap(c.period)
	c.countdown = c.gap
	return weight
}

// sampleRead is sampleWrite for readers, who share the lock: the countdown
// is an atomic, the gap and period racy words (a reader may now and then
// use a gap another reader drew; the estimate stays unbiased on average).
//
//go:noinline
func (c *lockCore) sampleRead() int32 {
	weight := ldInt32(&c.gap)
	if weight <= 0 {
		weight = 1
	}
	gap := drawGap(ldInt32(&c.period))
	stInt32(&c.gap, gap)
	atomic.StoreInt32(&c.rcount, gap)
	return weight
}

// timed stamps a sampled or waited-for acquisition and captures its stack.
//
//go:noinline
func (e *heldEntry) timed(fp unsafe.Pointer, waitEnd int64) {
	start := waitEnd
	if start == 0 {
		start = nanotime()
	}
	stUint32(&e.stack, captureStack(fp))
	stInt64(&e.start, start)
}

// nested handles an acquisition by a goroutine that already holds locks:
// tidy its list, then check the lock order unless this chain of held locks
// was checked before. It returns the new chain hash (0: compute it lazily).
//
//go:noinline
func (c *lockCore) nested(g *gstate, id int64, fp unsafe.Pointer, mode Mode, try bool) uint64 {
	if g.holes || g.hasReleased() {
		g.trim()
	}
	top := g.top()
	if top == nil {
		return 0
	}
	chain := chainMix(g.chainOf(top), c, mode)
	if !try && !chainKnown(chain) {
		lockOrderSlow(g, id, c, c.getMeta(), mode, fp, chain)
	}
	return chain
}

// chainOf returns the chain hash of entry e (the hash of every live entry up
// to and including it), computing it on first use. Owner only.
func (g *gstate) chainOf(e *heldEntry) uint64 {
	if e.chain != 0 {
		return e.chain
	}
	var h uint64
	for i := int32(0); i <= e.idx; i++ {
		x := g.entry(i)
		if x.live() {
			if x.chain == 0 {
				x.chain = chainMix(h, x.lock(), x.mode())
			}
			h = x.chain
		}
	}
	return h
}

// drawGap returns a random gap with mean period (uniform on 1..2*period-1).
func drawGap(period int32) int32 {
	if period <= 1 {
		return 1
	}
	return 1 + int32(cheaprand()%uint32(2*period-1))
}

// released finishes the bookkeeping of the hold e when it is timed: hold
// statistics, hold events and the lock's sampling period. Called by the
// unlocking goroutine before the real unlock.
func (c *lockCore) released(e *heldEntry, mode Mode) {
	start := ldInt64(&e.start)
	if start == 0 {
		return
	}
	hold := nanotime() - start
	meta := c.getMeta()
	if e.weight > 0 {
		w := int64(e.weight)
		addStat(StatHold, e.stackOrSite(), meta, mode, w, hold*w)
		// Adapt the period: long holds are timed every time.
		if mode == Write {
			if hold >= shortHold {
				c.period, c.gap, c.countdown = 1, 1, 1
			} else if p := c.period; p < cfg.maxPeriod.Load() {
				if p < 1 {
					p = 1
				}
				c.period = p * 2
			}
		} else if hold >= shortHold {
			stInt32(&c.period, 1)
			stInt32(&c.gap, 1)
			atomic.StoreInt32(&c.rcount, 1)
		} else if p := ldInt32(&c.period); p < cfg.maxPeriod.Load() {
			stInt32(&c.period, max(p, 1)*2)
		}
	}
	if e.exact() && hold >= minHoldSubscribed() {
		publishEvent(Event{
			Kind: EventHold, Lock: meta.info(), Mode: mode, Goroutine: e.rec.goid,
			Start: wallTime(start), Duration: durationNS(hold),
			Stack: stackPCs(e.stackOrSite()), Context: e.ctx,
		})
	}
}

// unlockWrite is Unlock's bookkeeping: the common case (the holder unlocks
// its newest hold, untimed) inline, the rest outlined.
func (c *lockCore) unlockWrite(id int64, fp unsafe.Pointer, typ string) {
	if ldInt64(&c.holder) == id {
		if g := probeG(id); g != nil && g.n > 0 {
			if e := g.entry(g.n - 1); e.lock() == c && ldInt64(&e.start) == 0 && ldInt32(&e.flags)&flagRead == 0 {
				stInt64(&c.lastUnlockG, id)
				stUintptr(&c.lastUnlockPC, *(*uintptr)(unsafe.Add(fp, ptrSize)))
				stInt64(&c.holder, 0)
				g.pop(e)
				return
			}
		}
	}
	c.unlockWriteSlow(id, fp, typ)
}

func (c *lockCore) unlockWriteSlow(id int64, fp unsafe.Pointer, typ string) {
	if ldInt64(&c.holder) == 0 {
		c.unlockOfUnlocked(id, fp, typ, Write)
		return
	}
	c.releaseWrite(id, fp)
}

// writerEntry finds the writer's hold of c in the holder's record, or nil.
// Any goroutine may call it: it reads the record with racy loads.
func (c *lockCore) writerEntry(holder int64) *heldEntry {
	g := findG(holder)
	if g == nil {
		return nil
	}
	for i := g.count() - 1; i >= 0; i-- {
		e := g.entry(i)
		if e != nil && e.lock() == c && ldInt32(&e.flags)&flagRead == 0 && atomic.LoadInt32(&e.released) == 0 {
			return e
		}
	}
	return nil
}

// releaseWrite clears the writer's hold before the real unlock, in the
// general case: timed holds, and unlocks by a goroutine other than the
// holder. id is the unlocking goroutine, fp the frame of the unlock method.
func (c *lockCore) releaseWrite(id int64, fp unsafe.Pointer) {
	holder := ldInt64(&c.holder)
	e := c.writerEntry(holder)
	if e != nil && ldInt64(&e.start) != 0 {
		c.released(e, Write)
	}
	stInt64(&c.lastUnlockG, id)
	stUintptr(&c.lastUnlockPC, *(*uintptr)(unsafe.Add(fp, ptrSize)))
	stInt64(&c.holder, 0)
	if holder != id {
		// Unlocked by another goroutine than the one that locked it:
		// legal in Go (a lock handed over). The owner drops the entry.
		if e != nil {
			e.markReleased()
		}
		c.markHandedOff()
		return
	}
	if e != nil {
		e.rec.pop(e)
	}
}

func (c *lockCore) markHandedOff() {
	if atomic.LoadInt32(&c.handedOff) == 0 {
		atomic.StoreInt32(&c.handedOff, 1)
	}
}

// chainMix extends a held-chain hash with one more lock.
func chainMix(h uint64, c *lockCore, mode Mode) uint64 {
	var id uint64
	if m := c.getMeta(); m != nil {
		id = m.id
	}
	h ^= id*0x9E3779B97F4A7C15 + uint64(mode) + 1
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 31
	return h
}

// Type names used in reports and statistics.
const (
	mutexType   = "Mutex"
	rwMutexType = "RWMutex"
)
