package debugmutex

import (
	"context"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Per-goroutine records.
//
// Every goroutine that holds locks has a gstate: the locks it holds, in the
// order it took them (lock-order detection needs "what do I hold" on every
// acquisition), and, while it is blocked, what it waits for (the wait-for
// graph). Records live in a fixed table indexed by goroutine id with open
// addressing. The owner finds its record with a hash and a compare (no lock,
// no map); slots are claimed by CAS the first time a goroutine locks
// anything and kept while it lives (claiming and releasing on every outer
// Lock would cost two more atomics); the watchdog frees the slots of
// goroutines that have exited when the table fills up.
//
// Only the owner writes its entries. Other goroutines (a goroutine unlocking
// a lock it did not lock, Snapshot, the watchdog, waiters checking for
// cycles) read them with racy word loads and, to hand a lock's release over,
// set the entry's released flag atomically; the owner drops released entries
// the next time it touches its list.

const (
	inlineHeld = 4  // entries inside the record: most goroutines hold 1-2 locks
	moreHeld   = 60 // entries allocated on the first deeper nesting
	maxHeld    = inlineHeld + moreHeld

	gtableBits  = 16 // 65536 slots: 1 MiB of slots, records allocated on use
	gtableSize  = 1 << gtableBits
	gtableProbe = 64 // give up (goroutine untracked) after this many slots
)

// heldEntry is one lock held by a goroutine.
type heldEntry struct {
	// Fields other goroutines read are racy words (see racy.go): core,
	// released, flags, pc1, pc2, start, stack.
	core     unsafe.Pointer // *lockCore; nil when the entry is free
	released int32          // set (atomically) by a goroutine that unlocked this hold for the owner
	flags    int32          // flagRead, flagTry, flagExact
	idx      int32          // position in rec; constant
	rec      *gstate
	pc1, pc2 uintptr         // acquire site: the return address into the caller of the lock method, and above
	start    int64           // nanotime of acquisition if known, else first time the watchdog saw it
	stack    uint32          // interned acquire stack, 0 if not captured
	weight   int32           // sampling weight of this acquisition for hold statistics; 0 = not sampled (owner only)
	chain    uint64          // hash of the chain of held locks up to and including this one (owner only)
	ctx      context.Context // owner only
}

const (
	flagRead  = 1 << iota // held for reading
	flagTry               // taken by TryLock: cannot block, so no lock-order edges into it
	flagExact             // start is the real acquisition time
)

func (e *heldEntry) lock() *lockCore { return (*lockCore)(ldPtr(&e.core)) }

func (e *heldEntry) mode() Mode {
	if ldInt32(&e.flags)&flagRead != 0 {
		return Read
	}
	return Write
}

func (e *heldEntry) exact() bool { return ldInt32(&e.flags)&flagExact != 0 }

// site returns the acquire site's two return addresses.
func (e *heldEntry) site() (uintptr, uintptr) { return ldUintptr(&e.pc1), ldUintptr(&e.pc2) }

// stackOrSite returns the interned acquire stack, or the site's one-frame stack.
func (e *heldEntry) stackOrSite() uint32 {
	if s := ldUint32(&e.stack); s != 0 {
		return s
	}
	return siteStack(e.site())
}

// live says whether the entry is a hold that has not been released.
func (e *heldEntry) live() bool {
	return ldPtr(&e.core) != nil && atomic.LoadInt32(&e.released) == 0
}

// gstate is one goroutine's record.
type gstate struct {
	goid    int64 // owner; constant while the slot is claimed
	claimed int64 // nanotime the owner claimed the slot (atomic): reclamation frees only slots claimed before its snapshot of live goroutines
	n       int32 // entries in use, top+1 (racy)
	holes   bool  // an entry below the top was freed (owner only)
	inline  [inlineHeld]heldEntry
	more    unsafe.Pointer // *[moreHeld]heldEntry, allocated on first deep nesting (racy)

	untracked atomic.Int64 // acquisitions not recorded because nesting exceeded maxHeld
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
	more := (*[moreHeld]heldEntry)(ldPtr(&g.more))
	if more == nil {
		return nil
	}
	return &more[i-inlineHeld]
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
			return nil
		}
		if g.more == nil {
			more := new([moreHeld]heldEntry)
			for i := range more {
				more[i].idx = int32(inlineHeld + i)
				more[i].rec = g
			}
			stPtr(&g.more, unsafe.Pointer(more))
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

// pop frees e, which the owner (the calling goroutine) holds. Releasing
// the newest hold (LIFO, the usual case) is a few stores.
func (g *gstate) pop(e *heldEntry) {
	stPtr(&e.core, nil)
	if e.ctx != nil {
		e.ctx = nil
	}
	n := g.n - 1
	if e.idx != n {
		g.holes = true
		return
	}
	if g.holes || (n > 0 && ldPtr(&g.entry(n-1).core) == nil) {
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
				continue
			}
			if i != j {
				moveEntry(g.entry(j), e)
			}
			d := g.entry(j)
			chain = chainMix(chain, d.lock(), d.mode())
			d.chain = chain
			j++
		}
		for i := j; i < n; i++ {
			e := g.entry(i)
			stPtr(&e.core, nil)
			atomic.StoreInt32(&e.released, 0)
			e.ctx = nil
		}
		n = j
		g.holes = false
	} else {
		for n > 0 && ldPtr(&g.entry(n-1).core) == nil {
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
	dst.weight, dst.ctx, dst.chain = src.weight, src.ctx, 0
	atomic.StoreInt32(&dst.released, 0)
	stPtr(&dst.core, ldPtr(&src.core))
	stPtr(&src.core, nil)
	src.ctx = nil
}

// findHeld returns the goroutine's live entry for c in the given mode, newest
// first, or nil.
func (g *gstate) findHeld(c *lockCore, mode Mode) *heldEntry {
	for i := g.n - 1; i >= 0; i-- {
		e := g.entry(i)
		if e.lock() == c && e.mode() == mode && atomic.LoadInt32(&e.released) == 0 {
			return e
		}
	}
	return nil
}

// The table.

type gslot struct {
	goid int64          // 0 = never used, tombstone = freed; else the owner (racy; claimed by CAS)
	rec  unsafe.Pointer // *gstate, kept across owners so records are reused
}

const tombstone = -1

var (
	gtable [gtableSize]gslot
	// gtableMu serialises observers (Snapshot, watchdog) and slot reclamation
	// with each other; owners never take it.
	gtableMu sync.Mutex
	gclaimed atomic.Int64 // slots claimed, for reclamation decisions
	guntrack atomic.Int64 // goroutines that found no free slot
)

// gslotIndex is where goroutine id's probe sequence starts: goroutine ids
// are handed out in sequence, so their low bits spread them evenly without
// hashing (and lookupG's inlined fast path stays within the inliner's
// budget). gtableBits must be 16 for the uint16 conversion in lookupG.
func gslotIndex(id int64) uint64 { return uint64(uint16(id)) }

// lookupG returns the calling goroutine's record, claiming a slot the first
// time. It returns nil if the table is full around this goroutine's hash.
// The common case, the goroutine's own slot at its hash, is inlined.
func lookupG(id int64) *gstate {
	if g := probeG(id); g != nil {
		return g
	}
	return lookupGSlow(id)
}

// probeG is lookupG's first probe, small enough to be inlined into the lock
// methods: the goroutine's own slot at its index, or nil.
func probeG(id int64) *gstate {
	s := &gtable[uint16(id)]
	if ldInt64(&s.goid) != id {
		return nil
	}
	return (*gstate)(ldPtr(&s.rec))
}

// findG returns goroutine id's record without claiming one, or nil. Any
// goroutine may call it.
func findG(id int64) *gstate {
	i := gslotIndex(id)
	for p := 0; p < gtableProbe; p++ {
		s := &gtable[(i+uint64(p))&(gtableSize-1)]
		switch ldInt64(&s.goid) {
		case id:
			return (*gstate)(ldPtr(&s.rec))
		case 0:
			return nil
		}
	}
	return nil
}

func lookupGSlow(id int64) *gstate {
	if g := findG(id); g != nil {
		return g
	}
	return claimG(id)
}

// claimG takes a free or tombstoned slot for goroutine id. Only goroutine id
// ever claims a slot for id, so there is no duplicate to guard against.
func claimG(id int64) *gstate {
	i := gslotIndex(id)
	for p := 0; p < gtableProbe; p++ {
		s := &gtable[(i+uint64(p))&(gtableSize-1)]
		old := atomic.LoadInt64(&s.goid)
		if old != 0 && old != tombstone {
			continue
		}
		if !atomic.CompareAndSwapInt64(&s.goid, old, id) {
			continue
		}
		g := (*gstate)(atomic.LoadPointer(&s.rec))
		if g == nil {
			g = newGstate()
			atomic.StorePointer(&s.rec, unsafe.Pointer(g))
		}
		atomic.StoreInt64(&g.goid, id)
		atomic.StoreInt64(&g.claimed, nanotime())
		if gclaimed.Add(1) > gtableSize/2 {
			kickWatchdog()
		}
		return g
	}
	guntrack.Add(1)
	return nil
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
	for i := range gtable {
		s := &gtable[i]
		id := atomic.LoadInt64(&s.goid)
		if id == 0 || id == tombstone {
			continue
		}
		if g := (*gstate)(atomic.LoadPointer(&s.rec)); g != nil && atomic.LoadInt64(&g.goid) == id {
			f(id, g)
		}
	}
}

// freeG returns the slot of an exited goroutine. Callers hold gtableMu and
// know that goroutine id has exited (goroutine ids are never reused).
func freeG(id int64) {
	i := gslotIndex(id)
	for p := 0; p < gtableProbe; p++ {
		s := &gtable[(i+uint64(p))&(gtableSize-1)]
		if atomic.LoadInt64(&s.goid) == id {
			if g := (*gstate)(atomic.LoadPointer(&s.rec)); g != nil {
				for j := int32(0); j < maxHeld; j++ {
					if e := g.entry(j); e != nil {
						atomic.StorePointer(&e.core, nil)
						atomic.StoreInt32(&e.released, 0)
						e.ctx = nil
					}
				}
				atomic.StoreInt32(&g.n, 0)
				g.holes = false
			}
			atomic.StoreInt64(&s.goid, tombstone)
			gclaimed.Add(-1)
			return
		}
	}
}
