package debugmutex

import (
	"fmt"
	"unsafe"
)

// unlockOfUnlocked prints the diagnosis sync's fatal error lacks. The caller
// has checked that sync will throw, and then calls the real unlock, which
// fails exactly as it does under sync.
func unlockOfUnlocked(c *lockCore, id int64, fp unsafe.Pointer, typ string, mode Mode) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(nil, typ, pc1, pc2)
	name := meta.Name()
	verb := "Unlock"
	if mode == Read {
		verb = "RUnlock"
	}
	r := &Report{
		Kind: KindUnlockUnlocked, Time: wallTime(nanotime()),
		Summary: fmt.Sprintf("%s of unlocked %s %s by goroutine %d", verb, typ, name, id),
		Locks:   []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{
			{ID: id, Role: "unlocks", Lock: name, Stack: stackFrames(captureStack(fp))},
		},
		Key: string(KindUnlockUnlocked) + "|" + siteOf(pc1, pc2).Site(),
	}
	if pc := ldUintptr(&c.lastUnlockPC); pc != 0 {
		lg := int64(ldUint32(&c.lastUnlockG))
		role := "last unlocked"
		if typ == rwMutexType {
			role = "last write-unlocked" // read unlocks are not recorded
		}
		if lg == 0 {
			role += " (goroutine id not recorded)"
		}
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: lg, Role: role, Lock: name,
			Stack: []Frame{siteOf(pc, 0)},
		})
	} else {
		r.Summary += " (never unlocked before)"
	}
	// sync throws next: deliver the report, whatever the configured action.
	deliver(r, false)
}
