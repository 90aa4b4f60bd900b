package debugmutex

import (
	"context"
	"runtime"
	"sync/atomic"
	"unsafe"
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
	inlineHeld = 4  // entries inside the record: most goroutines hold 1-2 locks
	chunkHeld  = 64 // entries per chunk allocated on deeper nesting
	maxChunks  = 63 // chunks per record: up to 4+63*64 = 4036 holds tracked
	maxHeld    = inlineHeld + chunkHeld*maxChunks

	gtableInitBits = 12 // 4096 slots to start with; grows past half full
)

// heldEntry is one lock held by a goroutine.
type heldEntry struct {
	_ [0]atomic.Int64 // 64-bit alignment of the int64 fields on 32-bit platforms

	// Fields other goroutines read are racy words (see racy.go).
	start  int64   // nanotime of acquisition if known, else first time the watchdog saw it (racy; CAS by observers)
	lockID uint64  // the lock's id (racy)
	lock   uintptr // the lock's address, 0 when the entry is free (racy): compared, never followed by observers
	meta   unsafe.Pointer
	// meta is the lock's *lockMeta if it had one when it was taken (racy):
	// lockscope's own object, which never points at the lock.

	released int32 // set (atomically) by a goroutine that unlocked this hold for the owner
	// uncertain (atomic): a read hold of a lock whose read holds are
	// released by other goroutines. Which goroutine's hold such a release
	// ends is a guess, so no detector relies on it.
	uncertain int32
	flags     int32  // flagRead, flagTry, flagExact, flagRW
	gen       uint32 // bumped at every push (racy): tells observers a slot now holds another hold
	stack     uint32 // interned acquire stack, 0 if not captured
	pc1, pc2  uintptr
	// pc1, pc2: the acquire site, the return address into the caller of the
	// lock method and the one above (racy).

	idx    int32           // position in rec; constant
	weight int32           // sampling weight of this acquisition for hold statistics; 0 = not sampled (owner only)
	chain  uint64          // hash of the chain of held locks up to and including this one (owner only)
	pend   *pending        // lock-order dependencies waiting for this hold's release (owner only)
	ctx    context.Context // owner only; cleared at release
	rec    *gstate
}

const (
	flagRead       = 1 << iota // held for reading
	flagTry                    // taken by TryLock: cannot block, so no lock-order edges into it
	flagExact                  // start is the real acquisition time
	flagRW                     // the lock is an RWMutex
	flagBaton                  // the lock had been handed off before this hold was taken
	flagRegistered             // a read hold registered in its lock's meta (stateReadHandedOff)
)

func (e *heldEntry) addr() uintptr { return ldUintptr(&e.lock) }

func (e *heldEntry) is(c *lockCore) bool {
	return ldUintptr(&e.lock) == uintptr(unsafe.Pointer(c)) && ldUint64(&e.lockID) == ldUint64(&c.id)
}

func (e *heldEntry) mode() Mode {
	if ldInt32(&e.flags)&flagRead != 0 {
		return Read
	}
	return Write
}

func (e *heldEntry) typ() string {
	if ldInt32(&e.flags)&flagRW != 0 {
		return rwMutexType
	}
	return mutexType
}

func (e *heldEntry) exact() bool { return ldInt32(&e.flags)&flagExact != 0 }

func (e *heldEntry) isUncertain() bool { return atomic.LoadInt32(&e.uncertain) != 0 }

func (e *heldEntry) getMeta() *lockMeta { return (*lockMeta)(ldPtr(&e.meta)) }

// site returns the acquire site's two return addresses.
func (e *heldEntry) site() (uintptr, uintptr) { return ldUintptr(&e.pc1), ldUintptr(&e.pc2) }

// siteOnly says whether the hold has no stack of its own (not timed):
// stackOrSite gives its site alone.
func (e *heldEntry) siteOnly() bool { return ldUint32(&e.stack) == 0 }

// stackOrSite returns the interned acquire stack, or the site's one-frame stack.
func (e *heldEntry) stackOrSite() uint32 {
	if s := ldUint32(&e.stack); s != 0 {
		return s
	}
	return siteStack(e.site())
}

// live says whether the entry is a hold that has not been released.
func (e *heldEntry) live() bool {
	return ldUintptr(&e.lock) != 0 && atomic.LoadInt32(&e.released) == 0
}

// lockInfo names the entry's lock without touching the lock: as its meta
// would (lockMeta.Name: by its declaration where the acquire site's source
// tells, else by the site), when it has none.
func (e *heldEntry) lockInfo() LockInfo {
	if m := e.getMeta(); m != nil {
		return m.info()
	}
	return LockInfo{ID: ldUint64(&e.lockID), Name: *nameOfSite(e.site()), Type: e.typ()}
}

