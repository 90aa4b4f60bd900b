package misuse

import (
	"fmt"
	"sort"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/internal/waitfor"
	"github.com/lockscope/lockscope/report"
)

// TryLock livelocks.
//
// Goroutines that spin on TryLock of each other's locks never block, so no
// wait-for graph sees them and the runtime's proof (leakproof.go) cannot
// either: they are running. What gives them away is the failures: goroutine
// G fails TryLock of lock A, again and again, at a high rate, while A's
// holder H itself fails TryLock of a lock B that G holds, and neither
// releases what it holds in between. Correct TryLock back-off (release
// what you hold, then retry) ends a streak, as does a wait of its own.
//
// Each goroutine that fails a TryLock of a lock held by another keeps a
// streak in a small table of its own slot (tryStreaks, claimed by goroutine
// id, written by its owner only): the lock, its holder and the holder's
// hold (entry and generation) at the streak's start, the failures and when.
// A failure more than livelockGap after the previous one, on another lock,
// or against another holder starts a new streak. Once a streak has lasted
// livelockWindow with livelockMinFails failures, the holder's streak is
// looked at: if it is on a lock this goroutine holds, as old and as busy,
// and both holds are still the ones the streaks began with, both
// goroutines have spun for a window without letting go: a livelock.
//
// Cost: on failed TryLocks only (the fast path and successful TryLocks
// pay nothing), a probe of the table and a clock read; a look at the
// holder's record at the start of a streak and at most every 64 failures
// once it is old enough.

const (
	livelockWindow   = time.Second
	livelockGap      = 100 * time.Millisecond
	livelockMinFails = 100
	TryStreakSlots   = 256 // goroutines failing TryLocks at once that are tracked
	tryStreakProbe   = 8
)

type tryStreak struct {
	Goid atomic.Int64 // owner, 0 if free; claimed by CAS
	// The rest is written by the owner only and read by others atomically.
	lock     atomic.Uint64                    // id of the lock failed on
	holder   atomic.Int64                     // its writer at the streak's start
	hold     atomic.Pointer[record.HeldEntry] // the holder's hold of it then
	holdGen  atomic.Uint32                    // and that hold's generation
	stack    atomic.Uint32                    // the streak's first failure's stack
	start    atomic.Int64                     // nanotime of the streak's first failure
	Last     atomic.Int64                     // and of its latest
	fails    atomic.Int64                     // failures in the streak
	site     atomic.Uintptr                   // where TryLock is called (pc1)
	site2    atomic.Uintptr                   // (pc2)
	meta     atomic.Pointer[record.LockMeta]  // the lock's meta, for its name
	reported atomic.Bool                      // the streak is part of a reported livelock
}

var TryStreaks [TryStreakSlots]tryStreak

// TryStreaksFull counts the failures that found no slot (Dropped.TryStreaks).
var TryStreaksFull atomic.Int64

// streakOf returns goroutine id's slot, claiming one if claim is set, or
// nil.
func streakOf(id int64, now int64, claim bool) *tryStreak {
	for p := int64(0); p < tryStreakProbe; p++ {
		s := &TryStreaks[(id+p)&(TryStreakSlots-1)]
		switch g := s.Goid.Load(); {
		case g == id:
			return s
		case !claim:
			continue
		case g == 0 || now-s.Last.Load() > int64(10*time.Second):
			// Free, or left by a goroutine that has not failed a TryLock
			// for long (it may have exited).
			if s.Goid.CompareAndSwap(g, id) {
				s.lock.Store(0)
				return s
			}
		}
	}
	return nil
}

