package misuse

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
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

// TagOrCheckCopied is called by an acquisition (the lock held) whose lock
// is not tagged with its own address: it tags a lock acquired for the first
// time, and checks one tagged elsewhere. A copy found holding it is
// reported whatever the configured action, which must not panic holding it.
//
//go:noinline
func TagOrCheckCopied(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode) {
	for {
		st := atomic.LoadInt32(&c.State)
		if st&record.StateTagMask != 0 {
			break
		}
		if atomic.CompareAndSwapInt32(&c.State, st, st|record.AddrTag(c)) {
			return
		}
	}
	if r := checkCopied(c, g, id, fp, typ, mode, false); r != nil {
		delivery.EmitNoAction(r)
	}
}

// WaitCopied is checkCopied before a wait: a copy found locked is one made
// while the original was held. The report's action applies (a panic
// before blocking leaves the lock untouched).
func WaitCopied(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode) {
	if !c.TagMismatch(atomic.LoadInt32(&c.State)) {
		return
	}
	if r := checkCopied(c, g, id, fp, typ, mode, true); r != nil {
		if p := delivery.Emit(r); p != nil {
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
func checkCopied(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, typ string, mode report.Mode, waiting bool) *report.Report {
	st := atomic.LoadInt32(&c.State)
	if !c.TagMismatch(st) {
		return nil
	}
	addr := uintptr(unsafe.Pointer(c))
	if on, _ := rt.OnOwnStack(addr); on {
		// A lock on the goroutine's own stack moved with the stack:
		// re-tag, say nothing. (lockscope's locks always escape to the
		// heap, TestLocksLiveOnTheHeap, so this is a safeguard; where the
		// stack's bounds are not known, the escape is what is relied on.)
		atomic.CompareAndSwapInt32(&c.State, st, st&^record.StateTagMask|record.AddrTag(c))
		return nil
	}
	// Only the goroutine that re-tags reports. The original's history
	// (hand-offs, reads seen) is not the copy's: the state starts afresh.
	if !atomic.CompareAndSwapInt32(&c.State, st, record.AddrTag(c)) {
		return nil
	}
	oldID := record.LdUint64(&c.Id)
	oldMeta := c.GetMeta()
	holder := rt.LdInt64(&c.Holder)
	lastPC, lastG := rt.LdUintptr(&c.LastUnlockPC), int64(rt.LdUint32(&c.LastUnlockG))

	record.StUint64(&c.Id, record.NewLockID(g))
	atomic.StorePointer(&c.Meta, nil)
	rt.StUintptr(&c.LastUnlockPC, 0)
	rt.StUint32(&c.LastUnlockG, 0)
	if waiting {
		rt.StInt64(&c.Holder, 0) // the original's holder does not hold the copy
	}

	pc1, pc2 := rt.CallerPCs(fp)
	meta := c.MetaFor(g, typ, pc1, pc2)
	name := meta.Name()
	from := "a lock"
	if oldMeta != nil {
		from = oldMeta.Name()
	}
	verb := "Lock"
	switch {
	case mode == report.Read:
		verb = "RLock"
	case typ == record.OnceType:
		verb = "Do"
	}
	r := &report.Report{
		Kind: report.KindCopiedLock, Time: rt.WallTime(rt.Nanotime()),
		Summary: fmt.Sprintf("%s of %s %s at %#x by goroutine %d: the lock is a copy of %s used before (its state was copied with it); the copy and the original are different locks",
			verb, typ, name, addr, id, from),
		Locks: []report.LockRef{meta.Ref()},
		Goroutines: []report.GoroutineRef{
			{ID: id, Role: "locks the copy", Lock: name, Stack: stacks.StackFrames(stacks.CaptureStack(fp))},
		},
		Key: string(report.KindCopiedLock) + "|" + stacks.SiteOf(pc1, pc2).Site(),
	}
	if oldMeta != nil {
		r.Locks = append(r.Locks, oldMeta.Ref())
	}
	if lastPC != 0 {
		r.Goroutines = append(r.Goroutines, report.GoroutineRef{
			ID: lastG, Role: "last unlocked the original before the copy", Lock: from,
			Stack: []report.Frame{stacks.SiteOf(lastPC, 0)},
		})
	}
	if waiting && holder != 0 {
		// Born locked: the original was held when it was copied. Its
		// holder's hold says where, if it still holds it.
		ref := report.GoroutineRef{ID: holder, Role: "held the original when it was copied", Lock: from}
		var hpc1, hpc2 uintptr
		record.GtableMu.Lock() // observers of other goroutines' records hold it
		if hg := record.FindG(holder); hg != nil {
			for i := int32(0); i < hg.Count(); i++ {
				if e := hg.Entry(i); e != nil && e.Live() && record.LdUint64(&e.LockID) == oldID && e.Addr() != addr {
					hpc1, hpc2 = e.Site()
					break
				}
			}
		}
		record.GtableMu.Unlock()
		if hpc1 != 0 {
			ref.Stack = []report.Frame{stacks.SiteOf(hpc1, hpc2)}
		} else {
			ref.Role = "held the original when it was copied, and has unlocked it since,"
		}
		r.Summary += fmt.Sprintf("; it was copied while goroutine %d held the original: it is locked and nobody will unlock it", holder)
		r.Goroutines = append(r.Goroutines, ref)
	}
	return r
}
