package inspect

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// Snapshot returns every lock held and every goroutine waiting for one, at
// this moment. Holds whose acquisition was not timed (see Holding.Exact) are
// dated from the first time the watchdog or a snapshot saw them. It walks
// the per-goroutine records and does not stop or slow the locking
// goroutines; a hold taken or released during the walk may be missed.
//
// The result is consistent in itself: durations are measured to the
// snapshot's Time, read after the walk, so none is negative; and a waiter's
// Holder is a goroutine the snapshot shows holding that lock for writing (0
// when it shows none: the lock is read-held, or changed hands during the
// walk).
func Snapshot() report.State {
	now := rt.Nanotime()
	var st report.State
	var heldStart, waitStart []int64 // nanotime of each row's start
	record.GtableMu.Lock()
	record.ForEachG(func(id int64, g *record.Gstate) {
		n := g.Count()
		for i := int32(0); i < n; i++ {
			e := g.Entry(i)
			if e == nil || !e.Live() {
				continue
			}
			start := rt.LdInt64(&e.Start)
			if start == 0 {
				atomic.CompareAndSwapInt64(&e.Start, 0, now)
				start = now
			}
			pc1, pc2 := e.Site()
			st.Held = append(st.Held, report.Holding{
				Lock: e.LockInfo(), Mode: e.Mode(), Goroutine: id,
				Site: stacks.SiteOf(pc1, pc2), Since: rt.WallTime(start),
				Exact: e.Exact(), Stack: append([]uintptr(nil), stacks.StackPCs(e.StackOrSite())...),
			})
			heldStart = append(heldStart, start)
		}
	})
	record.WaitMu.Lock()
	if record.Nwaiting.Load() > 0 {
		record.ForEachG(func(id int64, g *record.Gstate) {
			w := &g.Wait
			if !w.Active.Load() {
				return
			}
			st.Waiting = append(st.Waiting, report.Waiting{
				Lock: w.Meta.Info(), Mode: w.Mode, Goroutine: w.G.Goid,
				Site: stacks.SiteOf(w.Pc1, w.Pc2), Since: rt.WallTime(w.Since),
				Stack: append([]uintptr(nil), stacks.StackPCs(w.Stack)...),
			})
			waitStart = append(waitStart, w.Since)
		})
	}
	record.WaitMu.Unlock()
	record.GtableMu.Unlock()
	end := rt.Nanotime() // after every start read in the walk
	st.Time = rt.WallTime(end)
	writer := make(map[uint64]int64, len(st.Held))
	for i := range st.Held {
		st.Held[i].For = time.Duration(max(end-heldStart[i], 0))
		if st.Held[i].Mode == report.Write && st.Held[i].Lock.ID != 0 {
			writer[st.Held[i].Lock.ID] = st.Held[i].Goroutine
		}
	}
	for i := range st.Waiting {
		st.Waiting[i].For = time.Duration(max(end-waitStart[i], 0))
		st.Waiting[i].Holder = writer[st.Waiting[i].Lock.ID]
	}
	sort.Slice(st.Held, func(i, j int) bool { return st.Held[i].For > st.Held[j].For })
	sort.Slice(st.Waiting, func(i, j int) bool { return st.Waiting[i].For > st.Waiting[j].For })
	return st
}
