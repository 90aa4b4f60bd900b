package debugmutex

import (
	"math"
	"strings"
	"sync/atomic"
	"unsafe"
)

// lockCore is the recorded state of one lock, embedded in Mutex and RWMutex
// next to the real sync lock. Writer fields are written by the goroutine that
// holds the real lock (so writers are serialised by it) and read by observers
// with racy word loads (see racy.go).
type lockCore struct {
	_      [0]atomic.Int64 // 64-bit alignment of holder and id on 32-bit platforms
	holder int64           // goroutine id of the writer holding the lock, 0 if none (racy); its hold is in its record
	id     uint64          // unique for the life of the process, set on first acquisition (racy; CAS)
	meta   unsafe.Pointer  // *lockMeta, made by the first slow path that needs one (atomic CAS)

	lastUnlockPC uintptr // where it was last unlocked (racy)

	// Sampling of hold times for writers (see acquired). Written under the lock.
	countdown int32 // write acquisitions until the next timed one
	gap       int32 // the gap that ends at the next timed acquisition: its weight (racy for readers)
	period    int32 // mean gap; 1 for locks whose holds are long (racy for readers)
	rcount    int32 // RWMutex: read acquisitions until the next timed one (atomic)

	lastUnlockG uint32 // goroutine that last unlocked, if its id fits (racy)
	state       int32  // stateHandedOff (atomic)
}

const (
	// stateHandedOff: some hold of this lock was released by a goroutine
	// other than the one that took it. Such a lock is a baton; the wait-for
	// graph does not take its holder for the goroutine that will release it.
	stateHandedOff = 1 << iota
	// stateReadHandedOff: a read hold was released by another goroutine.
	// From then on the lock's readers register in its meta, so that the
	// next such release finds the hold without a search of all records.
	stateReadHandedOff
	// stateReadSeen: the lock has been read-locked. Write acquisitions
	// before that (a structure's initialisation) cannot be queued behind
	// readers, and do not count for the write guard below.
	stateReadSeen
	// stateWriteUnguarded: the lock has been write-locked (after its first
	// read lock) with no other lock held. See lockMeta.writeGuard.
	stateWriteUnguarded
)

// lockMeta is what a lock needs beyond its hot fields, allocated by the first
// slow path that needs it (a contended wait, a failed TryLock, SetName, a
// timed release, a lock-order edge) and referenced only by the lock, by the
// holds taken after it existed, and transiently by waits: it never points at
// the lock, so the lock is freed as if lockscope did not know it, and the
// meta with it. Lock-order graph nodes are removed by a cleanup on the meta.
type lockMeta struct {
	id       uint64
	typ      string // "Mutex" or "RWMutex"
	pc1, pc2 uintptr
	name     atomic.Pointer[string] // SetName
	label    atomic.Pointer[string] // cached display name
	inGraph  atomic.Bool

	// The lock's waiters (see waitfor.go): the goroutines waiting for it,
	// and the waiting goroutines that read-hold it. Changed under waitMu
	// (shared) and wmu; read under waitMu (exclusive) or wmu.
	wmu       rankedMutex[rMetaWaiters]
	waiters   []*waiter
	rhWaiters []rhWait
	// How many of waiters wait to write, and len(rhWaiters): kept with the
	// sets under wmu, read without it (waiter.mightCycle, on every
	// contended wait, which would otherwise lock wmu and, for a reader,
	// scan every waiter).
	nwriters, nrh atomic.Int32

	// The write guard (RWMutex): the locks held at every write acquisition
	// seen since the first read acquisition, unless one had none
	// (wunguarded). A lock-order cycle that needs a writer queued on this
	// lock is impossible if a lock of the guard is held by the cycle itself.
	// Guarded by rmu.
	writeGuard []uint64
	wseen      atomic.Bool
	wunguarded atomic.Bool

	// stats caches the lock's newest statistics row of each kind and mode
	// (statSlot): a lock's readers and writers wait and hold at sites of
	// their own, and one slot per kind had them evict each other's row on
	// every contended acquisition.
	stats [3 * 2]atomic.Pointer[statCache]

	// readers, once the lock's read holds are known to be handed off: the
	// live read holds (entry -> its gen), guarded by rmu.
	rmu     rankedMutex[rMetaReaders]
	readers map[*heldEntry]uint32

	// deferredIn are the lock-order edges into this lock while it has no
	// graph node (lockorder.go, deferEdge); guarded by graphMu.
	deferredIn any // *[]edgeSource
}

// readState handles the rare read acquisitions: the first of the lock, and
// those of a lock whose read holds are handed off.
//
//go:noinline
func (c *lockCore) readState(g *gstate, e *heldEntry, st int32) {
	if st&stateReadSeen == 0 {
		atomicOr32(&c.state, stateReadSeen)
	}
	if st&stateReadHandedOff != 0 {
		c.registerReader(g, e)
	}
}

