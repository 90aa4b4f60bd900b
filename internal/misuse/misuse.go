package misuse

import (
	"fmt"
	"unsafe"

	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// UnlockOfUnlocked prints the diagnosis sync's fatal error lacks. The caller
// has checked that sync will throw, and then calls the real unlock, which
// fails exactly as it does under sync.
func UnlockOfUnlocked(c *record.LockCore, id int64, fp unsafe.Pointer, typ string, mode report.Mode) {
	pc1, pc2 := rt.CallerPCs(fp)
	meta := c.MetaFor(nil, typ, pc1, pc2)
	name := meta.Name()
	verb := "Unlock"
	if mode == report.Read {
		verb = "RUnlock"
	}
	r := &report.Report{
		Kind: report.KindUnlockUnlocked, Time: rt.WallTime(rt.Nanotime()),
		Summary: fmt.Sprintf("%s of unlocked %s %s by goroutine %d", verb, typ, name, id),
		Locks:   []report.LockRef{meta.Ref()},
		Goroutines: []report.GoroutineRef{
			{ID: id, Role: "unlocks", Lock: name, Stack: stacks.StackFrames(stacks.CaptureStack(fp))},
		},
		Key: string(report.KindUnlockUnlocked) + "|" + stacks.SiteOf(pc1, pc2).Site(),
	}
	if pc := rt.LdUintptr(&c.LastUnlockPC); pc != 0 {
		lg := int64(rt.LdUint32(&c.LastUnlockG))
		role := "last unlocked"
		if typ == record.RwMutexType {
			role = "last write-unlocked" // read unlocks are not recorded
		}
		if lg == 0 {
			role += " (goroutine id not recorded)"
		}
		r.Goroutines = append(r.Goroutines, report.GoroutineRef{
			ID: lg, Role: role, Lock: name,
			Stack: []report.Frame{stacks.SiteOf(pc, 0)},
		})
	} else {
		r.Summary += " (never unlocked before)"
	}
	// sync throws next: deliver the report, whatever the configured action.
	delivery.Deliver(r, false)
}