// clear frees the entry. Owner, or reclamation of an exited goroutine.
// Writes are skipped where the field is already clear: this is on every
// unlock's path, and an atomic store or a pointer write (with its write
// barrier check) costs more than the load that avoids it.
func (e *heldEntry) clear() {
	if ldInt32(&e.flags)&flagRegistered != 0 && ldUintptr(&e.lock) != 0 {
		e.unregisterReader()
		stInt32(&e.flags, 0)
	}
	stUintptr(&e.lock, 0)
	if ldPtr(&e.meta) != nil {
		stPtr(&e.meta, nil)
	}
	if atomic.LoadInt32(&e.released) != 0 {
		atomic.StoreInt32(&e.released, 0)
	}
	if atomic.LoadInt32(&e.uncertain) != 0 {
		atomic.StoreInt32(&e.uncertain, 0)
	}
	if e.ctx != nil {
		e.ctx = nil
	}
	if e.pend != nil {
		e.pend = nil
	}
}

// gstate is one goroutine's record.
type gstate struct {
	_       [0]atomic.Int64
	goid    int64 // owner; constant while the slot is claimed (atomic)
	claimed int64 // nanotime the owner claimed the slot (atomic): reclamation frees only slots claimed before its snapshot of live goroutines
	idNext  uint64
	idEnd   uint64 // lock ids handed out by this goroutine: [idNext, idEnd) (owner only)

	n     int32 // entries in use, top+1 (racy)
	holes bool  // an entry below the top was freed (owner only)

	// Sampling of read holds of locks whose holds are short (period > 1),
	// per goroutine rather than per lock, so that readers do not all write
	// the lock's cache line (owner only): read acquisitions until the next
	// timed one, and the gap that ends there (its weight).
	rcount, rgap int32

	inline [inlineHeld]heldEntry
	chunks unsafe.Pointer // *[maxChunks]unsafe.Pointer of *[chunkHeld]heldEntry, allocated on deep nesting, never moved (racy)

	untracked atomic.Int64 // acquisitions not recorded because nesting exceeded maxHeld
	// untrackedHeld is how many of those are still held (owner only): an
	// unlock that finds no entry of its own pays one of them off rather than
	// being taken for somebody else's or for nobody's.
	untrackedHeld int64
	// nreleased counts entries other goroutines have marked released since
	// the owner last tidied: one load tells the owner whether to look.
	nreleased atomic.Int32

	// wait is the goroutine's current wait; guarded by waitMu.
	wait waiter
}

func (g *gstate) entry(i int32) *heldEntry {
	if i < inlineHeld {
		return &g.inline[i]
	}
	j := i - inlineHeld
	dir := (*[maxChunks]unsafe.Pointer)(ldPtr(&g.chunks))
	if dir == nil {
		return nil
	}
	ch := (*[chunkHeld]heldEntry)(ldPtr(&dir[j/chunkHeld]))
	if ch == nil {
		return nil
	}
	return &ch[j%chunkHeld]
}

// count returns the number of entry slots in use, for observers.
func (g *gstate) count() int32 {
	n := ldInt32(&g.n)
	if n > maxHeld {
		n = maxHeld
	}
	return n
}

// push records a new hold. It returns nil when nesting is too deep to track.
func (g *gstate) push() *heldEntry {
	n := g.n
	if n >= inlineHeld {
		if n >= maxHeld {
			g.untracked.Add(1)
			g.untrackedHeld++
			return nil
		}
		c := (n - inlineHeld) / chunkHeld
		dir := (*[maxChunks]unsafe.Pointer)(g.chunks)
		if dir == nil {
			dir = new([maxChunks]unsafe.Pointer)
			stPtr(&g.chunks, unsafe.Pointer(dir))
		}
		if dir[c] == nil {
			ch := new([chunkHeld]heldEntry)
			for i := range ch {
				ch[i].idx = inlineHeld + c*chunkHeld + int32(i)
				ch[i].rec = g
			}
			stPtr(&dir[c], unsafe.Pointer(ch))
		}
	}
	e := g.entry(n)
	stInt32(&g.n, n+1)
	return e
}

// top returns the newest live entry, or nil.
func (g *gstate) top() *heldEntry {
	for i := g.n - 1; i >= 0; i-- {
		if e := g.entry(i); e.live() {
			return e
		}
	}
	return nil
}

// pop frees e, which the owner (the calling goroutine) held and released
// itself, once whatever was pending on it is committed (popReporting).
// Releasing the newest hold (LIFO, the usual case) is a few stores.
func (g *gstate) pop(e *heldEntry) {
	e.clear()
	n := g.n - 1
	if e.idx != n {
		g.holes = true
		return
	}
	if g.holes || (n > 0 && ldUintptr(&g.entry(n-1).lock) == 0) {
		g.trim()
		return
	}
	stInt32(&g.n, n)
}

