package debugmutex

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// The wait-for graph.
//
// A goroutine that finds a lock busy becomes a waiter of that lock: its
// record says which lock it wants and how, and it joins the lock's waiter
// set (in the lock's meta), and, for every lock it read-holds, that lock's
// set of waiting read-holders. Then, before it blocks, the graph is searched
// from it through holders only: a writer is blocked by the lock's writer and
// by the waiting goroutines that read-hold it; a reader by the writer and by
// the writers queued for the lock (Go's RWMutex makes new readers wait
// behind a queued writer; all queued writers of one lock are blocked by the
// same goroutines, so one of them stands for all). Goroutines that are not
// waiting cannot be on a cycle, so the search visits only waiting goroutines
// reachable from this one: its cost does not grow with the number of
// goroutines waiting elsewhere. The last goroutine to block closes a cycle
// and finds it, at once.
//
// Hand-offs: Go allows a lock to be unlocked by a goroutine other than the
// one that locked it. Once that has happened to a lock, its holder is not
// taken for the goroutine that will release it: such a lock is not an edge
// of the wait-for graph.
//
// A goroutine blocked on a lock it holds itself is usually a recursive lock,
// but the lock may be a baton another goroutine will unlock. Where the
// runtime can prove a goroutine blocked forever (leakproof.go), such a wait
// is reported when it proves it, and never otherwise. Where it cannot, the
// wait is reported only if it lasts the recursive grace period (default 1s)
// with the lock still held by that goroutine, and never for a lock that has
// been unlocked by a goroutine other than the one that locked it.
//
// The search runs under waitMu, one mutex for the whole graph: the work done
// under it is the registration (a few appends) and the search (the waiters
// reachable through holders), so the critical section stays short however
// many goroutines wait. Lock order inside lockscope: see lockrank.go.

// findCycle returns the waiters on a wait-for cycle through start, start
// first, or nil. A cycle of one is a goroutine waiting for itself. Callers
// hold waitMu.
func findCycle(start *waiter) []*waiter {
	searchEpoch++
	s := search{start: start, epoch: searchEpoch, path: []*waiter{start}}
	start.visit = s.epoch
	if s.dfs(start) {
		return s.path
	}
	return nil
}

type search struct {
	start *waiter
	epoch uint64
	path  []*waiter
}

func (s *search) dfs(x *waiter) bool {
	return forBlockers(x, func(b *waiter) bool {
		if b == s.start {
			return true
		}
		if b.visit == s.epoch {
			return false
		}
		b.visit = s.epoch
		s.path = append(s.path, b)
		if s.dfs(b) {
			return true
		}
		s.path = s.path[:len(s.path)-1]
		return false
	})
}

// forBlockers calls f for each waiting goroutine (as its waiter) that keeps
// x waiting, until f returns true; it reports whether f did. Goroutines that
// are not waiting cannot be on a cycle and are left out. waitMu held.
func forBlockers(x *waiter, f func(*waiter) bool) bool {
	c := x.core()
	if c.handedOff() {
		return false
	}
	if h := ldInt64(&c.holder); h != 0 {
		if hg := findG(h); hg != nil && hg.wait.active.Load() && hg.wait.g == hg {
			if f(&hg.wait) {
				return true
			}
		}
	}
	m := x.meta
	if x.mode == Write {
		for i := 0; i < len(m.rhWaiters); i++ {
			r := m.rhWaiters[i]
			if r.w.active.Load() && r.e.live() && ldUint32(&r.e.gen) == r.gen && f(r.w) {
				return true
			}
		}
		return false
	}
	for _, q := range m.waiters {
		if q != x && q.mode == Write {
			return f(q) // every queued writer is blocked by the same goroutines
		}
	}
	return false
}

