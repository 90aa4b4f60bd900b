package record

import (
	"math"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/events"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// LockCore is the recorded state of one lock, embedded in Mutex and RWMutex
// next to the real sync lock. Writer fields are written by the goroutine that
// holds the real lock (so writers are serialised by it) and read by observers
// with racy word loads (see racy.go).
type LockCore struct {
	_      [0]atomic.Int64 // 64-bit alignment of holder and id on 32-bit platforms
	Holder int64           // goroutine id of the writer holding the lock, 0 if none (racy); its hold is in its record
	Id     uint64          // unique for the life of the process, set on first acquisition (racy; CAS)
	Meta   unsafe.Pointer  // *lockMeta, made by the first slow path that needs one (atomic CAS)

	LastUnlockPC uintptr // where it was last unlocked (racy)

	// Sampling of hold times for writers (see acquired). Written under the lock.
	Countdown int32 // write acquisitions until the next timed one
	gap       int32 // the gap that ends at the next timed acquisition: its weight (racy for readers)
	Period    int32 // mean gap; 1 for locks whose holds are long (racy for readers)
	Rcount    int32 // RWMutex: read acquisitions until the next timed one (atomic)

	LastUnlockG uint32 // goroutine that last unlocked, if its id fits (racy)
	State       int32  // stateHandedOff (atomic)
}

const (
	// StateHandedOff: some hold of this lock was released by a goroutine
	// other than the one that took it. Such a lock is a baton; the wait-for
	// graph does not take its holder for the goroutine that will release it.
	StateHandedOff = 1 << iota
	// StateReadHandedOff: a read hold was released by another goroutine.
	// From then on the lock's readers register in its meta, so that the
	// next such release finds the hold without a search of all records.
	StateReadHandedOff
	// StateReadSeen: the lock has been read-locked. Write acquisitions
	// before that (a structure's initialisation) cannot be queued behind
	// readers, and do not count for the write guard below.
	StateReadSeen
	// StateWriteUnguarded: the lock has been write-locked (after its first
	// read lock) with no other lock held. See lockMeta.writeGuard.
	StateWriteUnguarded
)

// LockMeta is what a lock needs beyond its hot fields, allocated by the first
// slow path that needs it (a contended wait, a failed TryLock, SetName, a
// timed release, a lock-order edge) and referenced only by the lock, by the
// holds taken after it existed, and transiently by waits: it never points at
// the lock, so the lock is freed as if lockscope did not know it, and the
// meta with it. Lock-order graph nodes are removed by a cleanup on the meta.
type LockMeta struct {
	Id       uint64
	Typ      string // "Mutex", "RWMutex", "Once" or "OnceFunc"
	pc1, pc2 uintptr
	name     atomic.Pointer[string] // SetName
	label    atomic.Pointer[string] // cached display name
	class    atomic.Pointer[string] // lock class (SetClass, or by declaration: Class)
	InGraph  atomic.Bool

	// The lock's waiters (see waitfor.go): the goroutines waiting for it,
	// and the waiting goroutines that read-hold it. Changed under waitMu
	// (shared) and wmu; read under waitMu (exclusive) or wmu.
	Wmu       rt.RankedMutex[rt.RMetaWaiters]
	Waiters   []*Waiter
	RhWaiters []RhWait
	// How many of waiters wait to write, and len(rhWaiters): kept with the
	// sets under wmu, read without it (waiter.mightCycle, on every
	// contended wait, which would otherwise lock wmu and, for a reader,
	// scan every waiter).
	Nwriters, Nrh atomic.Int32

	// The write guard (RWMutex): the locks held at every write acquisition
	// seen since the first read acquisition, unless one had none
	// (wunguarded). A lock-order cycle that needs a writer queued on this
	// lock is impossible if a lock of the guard is held by the cycle itself.
	// Guarded by rmu.
	WriteGuard []uint64
	Wseen      atomic.Bool
	Wunguarded atomic.Bool

	// stats caches the lock's newest statistics row of each kind and mode
	// (statSlot): a lock's readers and writers wait and hold at sites of
	// their own, and one slot per kind had them evict each other's row on
	// every contended acquisition.
	stats [3 * 2]atomic.Pointer[statCache]

	// readers, once the lock's read holds are known to be handed off: the
	// live read holds (entry -> its gen), guarded by rmu.
	Rmu     rt.RankedMutex[rt.RMetaReaders]
	readers map[*HeldEntry]uint32

	// DeferredIn are the lock-order edges into this lock while it has no
	// graph node (lockorder.go, deferEdge); guarded by graphMu.
	DeferredIn any // *[]edgeSource
}

// ReadState handles the rare read acquisitions: the first of the lock, and
// those of a lock whose read holds are handed off.
//
//go:noinline
func (c *LockCore) ReadState(g *Gstate, e *HeldEntry, st int32) {
	if st&StateReadSeen == 0 {
		AtomicOr32(&c.State, StateReadSeen)
	}
	if st&StateReadHandedOff != 0 {
		c.registerReader(g, e)
	}
}

// registerReader records the read hold e of c in c's meta (see
// stateReadHandedOff).
//
//go:noinline
func (c *LockCore) registerReader(g *Gstate, e *HeldEntry) {
	m := c.MetaFor(g, RwMutexType, e.Pc1, e.Pc2)
	rt.StPtr(&e.Meta, unsafe.Pointer(m))
	m.Rmu.Lock()
	if m.readers == nil {
		m.readers = map[*HeldEntry]uint32{}
	}
	m.readers[e] = e.Gen
	m.Rmu.Unlock()
	atomic.StoreInt32(&e.uncertain, 1)
	rt.StInt32(&e.Flags, e.Flags|FlagRegistered)
}

// unregisterReader undoes registerReader; e is being cleared.
func (e *HeldEntry) unregisterReader() {
	if m := e.GetMeta(); m != nil {
		m.Rmu.Lock()
		delete(m.readers, e)
		m.Rmu.Unlock()
	}
}

func (c *LockCore) GetMeta() *LockMeta { return (*LockMeta)(atomic.LoadPointer(&c.Meta)) }

// MetaFor returns the lock's meta, creating it on first use. g is the
// calling goroutine's record (for the lock's id), nil if unknown.
func (c *LockCore) MetaFor(g *Gstate, typ string, pc1, pc2 uintptr) *LockMeta {
	if m := c.GetMeta(); m != nil {
		return m
	}
	return c.newMeta(g, typ, pc1, pc2)
}

//go:noinline
func (c *LockCore) newMeta(g *Gstate, typ string, pc1, pc2 uintptr) *LockMeta {
	m := &LockMeta{Id: c.lockID(g), Typ: typ, pc1: pc1, pc2: pc2}
	if atomic.CompareAndSwapPointer(&c.Meta, nil, unsafe.Pointer(m)) {
		if atomic.LoadInt32(&c.State)&StateWriteUnguarded != 0 {
			m.Wunguarded.Store(true)
		}
		if pc1 != 0 {
			m.Name()  // name it now, on this slow path, not later under lockscope's locks
			m.Class() // and its class
		}
		return m
	}
	return c.GetMeta()
}

// lockID returns the lock's id, giving it one on first use.
func (c *LockCore) lockID(g *Gstate) uint64 {
	if id := LdUint64(&c.Id); id != 0 {
		return id
	}
	return c.AssignID(g)
}

//go:noinline
func (c *LockCore) AssignID(g *Gstate) uint64 {
	id := NewLockID(g)
	if atomic.CompareAndSwapUint64(&c.Id, 0, id) {
		return id
	}
	return atomic.LoadUint64(&c.Id)
}

// Name returns the lock's display name: the SetName name, else the name a
// Go programmer would use (the struct field or package variable locked at
// its first acquire site, read from the source: naming.go), else that site.
func (m *LockMeta) Name() string {
	if n := m.name.Load(); n != nil {
		return *n
	}
	if l := m.label.Load(); l != nil {
		return *l
	}
	s := stacks.NameOfSite(m.pc1, m.pc2, callOf(m.Typ)) // sitenames.go
	m.label.Store(s)
	return *s
}

// Class returns the lock's class (SetClass, else ClassOfSite of its first
// slow path), "" if it has none.
func (m *LockMeta) Class() string { return m.ClassAt(0, 0) }

// ClassAt is Class, for a lock acquired at site (pc1, pc2). A meta made by
// SetName before the lock's first acquisition (as lockscope test names
// every package-level lock) has no first site: its class is that of the
// first site it is asked at, and "" (not kept) until one is given. Reading
// the source, it belongs on a slow path outside lockscope's locks.
func (m *LockMeta) ClassAt(pc1, pc2 uintptr) string {
	if c := m.class.Load(); c != nil {
		return *c
	}
	if m.pc1 != 0 {
		pc1, pc2 = m.pc1, m.pc2
	}
	if pc1 == 0 {
		return ""
	}
	m.class.CompareAndSwap(nil, stacks.ClassOfSite(pc1, pc2, callOf(m.Typ)))
	return *m.class.Load()
}

// SetClass is SetClass's body: the class is copied, as SetName's name is.
func (c *LockCore) SetClass(typ, class string) {
	class = strings.Clone(class)
	c.MetaFor(nil, typ, 0, 0).class.Store(&class)
}

func (m *LockMeta) Info() report.LockInfo {
	if m == nil {
		return report.LockInfo{Name: "(unknown lock)"}
	}
	return report.LockInfo{ID: m.Id, Name: m.Name(), Type: m.Typ}
}

func (m *LockMeta) Ref() report.LockRef {
	i := m.Info()
	r := report.LockRef{ID: i.ID, Name: i.Name, Type: i.Type}
	if m != nil {
		r.Class = m.Class()
	}
	return r
}

// SetName is SetName's body; the name is copied so that lockscope keeps no
// part of a larger string of the program's alive.
func (c *LockCore) SetName(typ, name string) {
	name = strings.Clone(name)
	m := c.MetaFor(nil, typ, 0, 0)
	m.name.Store(&name)
	for i := range m.stats {
		m.stats[i].Store(nil)
	}
}

// shortHold is the hold time from which a lock is timed on every acquisition:
// two clock reads (~50 ns) are then at most 0.5% of the hold.
const shortHold = 10_000 // ns

//go:noinline
func (c *LockCore) SampleWrite() int32 {
	if c.Period == 0 {
		c.Period, c.gap, c.Countdown = 1, 1, 1
		if atomic.LoadPointer(&c.Meta) == nil && events.MinHoldSubscribed() == math.MaxInt64 && config.Cfg.MaxPeriod.Load() > 1 {
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
	c.gap = drawGap(c.Period)
	c.Countdown = c.gap
	return weight
}

// SampleRead is sampleWrite for readers, who share the lock: the countdown
// is an atomic, the gap and period racy words (a reader may now and then
// use a gap another reader drew; the estimate stays unbiased on average).
//
//go:noinline
func (c *LockCore) SampleRead() int32 {
	if rt.LdInt32(&c.Period) == 0 {
		rt.StInt32(&c.Period, 1)
		rt.StInt32(&c.gap, 1)
		atomic.StoreInt32(&c.Rcount, 1)
		if atomic.LoadPointer(&c.Meta) == nil && events.MinHoldSubscribed() == math.MaxInt64 && config.Cfg.MaxPeriod.Load() > 1 {
			rt.StInt32(&c.gap, 2)
			return 0
		}
	}
	weight := rt.LdInt32(&c.gap)
	if weight <= 0 {
		weight = 1
	}
	gap := drawGap(rt.LdInt32(&c.Period))
	rt.StInt32(&c.gap, gap)
	atomic.StoreInt32(&c.Rcount, gap)
	return weight
}

// SampleRead draws the goroutine's next read-sampling gap around period,
// the period of the lock being read-locked, and returns the weight of this
// acquisition: the gap it ends. A goroutine's gaps run across the locks it
// read-locks; each acquisition still ends a gap with probability 1/mean gap,
// so weighted sums per lock stay unbiased.
//
//go:noinline
func (g *Gstate) SampleRead(period int32) int32 {
	weight := g.rgap
	if weight <= 0 {
		weight = 1
	}
	g.rgap = drawGap(period)
	g.Rcount = g.rgap
	return weight
}

// Timed stamps a sampled or waited-for acquisition and captures its stack.
// The hold starts now, as the lock method is about to return, not when the
// wait ended: what lockscope did in between (unregistering the wait, its
// statistics) is its own cost, and is charged to neither the wait nor the
// caller's hold. Under the race detector that work is tens of microseconds.
//
//go:noinline
func (e *HeldEntry) Timed(fp unsafe.Pointer, stack uint32) {
	if stack == 0 {
		stack = stacks.CaptureStack(fp)
	}
	rt.StUint32(&e.Stack, stack)
	rt.StInt64(&e.Start, rt.Nanotime())
}

// ChainOf returns the chain hash of entry e (the hash of every live entry up
// to and including it), computing it on first use. Owner only.
func (g *Gstate) ChainOf(e *HeldEntry) uint64 {
	if e.Chain != 0 {
		return e.Chain
	}
	var h uint64
	for i := int32(0); i <= e.idx; i++ {
		x := g.Entry(i)
		if x.Live() {
			if x.Chain == 0 {
				x.Chain = ChainMix(h, x.LockID, x.Mode())
			}
			h = x.Chain
		}
	}
	return h
}

// drawGap returns a random gap with mean period (uniform on 1..2*period-1).
func drawGap(period int32) int32 {
	if period <= 1 {
		return 1
	}
	return 1 + int32(rt.Cheaprand()%uint32(2*period-1))
}

// Released finishes the bookkeeping of the hold e of c when it is timed: hold
// statistics, hold events and the lock's sampling period. Called by the
// unlocking goroutine before the real unlock (so c is the program's live
// lock).
func (c *LockCore) Released(e *HeldEntry, typ string, mode report.Mode) {
	start := rt.LdInt64(&e.Start)
	if start == 0 {
		return
	}
	hold := rt.Nanotime() - start
	var meta *LockMeta
	if e.Weight > 0 {
		meta = c.MetaFor(e.Rec, typ, e.Pc1, e.Pc2)
		w := int64(e.Weight)
		addStatCtx(e.Ctx, report.StatHold, e.StackOrSite(), meta, mode, w, hold*w)
		// Adapt the period: long holds are timed every time.
		if mode == report.Write {
			if hold >= shortHold {
				c.Period, c.gap, c.Countdown = 1, 1, 1
			} else if p := c.Period; p < config.Cfg.MaxPeriod.Load() {
				if p < 1 {
					p = 1
				}
				c.Period = p * 2
			}
		} else if hold >= shortHold {
			rt.StInt32(&c.Period, 1)
			rt.StInt32(&c.gap, 1)
			atomic.StoreInt32(&c.Rcount, 1)
		} else if p := rt.LdInt32(&c.Period); p < config.Cfg.MaxPeriod.Load() {
			rt.StInt32(&c.Period, max(p, 1)*2)
		}
	}
	if e.Exact() && hold >= events.MinHoldSubscribed() {
		if meta == nil {
			meta = c.MetaFor(e.Rec, typ, e.Pc1, e.Pc2)
		}
		events.PublishEvent(report.Event{
			Kind: report.EventHold, Lock: meta.Info(), Mode: mode, Goroutine: e.Rec.Goid,
			Start: rt.WallTime(start), Duration: DurationNS(hold),
			Stack: stacks.StackPCs(e.StackOrSite()), Context: e.Ctx,
		})
	}
}

// NoteUnlock remembers who unlocked c last, and where, for the diagnosis of
// a later unlock of the unlocked lock.
func (c *LockCore) NoteUnlock(id int64, fp unsafe.Pointer) {
	g := uint32(0)
	if id > 0 && id <= 1<<32-1 {
		g = uint32(id)
	}
	rt.StUint32(&c.LastUnlockG, g)
	rt.StUintptr(&c.LastUnlockPC, rt.UnlockPC(fp))
}

// WriterEntry finds the writer's hold of c in the holder's record, or nil.
// Any goroutine may call it: it reads the record with racy loads.
func (c *LockCore) WriterEntry(holder int64) *HeldEntry {
	if holder == 0 {
		return nil
	}
	g := FindG(holder)
	if g == nil {
		return nil
	}
	addr, lid := uintptr(unsafe.Pointer(c)), LdUint64(&c.Id)
	for i := g.Count() - 1; i >= 0; i-- {
		e := g.Entry(i)
		if e != nil && e.Addr() == addr && LdUint64(&e.LockID) == lid && rt.LdInt32(&e.Flags)&FlagRead == 0 &&
			atomic.LoadInt32(&e.Released) == 0 {
			return e
		}
	}
	return nil
}

func (c *LockCore) MarkHandedOff() {
	if atomic.LoadInt32(&c.State)&StateHandedOff == 0 {
		AtomicOr32(&c.State, StateHandedOff)
	}
}

func (c *LockCore) HandedOff() bool { return atomic.LoadInt32(&c.State)&StateHandedOff != 0 }

func AtomicOr32(p *int32, bits int32) {
	for {
		old := atomic.LoadInt32(p)
		if old&bits == bits || atomic.CompareAndSwapInt32(p, old, old|bits) {
			return
		}
	}
}

// ChainMix extends a held-chain hash with one more lock.
func ChainMix(h uint64, id uint64, mode report.Mode) uint64 {
	h ^= id*0x9E3779B97F4A7C15 + uint64(mode) + 1
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 31
	return h
}

// Type names used in reports and statistics.
const (
	MutexType   = "Mutex"
	RwMutexType = "RWMutex"
	// OnceType is the Mutex inside a Once, which Do locks while its
	// function runs: waiting in Do is waiting for it.
	OnceType = "Once"
	// OnceFuncType is the Once inside a function that OnceFunc, OnceValue
	// or OnceValues returned.
	OnceFuncType = "OnceFunc"
)

// callOf says by which kind of call a lock of type typ is taken at its
// acquire site, by which the site's source names it.
func callOf(typ string) stacks.Call {
	switch typ {
	case OnceType:
		return stacks.CallDo
	case OnceFuncType:
		return stacks.CallFunc
	}
	return stacks.CallLock
}

func LdUint64(p *uint64) uint64    { return uint64(rt.LdInt64((*int64)(unsafe.Pointer(p)))) }
func StUint64(p *uint64, v uint64) { rt.StInt64((*int64)(unsafe.Pointer(p)), int64(v)) }

// StateTagMask is the bits of lockCore.state that hold the address tag.
const StateTagMask = ^int32(0xffff)

// AddrTag is the tag of c's address: never 0 (0 means "not tagged yet").
func AddrTag(c *LockCore) int32 {
	h := uint32(uintptr(unsafe.Pointer(c))>>3) * 0x9E3779B1
	t := int32(h &^ 0xffff)
	if t == 0 {
		t = 1 << 16
	}
	return t
}

// TagMismatch reports whether the state word st was tagged at another
// address than c's.
func (c *LockCore) TagMismatch(st int32) bool {
	t := st & StateTagMask
	return t != 0 && t != AddrTag(c)
}

// ReleaseReadFor releases, on behalf of the goroutine that took it, one read
// hold of c that the calling goroutine does not own (RUnlock from another
// goroutine, which Go allows). It reports false if no record has one.
func ReleaseReadFor(c *LockCore, id int64) bool {
	addr, lid := uintptr(unsafe.Pointer(c)), LdUint64(&c.Id)
	// Marking happens under the lock's reader mutex, as the owners' claims
	// do once the flag is set (see RWMutex.runlock).
	m := c.MetaFor(nil, RwMutexType, 0, 0)
	GtableMu.Lock() // before rmu: lockrank.go
	defer GtableMu.Unlock()
	m.Rmu.Lock()
	defer m.Rmu.Unlock()
	AtomicOr32(&c.State, StateReadHandedOff)
	c.MarkHandedOff()
	for e, gen := range m.readers {
		if rt.LdUint32(&e.Gen) == gen && e.Addr() == addr && LdUint64(&e.LockID) == lid &&
			atomic.LoadInt64(&e.Rec.Goid) != id && e.MarkReleased() {
			return true
		}
	}
	// A hold taken before its lock was known to be handed off is not
	// registered: search the records, and mark every such hold uncertain
	// (holds taken from now on are marked as they are registered).
	done := false
	ForEachG(func(gid int64, g *Gstate) {
		n := g.Count()
		for i := int32(0); i < n; i++ {
			e := g.Entry(i)
			if e == nil || e.Addr() != addr || LdUint64(&e.LockID) != lid || e.Mode() != report.Read || !e.Live() {
				continue
			}
			atomic.StoreInt32(&e.uncertain, 1)
			if !done && gid != id && e.MarkReleased() {
				done = true
			}
		}
	})
	return done
}
