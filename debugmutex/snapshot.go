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
//
// The result is consistent in itself: durations are measured to the
// snapshot's Time, read after the walk, so none is negative; and a waiter's
// Holder is a goroutine the snapshot shows holding that lock for writing (0
// when it shows none: the lock is read-held, or changed hands during the
// walk).
func Snapshot() State {
	now := nanotime()
	var st State
	var heldStart, waitStart []int64 // nanotime of each row's start
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
				Site: siteOf(pc1, pc2), Since: wallTime(start),
				Exact: e.exact(), Stack: append([]uintptr(nil), stackPCs(e.stackOrSite())...),
			})
			heldStart = append(heldStart, start)
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
				Site: siteOf(w.pc1, w.pc2), Since: wallTime(w.since),
				Stack: append([]uintptr(nil), stackPCs(w.stack)...),
			})
			waitStart = append(waitStart, w.since)
		})
	}
	waitMu.Unlock()
	gtableMu.Unlock()
	end := nanotime() // after every start read in the walk
	st.Time = wallTime(end)
	writer := make(map[uint64]int64, len(st.Held))
	for i := range st.Held {
		st.Held[i].For = time.Duration(max(end-heldStart[i], 0))
		if st.Held[i].Mode == Write && st.Held[i].Lock.ID != 0 {
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
