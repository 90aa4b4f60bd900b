package debugmutex

import (
	"sync/atomic"
	"unsafe"
)

// The fast paths: an uncontended acquisition that is the goroutine's only
// hold, not sampled, of a lock past its first use, and its release. They do
// exactly what acquiredStack and gstate.pop do in that case (tests compare
// the two: fastpath_test.go), without the branches on the lock's type, the
// mode, TryLock, a context, nesting and sampling that the general path
// takes: counted with callgrind, they take an uncontended Lock+Unlock from
// ~430 instructions to ~310, RLock+RUnlock from ~425 to ~300 (go test
// -bench: 27 to 18.5 ns, and 25 to 17.7 ns; sync 4.7 and 4.2). Anything
// else returns false, having changed nothing, and the general path runs.

// The holds fastAcquire records.
const (
	fastMutex   = iota // a Mutex's write hold
	fastRead           // an RWMutex's read hold
	fastRWWrite        // an RWMutex's write hold
)

// fastAcquire records the hold of c just taken by goroutine id (record g,
// lock method frame fp), of the kind given: a Mutex's write hold; a read
// hold of an RWMutex whose reads are short (sampled per goroutine),
// read-locked before, whose read holds are not handed off; or an RWMutex's
// write hold that the write guard has nothing to learn from (see
// writeOutermost).
func (c *lockCore) fastAcquire(g *gstate, id int64, fp unsafe.Pointer, kind int) bool {
	// The lock's fields are loaded together, right after the real lock's
	// atomic brought its cache line here.
	st := atomic.LoadInt32(&c.state)
	lid := ldUint64(&c.id)
	meta := atomic.LoadPointer(&c.meta)
	if g.n != 0 || lid == 0 || st&stateTagMask != addrTag(c) {
		return false
	}
	var flags int32
	switch kind {
	case fastRead:
		if g.rcount <= 1 || ldInt32(&c.period) <= 1 || st&(stateReadHandedOff|stateReadSeen) != stateReadSeen {
			return false
		}
		g.rcount--
		flags = flagRead | flagRW
	case fastRWWrite:
		if st&(stateReadSeen|stateWriteUnguarded) == stateReadSeen {
			return false // writeOutermost has something to note
		}
		flags = flagRW
		fallthrough
	default:
		if c.countdown <= 1 {
			return false
		}
		c.countdown--
	}
	if st&stateHandedOff != 0 {
		flags |= flagBaton
	}
	// The entry, in the order acquiredStack writes it: the count first, the
	// lock's address last (observers take an entry whose lock is 0 for
	// free).
	pc1, pc2 := callerPCs(fp)
	e := &g.inline[0]
	stInt32(&g.n, 1)
	stUintptr(&e.pc1, pc1)
	stUintptr(&e.pc2, pc2)
	stUint64(&e.lockID, lid)
	stPtr(&e.meta, meta)
	stUint32(&e.gen, e.gen+1)
	e.weight = 0
	e.chain = 0
	stUint32(&e.stack, 0)
	stInt64(&e.start, 0)
	stInt32(&e.flags, flags)
	stUintptr(&e.lock, uintptr(unsafe.Pointer(c)))
	if kind != fastRead {
		stInt64(&c.holder, id)
	}
	return true
}

// canFastRelease reports whether g's only hold is an untimed hold of c in
// mode read (flagRead) or write (0) with nothing attached, which
// releaseFirst releases.
func (g *gstate) canFastRelease(c *lockCore, read int32) bool {
	e := &g.inline[0]
	return g.n == 1 && !g.holes && e.lock == uintptr(unsafe.Pointer(c)) && e.flags&(flagRead|flagRegistered) == read &&
		ldInt64(&e.start) == 0 && e.pend == nil && e.ctx == nil &&
		atomic.LoadInt32(&e.released) == 0 && atomic.LoadInt32(&e.uncertain) == 0
}

// releaseFirst is gstate.pop of the first entry, less the checks that
// canFastRelease made.
func (g *gstate) releaseFirst() {
	e := &g.inline[0]
	stUintptr(&e.lock, 0)
	if ldPtr(&e.meta) != nil {
		stPtr(&e.meta, nil)
	}
	stInt32(&g.n, 0)
}

// releaseFast is a write Unlock's bookkeeping when the hold is goroutine
// id's only one and canFastRelease says it may be released here (fp: the
// unlock method's frame). It reports whether it did it; if not, nothing
// changed and the general path (unlockWrite) runs.
func (c *lockCore) releaseFast(id int64, fp unsafe.Pointer) bool {
	g := probeG(id)
	if g == nil || ldInt64(&c.holder) != id || !g.canFastRelease(c, 0) {
		return false
	}
	c.noteUnlock(id, fp)
	stInt64(&c.holder, 0)
	g.releaseFirst()
	return true
}