// TryLivelock notes a failed TryLock of c (meta m) by the calling goroutine,
// at site pc1, pc2 (fp the lock method's frame), and reports a livelock if
// this failure shows one.
func TryLivelock(c *record.LockCore, fp unsafe.Pointer, m *record.LockMeta, pc1, pc2 uintptr) {
	holder := rt.LdInt64(&c.Holder)
	if holder == 0 {
		return // read-held: the readers are not known by id
	}
	id := rt.CurGoid()
	if holder == id {
		return
	}
	now := rt.Nanotime()
	s := streakOf(id, now, true)
	if s == nil {
		TryStreaksFull.Add(1)
		return
	}
	lid := record.LdUint64(&c.Id)
	if s.lock.Load() != lid || s.holder.Load() != holder || now-s.Last.Load() > int64(livelockGap) {
		e := c.WriterEntry(holder)
		if e == nil {
			s.lock.Store(0)
			return
		}
		s.reported.Store(false)
		s.hold.Store(e)
		s.holdGen.Store(rt.LdUint32(&e.Gen))
		s.holder.Store(holder)
		s.site.Store(pc1)
		s.site2.Store(pc2)
		s.meta.Store(m)
		s.stack.Store(stacks.CaptureStack(fp))
		s.fails.Store(0)
		s.start.Store(now)
		s.lock.Store(lid)
	}
	s.Last.Store(now)
	n := s.fails.Add(1)
	if n < livelockMinFails || n%64 != 0 || now-s.start.Load() < int64(livelockWindow) || s.reported.Load() {
		return
	}
	p := streakOf(holder, now, false)
	if p == nil || p.holder.Load() != id || p.reported.Load() || now-p.Last.Load() > int64(livelockGap) ||
		now-p.start.Load() < int64(livelockWindow) || p.fails.Load() < livelockMinFails {
		return
	}
	// Both holds unchanged since the streaks began: neither goroutine has
	// let go of what the other wants.
	if !s.holdStands(lid) || !p.holdStands(p.lock.Load()) {
		return
	}
	if !p.reported.CompareAndSwap(false, true) {
		return
	}
	s.reported.Store(true)
	delivery.Emit(livelockReport(id, s, holder, p, now))
}

// holdStands reports whether the hold the streak began against still is.
func (s *tryStreak) holdStands(lid uint64) bool {
	e := s.hold.Load()
	return e != nil && e.Live() && rt.LdUint32(&e.Gen) == s.holdGen.Load() && record.LdUint64(&e.LockID) == lid
}

func livelockReport(g int64, s *tryStreak, h int64, p *tryStreak, now int64) *report.Report {
	ms, mp := s.meta.Load(), p.meta.Load()
	names := waitfor.DisplayNames([]*record.LockMeta{ms, mp})
	a, b := names[ms.Id], names[mp.Id]
	span := func(x *tryStreak) time.Duration { return time.Duration(now - x.start.Load()).Round(time.Millisecond) }
	r := &report.Report{
		Kind: report.KindLivelock, Time: rt.WallTime(min(s.start.Load(), p.start.Load())),
		Summary: fmt.Sprintf("livelock: goroutine %d has failed TryLock of %s %d times in %v, held by goroutine %d, which meanwhile has failed TryLock of %s %d times in %v, held by goroutine %d; neither has let go",
			g, a, s.fails.Load(), span(s), h, b, p.fails.Load(), span(p), g),
		Locks: []report.LockRef{ms.Ref(), mp.Ref()},
	}
	for _, x := range []struct {
		id   int64
		st   *tryStreak
		lock string
		held string
	}{{g, s, a, b}, {h, p, b, a}} {
		r.Goroutines = append(r.Goroutines, report.GoroutineRef{
			ID: x.id, Role: "spins on TryLock of", Lock: x.lock, For: span(x.st), Stack: stacks.StackFrames(x.st.stack.Load()),
		})
		other := p
		if x.st == p {
			other = s
		}
		if e := other.hold.Load(); e != nil {
			r.Goroutines = append(r.Goroutines, report.GoroutineRef{ID: x.id, Role: "holds", Lock: x.held, Stack: stacks.StackFrames(e.StackOrSite()), SiteOnly: e.SiteOnly()})
		}
	}
	keys := []string{stacks.SiteOf(s.site.Load(), s.site2.Load()).Site(), stacks.SiteOf(p.site.Load(), p.site2.Load()).Site()}
	sort.Strings(keys)
	r.Key = string(report.KindLivelock) + "|" + keys[0] + "|" + keys[1]
	return r
}
