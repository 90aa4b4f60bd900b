package waitfor

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/lockscope/lockscope/internal/lockorder"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
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

// FindCycle returns the waiters on a wait-for cycle through start, start
// first, or nil. A cycle of one is a goroutine waiting for itself. Callers
// hold waitMu.
func FindCycle(start *record.Waiter) []*record.Waiter {
	record.SearchEpoch++
	s := search{start: start, epoch: record.SearchEpoch, path: []*record.Waiter{start}}
	start.Visit = s.epoch
	if s.dfs(start) {
		return s.path
	}
	return nil
}

type search struct {
	start *record.Waiter
	epoch uint64
	path  []*record.Waiter
}

func (s *search) dfs(x *record.Waiter) bool {
	return forBlockers(x, func(b *record.Waiter) bool {
		if b == s.start {
			return true
		}
		if b.Visit == s.epoch {
			return false
		}
		b.Visit = s.epoch
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
func forBlockers(x *record.Waiter, f func(*record.Waiter) bool) bool {
	c := x.Core()
	if c.HandedOff() {
		return false
	}
	if h := rt.LdInt64(&c.Holder); h != 0 {
		if hg := record.FindG(h); hg != nil && hg.Wait.Active.Load() && hg.Wait.G == hg {
			if f(&hg.Wait) {
				return true
			}
		}
	}
	m := x.Meta
	if x.Mode == report.Write {
		for i := 0; i < len(m.RhWaiters); i++ {
			r := m.RhWaiters[i]
			if r.W.Active.Load() && r.E.Live() && rt.LdUint32(&r.E.Gen) == r.Gen && f(r.W) {
				return true
			}
		}
		return false
	}
	for _, q := range m.Waiters {
		if q != x && q.Mode == report.Write {
			return f(q) // every queued writer is blocked by the same goroutines
		}
	}
	return false
}

// Deadlocked holds the waits of the goroutines of reported deadlock
// cycles (goroutine id -> when its wait began), so that the watchdog folds
// the long-wait and long-hold reports the deadlock goes on to cause into
// its report: one bug, one report. Bounded by maxDeadlocked (beyond, the
// reports are not folded); the watchdog removes the waits that have ended.
// record.WaitMu held.
var Deadlocked = map[int64]int64{}

const maxDeadlocked = 4096

// NoteDeadlocked records the waits of a reported cycle in Deadlocked.
// record.WaitMu held (exclusive).
func NoteDeadlocked(cycle []*record.Waiter) {
	for _, w := range cycle {
		if len(Deadlocked) < maxDeadlocked {
			Deadlocked[w.G.Goid] = w.Since
		}
	}
}

func DeadlockReport(cycle []*record.Waiter) *report.Report {
	r := &report.Report{Kind: report.KindDeadlock, Time: rt.WallTime(rt.Nanotime())}
	metas := make([]*record.LockMeta, len(cycle))
	for i, w := range cycle {
		metas[i] = w.Meta
	}
	names := DisplayNames(metas)
	var parts, keys []string
	for i, w := range cycle {
		next := cycle[(i+1)%len(cycle)]
		name := names[w.Meta.Id]
		switch {
		case w.IsOnce():
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s, whose function goroutine %d is running",
				w.G.Goid, w.Wants(), name, next.G.Goid))
		case w.Mode == report.Read && next.Lock == w.Lock && next.Mode == report.Write:
			// Not a holder: a writer queued for the lock, which Go's RWMutex
			// makes new readers wait behind.
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s behind goroutine %d, queued to write-lock it",
				w.G.Goid, w.Wants(), name, next.G.Goid))
		default:
			parts = append(parts, fmt.Sprintf("goroutine %d waits for %s %s held by goroutine %d",
				w.G.Goid, w.Wants(), name, next.G.Goid))
		}
		keys = append(keys, stacks.KeySite(w.Stack, w.Pc1, w.Pc2))
		r.Locks = AppendLock(r.Locks, w.Meta, name)
		r.Goroutines = append(r.Goroutines, report.GoroutineRef{
			ID: w.G.Goid, Role: "waits for " + w.Wants(), Lock: name,
			For: record.DurationNS(rt.Nanotime() - w.Since), Stack: stacks.StackFrames(w.Stack),
		})
		if hs, site := HoldStackOf(next.G, w.Lock, w.LockID); len(hs) > 0 {
			r.Goroutines = append(r.Goroutines, report.GoroutineRef{
				ID: next.G.Goid, Role: HolderRole(w), Lock: name, Stack: hs, SiteOnly: site,
			})
		}
	}
	r.Summary = "deadlock: " + strings.Join(parts, ", ")
	r.Key = string(report.KindDeadlock) + "|" + strings.Join(lockorder.SortedCopy(keys), "|")
	return r
}