// trim drops free and released entries from the top, and, when holes were
// left below the top (non-LIFO unlocking), compacts the list so that chain
// hashes describe exactly the locks held. Owner only.
func (g *gstate) trim() {
	n := g.n
	if g.holes || g.hasReleased() {
		g.nreleased.Store(0) // every released entry is dropped below
		j := int32(0)
		var chain uint64
		for i := int32(0); i < n; i++ {
			e := g.entry(i)
			if !e.live() {
				// Released by another goroutine (a hand-off): what this
				// goroutine did while the entry said it held the lock
				// proves nothing about its lock order. Forget it.
				if e.lock != 0 {
					e.clear()
				}
				continue
			}
			if i != j {
				moveEntry(g.entry(j), e)
			}
			d := g.entry(j)
			chain = chainMix(chain, ldUint64(&d.lockID), d.mode())
			d.chain = chain
			j++
		}
		for i := j; i < n; i++ {
			g.entry(i).clear()
		}
		n = j
		g.holes = false
	} else {
		for n > 0 && ldUintptr(&g.entry(n-1).lock) == 0 {
			n--
		}
	}
	stInt32(&g.n, n)
}

func (g *gstate) hasReleased() bool { return g.nreleased.Load() != 0 }

// markReleased hands the release of e, a hold of another goroutine, to its
// owner. It reports false if e was released already.
func (e *heldEntry) markReleased() bool {
	if !atomic.CompareAndSwapInt32(&e.released, 0, 1) {
		return false
	}
	e.rec.nreleased.Add(1)
	return true
}

// moveEntry copies the hold in src to dst and frees src. Owner only.
func moveEntry(dst, src *heldEntry) {
	stInt32(&dst.flags, src.flags)
	stUintptr(&dst.pc1, src.pc1)
	stUintptr(&dst.pc2, src.pc2)
	stInt64(&dst.start, ldInt64(&src.start))
	stUint32(&dst.stack, src.stack)
	stUint64(&dst.lockID, src.lockID)
	stPtr(&dst.meta, src.meta)
	stUint32(&dst.gen, dst.gen+1)
	dst.weight, dst.ctx, dst.chain, dst.pend = src.weight, src.ctx, 0, src.pend
	atomic.StoreInt32(&dst.released, 0)
	atomic.StoreInt32(&dst.uncertain, atomic.LoadInt32(&src.uncertain))
	stUintptr(&dst.lock, src.lock)
	src.pend = nil
	src.clear()
}

// findHeld returns the goroutine's live entry for c in the given mode, newest
// first, or nil. Owner only.
func (g *gstate) findHeld(c *lockCore, mode Mode) *heldEntry {
	for i := g.n - 1; i >= 0; i-- {
		e := g.entry(i)
		if e.is(c) && e.mode() == mode && atomic.LoadInt32(&e.released) == 0 {
			return e
		}
	}
	return nil
}

