package debugmutex

import (
	"sort"
	"sync/atomic"
	"time"
)

// Snapshot returns every lock held and every goroutine waiting for one, at
// this moment. Holds whose acquisition was not timed (see Holding.Exact) are
// dated from the first time the watchdog or a snapshot saw them. It walks
// the per-goroutine records and does not stop or slow the locking
// goroutines; a hold taken or released during the walk may be missed.
func Snapshot() State {
	now := nanotime()
	st := State{Time: wallTime(now)}
	gtableMu.Lock()
	forEachG(func(id int64, g *gstate) {
		n := g.count()
		for i := int32(0); i < n; i++ {
			e := g.entry(i)
			if e == nil || !e.live() {
				continue
			}
			start := ldInt64(&e.start)
			if start == 0 {
				atomic.CompareAndSwapInt64(&e.start, 0, now)
				start = now
			}
			pc1, pc2 := e.site()
			st.Held = append(st.Held, Holding{
				Lock: e.lockInfo(), Mode: e.mode(), Goroutine: id,
				Site: siteOf(pc1, pc2), Since: wallTime(start), For: time.Duration(max(now-start, 0)),
				Exact: e.exact(), Stack: append([]uintptr(nil), stackPCs(e.stackOrSite())...),
			})
		}
	})
	waitMu.Lock()
	if nwaiting.Load() > 0 {
		forEachG(func(id int64, g *gstate) {
			w := &g.wait
			if !w.active.Load() {
				return
			}
			st.Waiting = append(st.Waiting, Waiting{
				Lock: w.meta.info(), Mode: w.mode, Goroutine: w.g.goid,
				Site: siteOf(w.pc1, w.pc2), Since: wallTime(w.since), For: time.Duration(max(now-w.since, 0)),
				Holder: w.holder, Stack: append([]uintptr(nil), stackPCs(w.stack)...),
			})
		})
	}
	waitMu.Unlock()
	gtableMu.Unlock()
	sort.Slice(st.Held, func(i, j int) bool { return st.Held[i].For > st.Held[j].For })
	sort.Slice(st.Waiting, func(i, j int) bool { return st.Waiting[i].For > st.Waiting[j].For })
	return st
}
