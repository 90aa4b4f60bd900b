package debugmutex

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Copied locks. A lock copied after its first use protects nothing: the
// copy and the original are two locks, and a copy made while the original
// was held is born locked, with nobody to unlock it. go vet's copylocks
// check sees copies in plain assignments and calls; copies made through
// generics, interfaces, reflection or encoding are invisible to it.
//
// At its first acquisition a lock gets a 16-bit tag of its address in the
// high half of its state word. Every acquisition compares
// the tag with the lock's own address (a multiply and a compare on a word
// the acquisition reads anyway); a lock whose tag is another address's
// carries the state of another lock: it was copied, with its state, from a
// lock that had been used. The check misses a copy whose two addresses
// share a tag (1 in 65,535) and never reports a lock that was not copied:
// heap and global objects never move in Go, and a lock is never on a
// goroutine stack (which moves when it grows): its methods make it escape
// to the heap (TestLocksLiveOnTheHeap). Should one ever be found on its
// goroutine's stack, it is re-tagged silently.

// tagOrCheckCopied is called by an acquisition (the lock held) whose lock
// is not tagged with its own address: it tags a lock acquired for the first
// time, and checks one tagged elsewhere. A copy found holding it is
// reported whatever the configured action, which must not panic holding it.
//
//go:noinline
func tagOrCheckCopied(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode) {
	for {
		st := atomic.LoadInt32(&c.state)
		if st&stateTagMask != 0 {
			break
		}
		if atomic.CompareAndSwapInt32(&c.state, st, st|addrTag(c)) {
			return
		}
	}
	if r := checkCopied(c, g, id, fp, typ, mode, false); r != nil {
		emitNoAction(r)
	}
}

// waitCopied is checkCopied before a wait: a copy found locked is one made
// while the original was held. The report's action applies (a panic
// before blocking leaves the lock untouched).
func waitCopied(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode) {
	if !c.tagMismatch(atomic.LoadInt32(&c.state)) {
		return
	}
	if r := checkCopied(c, g, id, fp, typ, mode, true); r != nil {
		if p := emit(r); p != nil {
			panic(p)
		}
	}
}

// checkCopied is called where a lock is acquired or waited for, with fp the
// lock method's frame. If c carries another address's tag it detaches c
// from the lock it was copied from (a new id, no meta, no holder) and
// returns the report, made once per site, or nil if c was not copied or
// another goroutine is reporting it. waiting says the goroutine is about to
// wait for c (its real state is locked).
//
//go:noinline
func checkCopied(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, typ string, mode Mode, waiting bool) *Report {
	st := atomic.LoadInt32(&c.state)
	if !c.tagMismatch(st) {
		return nil
	}
	addr := uintptr(unsafe.Pointer(c))
	if on, _ := onOwnStack(addr); on {
		// A lock on the goroutine's own stack moved with the stack:
		// re-tag, say nothing. (lockscope's locks always escape to the
		// heap, TestLocksLiveOnTheHeap, so this is a safeguard; where the
		// stack's bounds are not known, the escape is what is relied on.)
		atomic.CompareAndSwapInt32(&c.state, st, st&^stateTagMask|addrTag(c))
		return nil
	}
	// Only the goroutine that re-tags reports. The original's history
	// (hand-offs, reads seen) is not the copy's: the state starts afresh.
	if !atomic.CompareAndSwapInt32(&c.state, st, addrTag(c)) {
		return nil
	}
	oldID := ldUint64(&c.id)
	oldMeta := c.getMeta()
	holder := ldInt64(&c.holder)
	lastPC, lastG := ldUintptr(&c.lastUnlockPC), int64(ldUint32(&c.lastUnlockG))

	stUint64(&c.id, newLockID(g))
	atomic.StorePointer(&c.meta, nil)
	stUintptr(&c.lastUnlockPC, 0)
	stUint32(&c.lastUnlockG, 0)
	if waiting {
		stInt64(&c.holder, 0) // the original's holder does not hold the copy
	}

	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(g, typ, pc1, pc2)
	name := meta.Name()
	from := "a lock"
	if oldMeta != nil {
		from = oldMeta.Name()
	}
	verb := "Lock"
	if mode == Read {
		verb = "RLock"
	}
	r := &Report{
		Kind: KindCopiedLock, Time: wallTime(nanotime()),
		Summary: fmt.Sprintf("%s of %s %s at %#x by goroutine %d: the lock is a copy of %s used before (its state was copied with it); the copy and the original are different locks",
			verb, typ, name, addr, id, from),
		Locks: []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{
			{ID: id, Role: "locks the copy", Lock: name, Stack: stackFrames(captureStack(fp))},
		},
		Key: string(KindCopiedLock) + "|" + siteOf(pc1, pc2).Site(),
	}
	if oldMeta != nil {
		r.Locks = append(r.Locks, oldMeta.ref())
	}
	if lastPC != 0 {
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: lastG, Role: "last unlocked the original before the copy", Lock: from,
			Stack: []Frame{siteOf(lastPC, 0)},
		})
	}
	if waiting && holder != 0 {
		// Born locked: the original was held when it was copied. Its
		// holder's hold says where, if it still holds it.
		ref := GoroutineRef{ID: holder, Role: "held the original when it was copied", Lock: from}
		var hpc1, hpc2 uintptr
		gtableMu.Lock() // observers of other goroutines' records hold it
		if hg := findG(holder); hg != nil {
			for i := int32(0); i < hg.count(); i++ {
				if e := hg.entry(i); e != nil && e.live() && ldUint64(&e.lockID) == oldID && e.addr() != addr {
					hpc1, hpc2 = e.site()
					break
				}
			}
		}
		gtableMu.Unlock()
		if hpc1 != 0 {
			ref.Stack = []Frame{siteOf(hpc1, hpc2)}
		} else {
			ref.Role = "held the original when it was copied, and has unlocked it since,"
		}
		r.Summary += fmt.Sprintf("; it was copied while goroutine %d held the original: it is locked and nobody will unlock it", holder)
		r.Goroutines = append(r.Goroutines, ref)
	}
	return r
}