// findHeldAny returns goroutine g's live entry for the lock (addr, id) in
// mode, or nil. Observers may call it: it reads the entries with racy loads.
func (g *gstate) findHeldAny(addr uintptr, id uint64, mode Mode) *heldEntry {
	n := g.count()
	for i := int32(0); i < n; i++ {
		e := g.entry(i)
		if e != nil && e.addr() == addr && ldUint64(&e.lockID) == id && e.mode() == mode &&
			atomic.LoadInt32(&e.released) == 0 {
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
	claimed atomic.Int64 // slots claimed, for growth and reclamation decisions
	tombs   atomic.Int64 // tombstones
	sealed  atomic.Bool  // being replaced: claims must go to the next table
	mask    uint64
	goids   []int64          // 0 = never used, tombstone = freed; else the owner (racy; claimed by CAS)
	recs    []unsafe.Pointer // *gstate, kept across owners so records are reused
}

// tombstone marks a freed slot. Goroutine ids are positive; goidSlow never
// returns a value <= 0 (see goid.go).
const tombstone = -1

func newGtable(bits uint) *gtable {
	n := 1 << bits
	return &gtable{mask: uint64(n - 1), goids: make([]int64, n), recs: make([]unsafe.Pointer, n)}
}

var (
	gtab atomic.Pointer[gtable]
	// gtableMu serialises observers (Snapshot, watchdog), slot reclamation
	// and table growth with each other; owners take it only to grow.
	gtableMu rankedMutex[rGtable]
)

func init() { gtab.Store(newGtable(gtableInitBits)) }

// lookupG returns the calling goroutine's record, claiming a slot the first
// time. The common case, the goroutine's own slot at its index, is inlined.
func lookupG(id int64) *gstate {
	if g := probeG(id); g != nil {
		return g
	}
	return lookupGSlow(id)
}

// probeG is lookupG's first probe, small enough to be inlined into the lock
// methods: the goroutine's own slot at its index, or nil. Goroutine ids are
// handed out in sequence, so their low bits spread them without hashing.
func probeG(id int64) *gstate {
	t := gtab.Load()
	i := uint64(id) & t.mask
	if ldInt64(&t.goids[i]) != id {
		return nil
	}
	return (*gstate)(ldPtr(&t.recs[i]))
}

// findG returns goroutine id's record without claiming one, or nil. Any
// goroutine may call it.
func findG(id int64) *gstate { return gtab.Load().find(id) }

func (t *gtable) find(id int64) *gstate {
	for p := uint64(0); p <= t.mask; p++ {
		i := (uint64(id) + p) & t.mask
		switch ldInt64(&t.goids[i]) {
		case id:
			return (*gstate)(ldPtr(&t.recs[i]))
		case 0:
			return nil
		}
	}
	return nil
}

//go:noinline
func lookupGSlow(id int64) *gstate {
	for {
		t := gtab.Load()
		if g := t.find(id); g != nil {
			return g
		}
		if g := t.claim(id); g != nil {
			if !t.sealed.Load() {
				// Claimed before any growth sealed t: a copy of t made
				// after sealing sees the slot.
				if c, n := uint64(t.claimed.Load()), t.mask+1; c > n/2 || c+uint64(t.tombs.Load()) > n/4*3 {
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
		for gtab.Load() == t {
			runtime.Gosched()
		}
	}
}

// claim takes a free or tombstoned slot for goroutine id, or returns nil if
// the table is full.
func (t *gtable) claim(id int64) *gstate {
	for p := uint64(0); p <= t.mask; p++ {
		i := (uint64(id) + p) & t.mask
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
		g := (*gstate)(atomic.LoadPointer(&t.recs[i]))
		if g == nil {
			g = newGstate()
			atomic.StorePointer(&t.recs[i], unsafe.Pointer(g))
		}
		atomic.StoreInt64(&g.goid, id)
		atomic.StoreInt64(&g.claimed, nanotime())
		t.claimed.Add(1)
		return g
	}
	return nil
}

// growGtable replaces t by a table at most a quarter full, rid of its
// tombstones. Its cost (a pass over t) is paid by one claim in many.
func growGtable(t *gtable) {
	gtableMu.Lock()
	defer gtableMu.Unlock()
	if gtab.Load() != t {
		return
	}
	t.sealed.Store(true) // from here on, claims in t are redone in nt
	bits := uint(gtableInitBits)
	for uint64(1)<<bits < 4*uint64(t.claimed.Load()+1) {
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
			j := (uint64(id) + p) & nt.mask
			if nt.goids[j] == 0 {
				nt.goids[j] = id
				nt.recs[j] = rec
				copied++
				break
			}
		}
	}
	nt.claimed.Store(copied)
	gtab.Store(nt)
	kickWatchdog() // it may be time to reclaim exited goroutines' slots
}

func newGstate() *gstate {
	g := new(gstate)
	for i := range g.inline {
		g.inline[i].idx = int32(i)
		g.inline[i].rec = g
	}
	g.wait.g = g
	return g
}

// forEachG calls f for every claimed record. Callers hold gtableMu.
func forEachG(f func(id int64, g *gstate)) {
	t := gtab.Load()
	for i := range t.goids {
		id := atomic.LoadInt64(&t.goids[i])
		if id == 0 || id == tombstone {
			continue
		}
		if g := (*gstate)(atomic.LoadPointer(&t.recs[i])); g != nil && atomic.LoadInt64(&g.goid) == id {
			f(id, g)
		}
	}
}

// freeG returns the slot of an exited goroutine. Callers hold gtableMu and
// know that goroutine id has exited (goroutine ids are never reused).
func freeG(id int64) {
	t := gtab.Load()
	for p := uint64(0); p <= t.mask; p++ {
		i := (uint64(id) + p) & t.mask
		switch atomic.LoadInt64(&t.goids[i]) {
		case 0:
			return
		case id:
			if g := (*gstate)(atomic.LoadPointer(&t.recs[i])); g != nil {
				n := g.count()
				for j := int32(0); j < n; j++ {
					if e := g.entry(j); e != nil {
						e.clear()
					}
				}
				atomic.StoreInt32(&g.n, 0)
				g.holes = false
				g.untrackedHeld = 0
				g.nreleased.Store(0)
			}
			atomic.StoreInt64(&t.goids[i], tombstone)
			t.claimed.Add(-1)
			t.tombs.Add(1)
			return
		}
	}
}

// nextLockID hands out lock ids in batches, so that fresh locks do not all
// contend on one counter.
var nextLockID atomic.Uint64

const lockIDBatch = 1024

// newLockID returns an unused lock id, from g's batch when g is known.
func newLockID(g *gstate) uint64 {
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
