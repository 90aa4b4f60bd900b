package record

import (
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/rt"
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
	FastMutex   = iota // a Mutex's write hold
	FastRead           // an RWMutex's read hold
	FastRWWrite        // an RWMutex's write hold
)

// FastAcquire records the hold of c just taken by goroutine id (record g,
// lock method frame fp), of the kind given: a Mutex's write hold; a read
// hold of an RWMutex whose reads are short (sampled per goroutine),
// read-locked before, whose read holds are not handed off; or an RWMutex's
// write hold that the write guard has nothing to learn from (see
// writeOutermost).
func (c *LockCore) FastAcquire(g *Gstate, id int64, fp unsafe.Pointer, kind int) bool {
	// The lock's fields are loaded together, right after the real lock's
	// atomic brought its cache line here.
	st := atomic.LoadInt32(&c.State)
	lid := LdUint64(&c.Id)
	meta := atomic.LoadPointer(&c.Meta)
	if g.N != 0 || lid == 0 || st&StateTagMask != AddrTag(c) {
		return false
	}
	var flags int32
	switch kind {
	case FastRead:
		if g.Rcount <= 1 || rt.LdInt32(&c.Period) <= 1 || st&(StateReadHandedOff|StateReadSeen) != StateReadSeen {
			return false
		}
		g.Rcount--
		flags = FlagRead | FlagRW
	case FastRWWrite:
		if st&(StateReadSeen|StateWriteUnguarded) == StateReadSeen {
			return false // writeOutermost has something to note
		}
		flags = FlagRW
		fallthrough
	default:
		if c.Countdown <= 1 {
			return false
		}
		c.Countdown--
	}
	if st&StateHandedOff != 0 {
		flags |= FlagBaton
	}
	// The entry, in the order acquiredStack writes it: the count first, the
	// lock's address last (observers take an entry whose lock is 0 for
	// free).
	pc1, pc2 := rt.CallerPCs(fp)
	e := &g.Inline[0]
	rt.StInt32(&g.N, 1)
	rt.StUintptr(&e.Pc1, pc1)
	rt.StUintptr(&e.Pc2, pc2)
	StUint64(&e.LockID, lid)
	rt.StPtr(&e.Meta, meta)
	rt.StUint32(&e.Gen, e.Gen+1)
	e.Weight = 0
	e.Chain = 0
	rt.StUint32(&e.Stack, 0)
	rt.StInt64(&e.Start, 0)
	rt.StInt32(&e.Flags, flags)
	rt.StUintptr(&e.Lock, uintptr(unsafe.Pointer(c)))
	if kind != FastRead {
		rt.StInt64(&c.Holder, id)
	}
	return true
}

// CanFastRelease reports whether g's only hold is an untimed hold of c in
// mode read (flagRead) or write (0) with nothing attached, which
// releaseFirst releases.
func (g *Gstate) CanFastRelease(c *LockCore, read int32) bool {
	e := &g.Inline[0]
	return g.N == 1 && !g.Holes && e.Lock == uintptr(unsafe.Pointer(c)) && e.Flags&(FlagRead|FlagRegistered) == read &&
		rt.LdInt64(&e.Start) == 0 && e.Pend == nil && e.Ctx == nil &&
		atomic.LoadInt32(&e.Released) == 0 && atomic.LoadInt32(&e.uncertain) == 0
}

// ReleaseFirst is gstate.pop of the first entry, less the checks that
// canFastRelease made.
func (g *Gstate) ReleaseFirst() {
	e := &g.Inline[0]
	rt.StUintptr(&e.Lock, 0)
	if rt.LdPtr(&e.Meta) != nil {
		rt.StPtr(&e.Meta, nil)
	}
	rt.StInt32(&g.N, 0)
}

// ReleaseFast is a write Unlock's bookkeeping when the hold is goroutine
// id's only one and canFastRelease says it may be released here (fp: the
// unlock method's frame). It reports whether it did it; if not, nothing
// changed and the general path (unlockWrite) runs.
func (c *LockCore) ReleaseFast(id int64, fp unsafe.Pointer) bool {
	g := ProbeG(id)
	if g == nil || rt.LdInt64(&c.Holder) != id || !g.CanFastRelease(c, 0) {
		return false
	}
	c.NoteUnlock(id, fp)
	rt.StInt64(&c.Holder, 0)
	g.ReleaseFirst()
	return true
}