// registerReader records the read hold e of c in c's meta (see
// stateReadHandedOff).
//
//go:noinline
func (c *lockCore) registerReader(g *gstate, e *heldEntry) {
	m := c.metaFor(g, rwMutexType, e.pc1, e.pc2)
	stPtr(&e.meta, unsafe.Pointer(m))
	m.rmu.Lock()
	if m.readers == nil {
		m.readers = map[*heldEntry]uint32{}
	}
	m.readers[e] = e.gen
	m.rmu.Unlock()
	atomic.StoreInt32(&e.uncertain, 1)
	stInt32(&e.flags, e.flags|flagRegistered)
}

// unregisterReader undoes registerReader; e is being cleared.
func (e *heldEntry) unregisterReader() {
	if m := e.getMeta(); m != nil {
		m.rmu.Lock()
		delete(m.readers, e)
		m.rmu.Unlock()
	}
}

func (c *lockCore) getMeta() *lockMeta { return (*lockMeta)(atomic.LoadPointer(&c.meta)) }

// metaFor returns the lock's meta, creating it on first use. g is the
// calling goroutine's record (for the lock's id), nil if unknown.
func (c *lockCore) metaFor(g *gstate, typ string, pc1, pc2 uintptr) *lockMeta {
	if m := c.getMeta(); m != nil {
		return m
	}
	return c.newMeta(g, typ, pc1, pc2)
}

//go:noinline
func (c *lockCore) newMeta(g *gstate, typ string, pc1, pc2 uintptr) *lockMeta {
	m := &lockMeta{id: c.lockID(g), typ: typ, pc1: pc1, pc2: pc2}
	if atomic.CompareAndSwapPointer(&c.meta, nil, unsafe.Pointer(m)) {
		if atomic.LoadInt32(&c.state)&stateWriteUnguarded != 0 {
			m.wunguarded.Store(true)
		}
		if pc1 != 0 {
			m.Name() // name it now, on this slow path, not later under lockscope's locks
		}
		return m
	}
	return c.getMeta()
}

// lockID returns the lock's id, giving it one on first use.
func (c *lockCore) lockID(g *gstate) uint64 {
	if id := ldUint64(&c.id); id != 0 {
		return id
	}
	return c.assignID(g)
}

//go:noinline
func (c *lockCore) assignID(g *gstate) uint64 {
	id := newLockID(g)
	if atomic.CompareAndSwapUint64(&c.id, 0, id) {
		return id
	}
	return atomic.LoadUint64(&c.id)
}