func deadlockReport(cycle []*waiter) *Report {
	r := &Report{Kind: KindDeadlock, Time: wallTime(nanotime())}
	metas := make([]*lockMeta, len(cycle))
	for i, w := range cycle {
		metas[i] = w.meta
	}
	names := displayNames(metas)
	var parts, keys []string
	for i, w := range cycle {
		next := cycle[(i+1)%len(cycle)]
		name := names[w.meta.id]
		if w.mode == Read && next.lock == w.lock && next.mode == Write {
			// Not a holder: a writer queued for the lock, which Go's RWMutex
			// makes new readers wait behind.
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s behind goroutine %d, queued to write-lock it",
				w.g.goid, w.wants(), name, next.g.goid))
		} else {
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s held by goroutine %d",
				w.g.goid, w.wants(), name, next.g.goid))
		}
		keys = append(keys, keySite(w.stack, w.pc1, w.pc2))
		r.Locks = appendLock(r.Locks, w.meta, name)
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: w.g.goid, Role: "waits for " + w.wants(), Lock: name,
			For: durationNS(nanotime() - w.since), Stack: stackFrames(w.stack),
		})
		if hs, site := holdStackOf(next.g, w.lock, w.lockID); len(hs) > 0 {
			r.Goroutines = append(r.Goroutines, GoroutineRef{
				ID: next.g.goid, Role: "holds", Lock: name, Stack: hs, SiteOnly: site,
			})
		}
	}
	r.Summary = "deadlock: " + strings.Join(parts, ", ")
	r.Key = string(KindDeadlock) + "|" + strings.Join(sortedCopy(keys), "|")
	return r
}

// holdStackOf returns where goroutine g acquired the lock (addr, id), if it
// holds it.
func holdStackOf(g *gstate, addr uintptr, id uint64) (stack []Frame, siteOnly bool) {
	n := g.count()
	for i := int32(0); i < n; i++ {
		e := g.entry(i)
		if e == nil || e.addr() != addr || ldUint64(&e.lockID) != id || atomic.LoadInt32(&e.released) != 0 {
			continue
		}
		return stackFrames(e.stackOrSite()), e.siteOnly()
	}
	return nil, false
}

func appendLock(locks []LockRef, m *lockMeta, name string) []LockRef {
	for _, l := range locks {
		if l.ID == m.id {
			return locks
		}
	}
	return append(locks, LockRef{ID: m.id, Name: name, Type: m.typ})
}

// displayNames names the locks of one report: their names, with the lock id
// added where two different locks would otherwise share one.
func displayNames(metas []*lockMeta) map[uint64]string {
	out := make(map[uint64]string, len(metas))
	byName := map[string]map[uint64]bool{}
	for _, m := range metas {
		n := m.Name()
		out[m.id] = n
		if byName[n] == nil {
			byName[n] = map[uint64]bool{}
		}
		byName[n][m.id] = true
	}
	for id, n := range out {
		if len(byName[n]) > 1 {
			out[id] = fmt.Sprintf("%s (#%d)", n, id)
		}
	}
	return out
}

// selfWaitReport is made by the watchdog for a goroutine that has waited a
// whole grace period for a lock it holds itself.
func selfWaitReport(w *waiter) *Report {
	name := w.meta.Name()
	r := &Report{
		Kind: KindDeadlock, Time: wallTime(w.since),
		Summary: fmt.Sprintf("deadlock: goroutine %d waits for %s %s, which it holds itself (recursive locking)",
			w.g.goid, w.wants(), name),
		Locks: []LockRef{w.meta.ref()},
		Goroutines: []GoroutineRef{{
			ID: w.g.goid, Role: "waits for " + w.wants(), Lock: name,
			For: durationNS(nanotime() - w.since), Stack: stackFrames(w.stack),
		}},
	}
	if hs, site := holdStackOf(w.g, w.lock, w.lockID); len(hs) > 0 {
		r.Goroutines = append(r.Goroutines, GoroutineRef{ID: w.g.goid, Role: "holds", Lock: name, Stack: hs, SiteOnly: site})
	}
	r.Key = string(KindDeadlock) + "|self|" + keySite(w.stack, w.pc1, w.pc2)
	return r
}