// HoldStackOf returns where goroutine g acquired the lock (addr, id), if it
// holds it.
func HoldStackOf(g *record.Gstate, addr uintptr, id uint64) (stack []report.Frame, siteOnly bool) {
	n := g.Count()
	for i := int32(0); i < n; i++ {
		e := g.Entry(i)
		if e == nil || e.Addr() != addr || record.LdUint64(&e.LockID) != id || atomic.LoadInt32(&e.Released) != 0 {
			continue
		}
		return stacks.StackFrames(e.StackOrSite()), e.SiteOnly()
	}
	return nil, false
}

func AppendLock(locks []report.LockRef, m *record.LockMeta, name string) []report.LockRef {
	for _, l := range locks {
		if l.ID == m.Id {
			return locks
		}
	}
	return append(locks, report.LockRef{ID: m.Id, Name: name, Type: m.Typ, Class: m.Class()})
}

// DisplayNames names the locks of one report: their names, with the lock id
// added where two different locks would otherwise share one.
func DisplayNames(metas []*record.LockMeta) map[uint64]string {
	out := make(map[uint64]string, len(metas))
	byName := map[string]map[uint64]bool{}
	for _, m := range metas {
		n := m.Name()
		out[m.Id] = n
		if byName[n] == nil {
			byName[n] = map[uint64]bool{}
		}
		byName[n][m.Id] = true
	}
	for id, n := range out {
		if len(byName[n]) > 1 {
			out[id] = fmt.Sprintf("%s (#%d)", n, id)
		}
	}
	return out
}

// HolderRole is the role in a report of the goroutine that holds the lock w
// waits for: "holds", or for a Once, "runs the function of" (its stack is
// where it called Do).
func HolderRole(w *record.Waiter) string {
	if w.IsOnce() {
		return "runs the function of " + w.Wants()
	}
	return "holds"
}

// SelfWaitReport is made by the watchdog for a goroutine that has waited a
// whole grace period for a lock it holds itself, and at once for a Once
// whose Do is called again from inside its function.
func SelfWaitReport(w *record.Waiter) *report.Report {
	name := w.Meta.Name()
	summary := fmt.Sprintf("deadlock: goroutine %d waits for %s %s, which it holds itself (recursive locking)",
		w.G.Goid, w.Wants(), name)
	switch w.Typ {
	case record.OnceType:
		summary = fmt.Sprintf("deadlock: goroutine %d called Do of Once %s from inside its own function (recursive Do)",
			w.G.Goid, name)
	case record.OnceFuncType:
		summary = fmt.Sprintf("deadlock: goroutine %d called the OnceFunc %s from inside its own function (recursive call)",
			w.G.Goid, name)
	}
	r := &report.Report{
		Kind: report.KindDeadlock, Time: rt.WallTime(w.Since),
		Summary: summary,
		Locks:   []report.LockRef{w.Meta.Ref()},
		Goroutines: []report.GoroutineRef{{
			ID: w.G.Goid, Role: "waits for " + w.Wants(), Lock: name,
			For: record.DurationNS(rt.Nanotime() - w.Since), Stack: stacks.StackFrames(w.Stack),
		}},
	}
	if hs, site := HoldStackOf(w.G, w.Lock, w.LockID); len(hs) > 0 {
		r.Goroutines = append(r.Goroutines, report.GoroutineRef{ID: w.G.Goid, Role: HolderRole(w), Lock: name, Stack: hs, SiteOnly: site})
	}
	r.Key = string(report.KindDeadlock) + "|self|" + stacks.KeySite(w.Stack, w.Pc1, w.Pc2)
	return r
}