// Name returns the lock's display name: the SetName name, else the name a
// Go programmer would use (the struct field or package variable locked at
// its first acquire site, read from the source: naming.go), else that site.
func (m *lockMeta) Name() string {
	if n := m.name.Load(); n != nil {
		return *n
	}
	if l := m.label.Load(); l != nil {
		return *l
	}
	s := nameOfSite(m.pc1, m.pc2) // sitenames.go
	m.label.Store(s)
	return *s
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

// setName is SetName's body; the name is copied so that lockscope keeps no
// part of a larger string of the program's alive.
func (c *lockCore) setName(typ, name string) {
	name = strings.Clone(name)
	m := c.metaFor(nil, typ, 0, 0)
	m.name.Store(&name)
	for i := range m.stats {
		m.stats[i].Store(nil)
	}
}

// shortHold is the hold time from which a lock is timed on every acquisition:
// two clock reads (~50 ns) are then at most 0.5% of the hold.
const shortHold = 10_000 // ns

//go:noinline
func (c *lockCore) sampleWrite() int32 {
	if c.period == 0 {
		c.period, c.gap, c.countdown = 1, 1, 1
		if atomic.LoadPointer(&c.meta) == nil && minHoldSubscribed() == math.MaxInt64 && cfg.maxPeriod.Load() > 1 {
			// First acquisition of a lock nothing has asked about: not
			// timed; the next one is, and stands for both (unless every
			// acquisition is to be timed: LOCKSCOPE_SAMPLING=1).
			c.gap = 2
			return 0
		}
	}
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
	if ldInt32(&c.period) == 0 {
		stInt32(&c.period, 1)
		stInt32(&c.gap, 1)
		atomic.StoreInt32(&c.rcount, 1)
		if atomic.LoadPointer(&c.meta) == nil && minHoldSubscribed() == math.MaxInt64 && cfg.maxPeriod.Load() > 1 {
			stInt32(&c.gap, 2)
			return 0
		}
	}
	weight := ldInt32(&c.gap)
	if weight <= 0 {
		weight = 1
	}
	gap := drawGap(ldInt32(&c.period))
	stInt32(&c.gap, gap)
	atomic.StoreInt32(&c.rcount, gap)
	return weight
}

// sampleRead draws the goroutine's next read-sampling gap around period,
// the period of the lock being read-locked, and returns the weight of this
// acquisition: the gap it ends. A goroutine's gaps run across the locks it
// read-locks; each acquisition still ends a gap with probability 1/mean gap,
// so weighted sums per lock stay unbiased.
//
//go:noinline
func (g *gstate) sampleRead(period int32) int32 {
	weight := g.rgap
	if weight <= 0 {
		weight = 1
	}
	g.rgap = drawGap(period)
	g.rcount = g.rgap
	return weight
}

// timed stamps a sampled or waited-for acquisition and captures its stack.
// The hold starts now, as the lock method is about to return, not when the
// wait ended: what lockscope did in between (unregistering the wait, its
// statistics) is its own cost, and is charged to neither the wait nor the
// caller's hold. Under the race detector that work is tens of microseconds.
//
//go:noinline
func (e *heldEntry) timed(fp unsafe.Pointer, stack uint32) {
	if stack == 0 {
		stack = captureStack(fp)
	}
	stUint32(&e.stack, stack)
	stInt64(&e.start, nanotime())
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
				x.chain = chainMix(h, x.lockID, x.mode())
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

// released finishes the bookkeeping of the hold e of c when it is timed: hold
// statistics, hold events and the lock's sampling period. Called by the
// unlocking goroutine before the real unlock (so c is the program's live
// lock).
func (c *lockCore) released(e *heldEntry, typ string, mode Mode) {
	start := ldInt64(&e.start)
	if start == 0 {
		return
	}
	hold := nanotime() - start
	var meta *lockMeta
	if e.weight > 0 {
		meta = c.metaFor(e.rec, typ, e.pc1, e.pc2)
		w := int64(e.weight)
		addStatCtx(e.ctx, StatHold, e.stackOrSite(), meta, mode, w, hold*w)
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
		if meta == nil {
			meta = c.metaFor(e.rec, typ, e.pc1, e.pc2)
		}
		publishEvent(Event{
			Kind: EventHold, Lock: meta.info(), Mode: mode, Goroutine: e.rec.goid,
			Start: wallTime(start), Duration: durationNS(hold),
			Stack: stackPCs(e.stackOrSite()), Context: e.ctx,
		})
	}
}

// noteUnlock remembers who unlocked c last, and where, for the diagnosis of
// a later unlock of the unlocked lock.
func (c *lockCore) noteUnlock(id int64, fp unsafe.Pointer) {
	g := uint32(0)
	if id > 0 && id <= 1<<32-1 {
		g = uint32(id)
	}
	stUint32(&c.lastUnlockG, g)
	stUintptr(&c.lastUnlockPC, unlockPC(fp))
}

// writerEntry finds the writer's hold of c in the holder's record, or nil.
// Any goroutine may call it: it reads the record with racy loads.
func (c *lockCore) writerEntry(holder int64) *heldEntry {
	if holder == 0 {
		return nil
	}
	g := findG(holder)
	if g == nil {
		return nil
	}
	addr, lid := uintptr(unsafe.Pointer(c)), ldUint64(&c.id)
	for i := g.count() - 1; i >= 0; i-- {
		e := g.entry(i)
		if e != nil && e.addr() == addr && ldUint64(&e.lockID) == lid && ldInt32(&e.flags)&flagRead == 0 &&
			atomic.LoadInt32(&e.released) == 0 {
			return e
		}
	}
	return nil
}

func (c *lockCore) markHandedOff() {
	if atomic.LoadInt32(&c.state)&stateHandedOff == 0 {
		atomicOr32(&c.state, stateHandedOff)
	}
}

func (c *lockCore) handedOff() bool { return atomic.LoadInt32(&c.state)&stateHandedOff != 0 }

func atomicOr32(p *int32, bits int32) {
	for {
		old := atomic.LoadInt32(p)
		if old&bits == bits || atomic.CompareAndSwapInt32(p, old, old|bits) {
			return
		}
	}
}

// chainMix extends a held-chain hash with one more lock.
func chainMix(h uint64, id uint64, mode Mode) uint64 {
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

func ldUint64(p *uint64) uint64    { return uint64(ldInt64((*int64)(unsafe.Pointer(p)))) }
func stUint64(p *uint64, v uint64) { stInt64((*int64)(unsafe.Pointer(p)), int64(v)) }

// stateTagMask is the bits of lockCore.state that hold the address tag.
const stateTagMask = ^int32(0xffff)

// addrTag is the tag of c's address: never 0 (0 means "not tagged yet").
func addrTag(c *lockCore) int32 {
	h := uint32(uintptr(unsafe.Pointer(c))>>3) * 0x9E3779B1
	t := int32(h &^ 0xffff)
	if t == 0 {
		t = 1 << 16
	}
	return t
}

// tagMismatch reports whether the state word st was tagged at another
// address than c's.
func (c *lockCore) tagMismatch(st int32) bool {
	t := st & stateTagMask
	return t != 0 && t != addrTag(c)
}

// releaseReadFor releases, on behalf of the goroutine that took it, one read
// hold of c that the calling goroutine does not own (RUnlock from another
// goroutine, which Go allows). It reports false if no record has one.
func releaseReadFor(c *lockCore, id int64) bool {
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
