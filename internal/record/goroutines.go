package record

import (
	"context"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// Per-goroutine records.
//
// Every goroutine that holds locks has a gstate: the locks it holds, in the
// order it took them (lock-order detection needs "what do I hold" on every
// acquisition), and, while it is blocked, what it waits for (the wait-for
// graph). Records are found through a table indexed by goroutine id with
// open addressing. The owner finds its record with a load and a compare (no
// lock, no map); a slot is claimed by CAS the first time a goroutine locks
// anything and kept while it lives; the table doubles when it gets crowded
// (so every goroutine is tracked, however many there are), and the watchdog
// frees the slots of goroutines that have exited.
//
// Only the owner writes its entries. Other goroutines (a goroutine unlocking
// a lock it did not lock, Snapshot, the watchdog, waiters checking for
// cycles) read them with racy word loads and, to hand a lock's release over,
// set the entry's released flag atomically; the owner drops released entries
// the next time it touches its list.
//
// Nothing here points at the user's locks: an entry names its lock by
// address (a uintptr, which the garbage collector does not follow) and by
// id. So a lock that nothing of the program reaches any more is garbage
// even while a record says it is held, its cleanups run, and Go's goroutine
// leak profile sees the goroutines blocked on it. The address is only ever
// compared, never followed, except by the owner (see lockOf).

const (
	InlineHeld = 4  // entries inside the record: most goroutines hold 1-2 locks
	chunkHeld  = 64 // entries per chunk allocated on deeper nesting
	maxChunks  = 63 // chunks per record: up to 4+63*64 = 4036 holds tracked
	maxHeld    = InlineHeld + chunkHeld*maxChunks

	GtableInitBits = 12 // 4096 slots to start with; grows past half full
)

// HeldEntry is one lock held by a goroutine.
type HeldEntry struct {
	_ [0]atomic.Int64 // 64-bit alignment of the int64 fields on 32-bit platforms

	// Fields other goroutines read are racy words (see racy.go).
	Start  int64   // nanotime of acquisition if known, else first time the watchdog saw it (racy; CAS by observers)
	LockID uint64  // the lock's id (racy)
	Lock   uintptr // the lock's address, 0 when the entry is free (racy): compared, never followed by observers
	Meta   unsafe.Pointer
	// meta is the lock's *lockMeta if it had one when it was taken (racy):
	// lockscope's own object, which never points at the lock.

	Released int32 // set (atomically) by a goroutine that unlocked this hold for the owner
	// uncertain (atomic): a read hold of a lock whose read holds are
	// released by other goroutines. Which goroutine's hold such a release
	// ends is a guess, so no detector relies on it.
	uncertain int32
	Flags     int32  // flagRead, flagTry, flagExact, flagRW, flagOnce...
	Gen       uint32 // bumped at every push (racy): tells observers a slot now holds another hold
	Stack     uint32 // interned acquire stack, 0 if not captured
	Pc1, Pc2  uintptr
	// pc1, pc2: the acquire site, the return address into the caller of the
	// lock method and the one above (racy).

	idx    int32           // position in rec; constant
	Weight int32           // sampling weight of this acquisition for hold statistics; 0 = not sampled (owner only)
	Chain  uint64          // hash of the chain of held locks up to and including this one (owner only)
	Pend   *Pending        // lock-order dependencies waiting for this hold's release (owner only)
	Ctx    context.Context // owner only; cleared at release
	Rec    *Gstate
}

const (
	FlagRead       = 1 << iota // held for reading
	FlagTry                    // taken by TryLock: cannot block, so no lock-order edges into it
	FlagExact                  // start is the real acquisition time
	FlagRW                     // the lock is an RWMutex
	FlagBaton                  // the lock had been handed off before this hold was taken
	FlagRegistered             // a read hold registered in its lock's meta (stateReadHandedOff)
	FlagOnce                   // the lock is a Once's Mutex (OnceType)
	FlagOnceFunc               // with flagOnce: the Once of a function OnceFunc returned (OnceFuncType)
)

func (e *HeldEntry) Addr() uintptr { return rt.LdUintptr(&e.Lock) }

func (e *HeldEntry) Is(c *LockCore) bool {
	return rt.LdUintptr(&e.Lock) == uintptr(unsafe.Pointer(c)) && LdUint64(&e.LockID) == LdUint64(&c.Id)
}

func (e *HeldEntry) Mode() report.Mode {
	if rt.LdInt32(&e.Flags)&FlagRead != 0 {
		return report.Read
	}
	return report.Write
}

func (e *HeldEntry) typ() string {
	switch f := rt.LdInt32(&e.Flags); {
	case f&FlagRW != 0:
		return RwMutexType
	case f&FlagOnceFunc != 0:
		return OnceFuncType
	case f&FlagOnce != 0:
		return OnceType
	}
	return MutexType
}

// TypeFlags are the flags of a hold of a lock of type typ that say its type.
func TypeFlags(typ string) int32 {
	switch typ {
	case RwMutexType:
		return FlagRW
	case OnceType:
		return FlagOnce
	case OnceFuncType:
		return FlagOnce | FlagOnceFunc
	}
	return 0
}

func (e *HeldEntry) Exact() bool { return rt.LdInt32(&e.Flags)&FlagExact != 0 }

func (e *HeldEntry) IsUncertain() bool { return atomic.LoadInt32(&e.uncertain) != 0 }

func (e *HeldEntry) GetMeta() *LockMeta { return (*LockMeta)(rt.LdPtr(&e.Meta)) }

// Site returns the acquire site's two return addresses.
func (e *HeldEntry) Site() (uintptr, uintptr) { return rt.LdUintptr(&e.Pc1), rt.LdUintptr(&e.Pc2) }

// SiteOnly says whether the hold has no stack of its own (not timed):
// stackOrSite gives its site alone.
func (e *HeldEntry) SiteOnly() bool { return rt.LdUint32(&e.Stack) == 0 }

// StackOrSite returns the interned acquire stack, or the site's one-frame stack.
func (e *HeldEntry) StackOrSite() uint32 {
	if s := rt.LdUint32(&e.Stack); s != 0 {
		return s
	}
	return stacks.SiteStack(e.Site())
}

// Live says whether the entry is a hold that has not been released.
func (e *HeldEntry) Live() bool {
	return rt.LdUintptr(&e.Lock) != 0 && atomic.LoadInt32(&e.Released) == 0
}

// LockInfo names the entry's lock without touching the lock: as its meta
// would (lockMeta.Name: by its declaration where the acquire site's source
// tells, else by the site), when it has none.
func (e *HeldEntry) LockInfo() report.LockInfo {
	if m := e.GetMeta(); m != nil {
		return m.Info()
	}
	pc1, pc2 := e.Site()
	typ := e.typ()
	return report.LockInfo{ID: LdUint64(&e.LockID), Name: *stacks.NameOfSite(pc1, pc2, callOf(typ)), Type: typ}
}

// clear frees the entry. Owner, or reclamation of an exited goroutine.
// Writes are skipped where the field is already clear: this is on every
// unlock's path, and an atomic store or a pointer write (with its write
// barrier check) costs more than the load that avoids it.
func (e *HeldEntry) clear() {
	if rt.LdInt32(&e.Flags)&FlagRegistered != 0 && rt.LdUintptr(&e.Lock) != 0 {
		e.unregisterReader()
		rt.StInt32(&e.Flags, 0)
	}
	rt.StUintptr(&e.Lock, 0)
	if rt.LdPtr(&e.Meta) != nil {
		rt.StPtr(&e.Meta, nil)
	}
	if atomic.LoadInt32(&e.Released) != 0 {
		atomic.StoreInt32(&e.Released, 0)
	}
	if atomic.LoadInt32(&e.uncertain) != 0 {
		atomic.StoreInt32(&e.uncertain, 0)
	}
	if e.Ctx != nil {
		e.Ctx = nil
	}
	if e.Pend != nil {
		e.Pend = nil
	}
}

// Gstate is one goroutine's record.
type Gstate struct {
	_       [0]atomic.Int64
	Goid    int64 // owner; constant while the slot is claimed (atomic)
	Claimed int64 // nanotime the owner claimed the slot (atomic): reclamation frees only slots claimed before its snapshot of live goroutines
	idNext  uint64
	idEnd   uint64 // lock ids handed out by this goroutine: [idNext, idEnd) (owner only)

	N     int32 // entries in use, top+1 (racy)
	Holes bool  // an entry below the top was freed (owner only)

	// Sampling of read holds of locks whose holds are short (period > 1),
	// per goroutine rather than per lock, so that readers do not all write
	// the lock's cache line (owner only): read acquisitions until the next
	// timed one, and the gap that ends there (its weight).
	Rcount, rgap int32

	Inline [InlineHeld]HeldEntry
	chunks unsafe.Pointer // *[maxChunks]unsafe.Pointer of *[chunkHeld]heldEntry, allocated on deep nesting, never moved (racy)

	Untracked atomic.Int64 // acquisitions not recorded because nesting exceeded maxHeld
	// UntrackedHeld is how many of those are still held (owner only): an
	// unlock that finds no entry of its own pays one of them off rather than
	// being taken for somebody else's or for nobody's.
	UntrackedHeld int64
	// nreleased counts entries other goroutines have marked released since
	// the owner last tidied: one load tells the owner whether to look.
	nreleased atomic.Int32

	// Wait is the goroutine's current wait; guarded by waitMu.
	Wait Waiter
}

func (g *Gstate) Entry(i int32) *HeldEntry {
	if i < InlineHeld {
		return &g.Inline[i]
	}
	j := i - InlineHeld
	dir := (*[maxChunks]unsafe.Pointer)(rt.LdPtr(&g.chunks))
	if dir == nil {
		return nil
	}
	ch := (*[chunkHeld]HeldEntry)(rt.LdPtr(&dir[j/chunkHeld]))
	if ch == nil {
		return nil
	}
	return &ch[j%chunkHeld]
}

// Count returns the number of entry slots in use, for observers.
func (g *Gstate) Count() int32 {
	n := rt.LdInt32(&g.N)
	if n > maxHeld {
		n = maxHeld
	}
	return n
}

// Push records a new hold. It returns nil when nesting is too deep to track.
func (g *Gstate) Push() *HeldEntry {
	n := g.N
	if n >= InlineHeld {
		if n >= maxHeld {
			g.Untracked.Add(1)
			g.UntrackedHeld++
			return nil
		}
		c := (n - InlineHeld) / chunkHeld
		dir := (*[maxChunks]unsafe.Pointer)(g.chunks)
		if dir == nil {
			dir = new([maxChunks]unsafe.Pointer)
			rt.StPtr(&g.chunks, unsafe.Pointer(dir))
		}
		if dir[c] == nil {
			ch := new([chunkHeld]HeldEntry)
			for i := range ch {
				ch[i].idx = InlineHeld + c*chunkHeld + int32(i)
				ch[i].Rec = g
			}
			rt.StPtr(&dir[c], unsafe.Pointer(ch))
		}
	}
	e := g.Entry(n)
	rt.StInt32(&g.N, n+1)
	return e
}

// Top returns the newest live entry, or nil.
func (g *Gstate) Top() *HeldEntry {
	for i := g.N - 1; i >= 0; i-- {
		if e := g.Entry(i); e.Live() {
			return e
		}
	}
	return nil
}

// Pop frees e, which the owner (the calling goroutine) held and released
// itself, once whatever was pending on it is committed (popReporting).
// Releasing the newest hold (LIFO, the usual case) is a few stores.
func (g *Gstate) Pop(e *HeldEntry) {
	e.clear()
	n := g.N - 1
	if e.idx != n {
		g.Holes = true
		return
	}
	if g.Holes || (n > 0 && rt.LdUintptr(&g.Entry(n-1).Lock) == 0) {
		g.Trim()
		return
	}
	rt.StInt32(&g.N, n)
}

// Trim drops free and released entries from the top, and, when holes were
// left below the top (non-LIFO unlocking), compacts the list so that chain
// hashes describe exactly the locks held. Owner only.
func (g *Gstate) Trim() {
	n := g.N
	if g.Holes || g.HasReleased() {
		g.nreleased.Store(0) // every released entry is dropped below
		j := int32(0)
		var chain uint64
		for i := int32(0); i < n; i++ {
			e := g.Entry(i)
			if !e.Live() {
				// Released by another goroutine (a hand-off): what this
				// goroutine did while the entry said it held the lock
				// proves nothing about its lock order. Forget it.
				if e.Lock != 0 {
					e.clear()
				}
				continue
			}
			if i != j {
				moveEntry(g.Entry(j), e)
			}
			d := g.Entry(j)
			chain = ChainMix(chain, LdUint64(&d.LockID), d.Mode())
			d.Chain = chain
			j++
		}
		for i := j; i < n; i++ {
			g.Entry(i).clear()
		}
		n = j
		g.Holes = false
	} else {
		for n > 0 && rt.LdUintptr(&g.Entry(n-1).Lock) == 0 {
			n--
		}
	}
	rt.StInt32(&g.N, n)
}

func (g *Gstate) HasReleased() bool { return g.nreleased.Load() != 0 }

// MarkReleased hands the release of e, a hold of another goroutine, to its
// owner. It reports false if e was released already.
func (e *HeldEntry) MarkReleased() bool {
	if !atomic.CompareAndSwapInt32(&e.Released, 0, 1) {
		return false
	}
	e.Rec.nreleased.Add(1)
	return true
}

// moveEntry copies the hold in src to dst and frees src. Owner only.
func moveEntry(dst, src *HeldEntry) {
	rt.StInt32(&dst.Flags, src.Flags)
	rt.StUintptr(&dst.Pc1, src.Pc1)
	rt.StUintptr(&dst.Pc2, src.Pc2)
	rt.StInt64(&dst.Start, rt.LdInt64(&src.Start))
	rt.StUint32(&dst.Stack, src.Stack)
	StUint64(&dst.LockID, src.LockID)
	rt.StPtr(&dst.Meta, src.Meta)
	rt.StUint32(&dst.Gen, dst.Gen+1)
	dst.Weight, dst.Ctx, dst.Chain, dst.Pend = src.Weight, src.Ctx, 0, src.Pend
	atomic.StoreInt32(&dst.Released, 0)
	atomic.StoreInt32(&dst.uncertain, atomic.LoadInt32(&src.uncertain))
	rt.StUintptr(&dst.Lock, src.Lock)
	src.Pend = nil
	src.clear()
}

// FindHeld returns the goroutine's live entry for c in the given mode, newest
// first, or nil. Owner only.
func (g *Gstate) FindHeld(c *LockCore, mode report.Mode) *HeldEntry {
	for i := g.N - 1; i >= 0; i-- {
		e := g.Entry(i)
		if e.Is(c) && e.Mode() == mode && atomic.LoadInt32(&e.Released) == 0 {
			return e
		}
	}
	return nil
}

// FindHeldAny returns goroutine g's live entry for the lock (addr, id) in
// mode, or nil. Observers may call it: it reads the entries with racy loads.
func (g *Gstate) FindHeldAny(addr uintptr, id uint64, mode report.Mode) *HeldEntry {
	n := g.Count()
	for i := int32(0); i < n; i++ {
		e := g.Entry(i)
		if e != nil && e.Addr() == addr && LdUint64(&e.LockID) == id && e.Mode() == mode &&
			atomic.LoadInt32(&e.Released) == 0 {
			return e
		}
	}
	return nil
}

// The table. Slot i of a table holds a goroutine id in goids[i] and its
// record in recs[i]; two arrays rather than an array of pairs, so that the
// 64-bit ids are aligned on 32-bit platforms too. A table is replaced, never
// resized in place: readers holding an old table still find every record
// they found before (records are shared between tables).

type gtable struct {
	_       [0]atomic.Int64
	Claimed atomic.Int64 // slots claimed, for growth and reclamation decisions
	tombs   atomic.Int64 // tombstones
	sealed  atomic.Bool  // being replaced: claims must go to the next table
	Mask    uint64
	goids   []int64          // 0 = never used, tombstone = freed; else the owner (racy; claimed by CAS)
	recs    []unsafe.Pointer // *gstate, kept across owners so records are reused
}

// tombstone marks a freed slot. Goroutine ids are positive; goidSlow never
// returns a value <= 0 (see goid.go).
const tombstone = -1

func newGtable(bits uint) *gtable {
	n := 1 << bits
	return &gtable{Mask: uint64(n - 1), goids: make([]int64, n), recs: make([]unsafe.Pointer, n)}
}

var (
	Gtab atomic.Pointer[gtable]
	// GtableMu serialises observers (Snapshot, watchdog), slot reclamation
	// and table growth with each other; owners take it only to grow.
	GtableMu rt.RankedMutex[rt.RGtable]
)

func init() { Gtab.Store(newGtable(GtableInitBits)) }

// LookupG returns the calling goroutine's record, claiming a slot the first
// time. The common case, the goroutine's own slot at its index, is inlined.
func LookupG(id int64) *Gstate {
	if g := ProbeG(id); g != nil {
		return g
	}
	return lookupGSlow(id)
}

// ProbeG is lookupG's first probe, small enough to be inlined into the lock
// methods: the goroutine's own slot at its index, or nil. Goroutine ids are
// handed out in sequence, so their low bits spread them without hashing.
func ProbeG(id int64) *Gstate {
	t := Gtab.Load()
	i := uint64(id) & t.Mask
	if rt.LdInt64(&t.goids[i]) != id {
		return nil
	}
	return (*Gstate)(rt.LdPtr(&t.recs[i]))
}

// FindG returns goroutine id's record without claiming one, or nil. Any
// goroutine may call it.
func FindG(id int64) *Gstate { return Gtab.Load().find(id) }

func (t *gtable) find(id int64) *Gstate {
	for p := uint64(0); p <= t.Mask; p++ {
		i := (uint64(id) + p) & t.Mask
		switch rt.LdInt64(&t.goids[i]) {
		case id:
			return (*Gstate)(rt.LdPtr(&t.recs[i]))
		case 0:
			return nil
		}
	}
	return nil
}

//go:noinline
func lookupGSlow(id int64) *Gstate {
	for {
		t := Gtab.Load()
		if g := t.find(id); g != nil {
			return g
		}
		if g := t.claim(id); g != nil {
			if !t.sealed.Load() {
				// Claimed before any growth sealed t: a copy of t made
				// after sealing sees the slot.
				if c, n := uint64(t.Claimed.Load()), t.Mask+1; c > n/2 || c+uint64(t.tombs.Load()) > n/4*3 {
					growGtable(t)
				}
				return g
			}
		} else {
			growGtable(t)
		}
		// t is being replaced, and its copy may have missed our slot: wait
		// for the new table and look again there (only goroutine id claims
		// for id, so there is no duplicate to guard against).
		for Gtab.Load() == t {
			runtime.Gosched()
		}
	}
}

// claim takes a free or tombstoned slot for goroutine id, or returns nil if
// the table is full.
func (t *gtable) claim(id int64) *Gstate {
	for p := uint64(0); p <= t.Mask; p++ {
		i := (uint64(id) + p) & t.Mask
		old := atomic.LoadInt64(&t.goids[i])
		if old != 0 && old != tombstone {
			continue
		}
		if !atomic.CompareAndSwapInt64(&t.goids[i], old, id) {
			continue
		}
		if old == tombstone {
			t.tombs.Add(-1)
		}
		g := (*Gstate)(atomic.LoadPointer(&t.recs[i]))
		if g == nil {
			g = newGstate()
			atomic.StorePointer(&t.recs[i], unsafe.Pointer(g))
		}
		atomic.StoreInt64(&g.Goid, id)
		atomic.StoreInt64(&g.Claimed, rt.Nanotime())
		t.Claimed.Add(1)
		return g
	}
	return nil
}

// growGtable replaces t by a table at most a quarter full, rid of its
// tombstones. Its cost (a pass over t) is paid by one claim in many.
func growGtable(t *gtable) {
	GtableMu.Lock()
	defer GtableMu.Unlock()
	if Gtab.Load() != t {
		return
	}
	t.sealed.Store(true) // from here on, claims in t are redone in nt
	bits := uint(GtableInitBits)
	for uint64(1)<<bits < 4*uint64(t.Claimed.Load()+1) {
		bits++
	}
	nt := newGtable(bits)
	copied := int64(0)
	for i := range t.goids {
		id := atomic.LoadInt64(&t.goids[i])
		if id == 0 || id == tombstone {
			continue
		}
		rec := atomic.LoadPointer(&t.recs[i])
		for rec == nil {
			// Claimed a moment ago by a goroutine that is storing its
			// new record: wait for it (it holds no lock meanwhile).
			runtime.Gosched()
			rec = atomic.LoadPointer(&t.recs[i])
		}
		for p := uint64(0); ; p++ {
			j := (uint64(id) + p) & nt.Mask
			if nt.goids[j] == 0 {
				nt.goids[j] = id
				nt.recs[j] = rec
				copied++
				break
			}
		}
	}
	nt.Claimed.Store(copied)
	Gtab.Store(nt)
	rt.KickWatchdog() // it may be time to reclaim exited goroutines' slots
}

func newGstate() *Gstate {
	g := new(Gstate)
	for i := range g.Inline {
		g.Inline[i].idx = int32(i)
		g.Inline[i].Rec = g
	}
	g.Wait.G = g
	return g
}

// ForEachG calls f for every claimed record. Callers hold gtableMu.
func ForEachG(f func(id int64, g *Gstate)) {
	t := Gtab.Load()
	for i := range t.goids {
		id := atomic.LoadInt64(&t.goids[i])
		if id == 0 || id == tombstone {
			continue
		}
		if g := (*Gstate)(atomic.LoadPointer(&t.recs[i])); g != nil && atomic.LoadInt64(&g.Goid) == id {
			f(id, g)
		}
	}
}

// FreeG returns the slot of an exited goroutine. Callers hold gtableMu and
// know that goroutine id has exited (goroutine ids are never reused).
func FreeG(id int64) {
	t := Gtab.Load()
	for p := uint64(0); p <= t.Mask; p++ {
		i := (uint64(id) + p) & t.Mask
		switch atomic.LoadInt64(&t.goids[i]) {
		case 0:
			return
		case id:
			if g := (*Gstate)(atomic.LoadPointer(&t.recs[i])); g != nil {
				n := g.Count()
				for j := int32(0); j < n; j++ {
					if e := g.Entry(j); e != nil {
						e.clear()
					}
				}
				atomic.StoreInt32(&g.N, 0)
				g.Holes = false
				g.UntrackedHeld = 0
				g.nreleased.Store(0)
			}
			atomic.StoreInt64(&t.goids[i], tombstone)
			t.Claimed.Add(-1)
			t.tombs.Add(1)
			return
		}
	}
}

// nextLockID hands out lock ids in batches, so that fresh locks do not all
// contend on one counter.
var nextLockID atomic.Uint64

const lockIDBatch = 1024

// NewLockID returns an unused lock id, from g's batch when g is known.
func NewLockID(g *Gstate) uint64 {
	if g == nil {
		return nextLockID.Add(1) // reserves just this one: batches are ranges of the same counter
	}
	if g.idNext == g.idEnd {
		g.idEnd = nextLockID.Add(lockIDBatch) + 1
		g.idNext = g.idEnd - lockIDBatch
	}
	id := g.idNext
	g.idNext++
	return id
}
