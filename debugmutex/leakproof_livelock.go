package debugmutex

import (
	"fmt"
	"sort"
	"sync/atomic"
	"time"
	"unsafe"
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
	tryStreakSlots   = 256 // goroutines failing TryLocks at once that are tracked
	tryStreakProbe   = 8
)

type tryStreak struct {
	goid atomic.Int64 // owner, 0 if free; claimed by CAS
	// The rest is written by the owner only and read by others atomically.
	lock     atomic.Uint64             // id of the lock failed on
	holder   atomic.Int64              // its writer at the streak's start
	hold     atomic.Pointer[heldEntry] // the holder's hold of it then
	holdGen  atomic.Uint32             // and that hold's generation
	stack    atomic.Uint32             // the streak's first failure's stack
	start    atomic.Int64              // nanotime of the streak's first failure
	last     atomic.Int64              // and of its latest
	fails    atomic.Int64              // failures in the streak
	site     atomic.Uintptr            // where TryLock is called (pc1)
	site2    atomic.Uintptr            // (pc2)
	meta     atomic.Pointer[lockMeta]  // the lock's meta, for its name
	reported atomic.Bool               // the streak is part of a reported livelock
}

var tryStreaks [tryStreakSlots]tryStreak

// tryStreaksFull counts the failures that found no slot (Dropped.TryStreaks).
var tryStreaksFull atomic.Int64

// streakOf returns goroutine id's slot, claiming one if claim is set, or
// nil.
func streakOf(id int64, now int64, claim bool) *tryStreak {
	for p := int64(0); p < tryStreakProbe; p++ {
		s := &tryStreaks[(id+p)&(tryStreakSlots-1)]
		switch g := s.goid.Load(); {
		case g == id:
			return s
		case !claim:
			continue
		case g == 0 || now-s.last.Load() > int64(10*time.Second):
			// Free, or left by a goroutine that has not failed a TryLock
			// for long (it may have exited).
			if s.goid.CompareAndSwap(g, id) {
				s.lock.Store(0)
				return s
			}
		}
	}
	return nil
}

// tryLivelock notes a failed TryLock of c (meta m) by the calling goroutine,
// at site pc1, pc2 (fp the lock method's frame), and reports a livelock if
// this failure shows one.
func tryLivelock(c *lockCore, fp unsafe.Pointer, m *lockMeta, pc1, pc2 uintptr) {
	holder := ldInt64(&c.holder)
	if holder == 0 {
		return // read-held: the readers are not known by id
	}
	id := curGoid()
	if holder == id {
		return
	}
	now := nanotime()
	s := streakOf(id, now, true)
	if s == nil {
		tryStreaksFull.Add(1)
		return
	}
	lid := ldUint64(&c.id)
	if s.lock.Load() != lid || s.holder.Load() != holder || now-s.last.Load() > int64(livelockGap) {
		e := c.writerEntry(holder)
		if e == nil {
			s.lock.Store(0)
			return
		}
		s.reported.Store(false)
		s.hold.Store(e)
		s.holdGen.Store(ldUint32(&e.gen))
		s.holder.Store(holder)
		s.site.Store(pc1)
		s.site2.Store(pc2)
		s.meta.Store(m)
		s.stack.Store(captureStack(fp))
		s.fails.Store(0)
		s.start.Store(now)
		s.lock.Store(lid)
	}
	s.last.Store(now)
	n := s.fails.Add(1)
	if n < livelockMinFails || n%64 != 0 || now-s.start.Load() < int64(livelockWindow) || s.reported.Load() {
		return
	}
	p := streakOf(holder, now, false)
	if p == nil || p.holder.Load() != id || p.reported.Load() || now-p.last.Load() > int64(livelockGap) ||
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
	emit(livelockReport(id, s, holder, p, now))
}

// holdStands reports whether the hold the streak began against still is.
func (s *tryStreak) holdStands(lid uint64) bool {
	e := s.hold.Load()
	return e != nil && e.live() && ldUint32(&e.gen) == s.holdGen.Load() && ldUint64(&e.lockID) == lid
}

func livelockReport(g int64, s *tryStreak, h int64, p *tryStreak, now int64) *Report {
	ms, mp := s.meta.Load(), p.meta.Load()
	names := displayNames([]*lockMeta{ms, mp})
	a, b := names[ms.id], names[mp.id]
	span := func(x *tryStreak) time.Duration { return time.Duration(now - x.start.Load()).Round(time.Millisecond) }
	r := &Report{
		Kind: KindLivelock, Time: wallTime(min(s.start.Load(), p.start.Load())),
		Summary: fmt.Sprintf("livelock: goroutine %d has failed TryLock of %s %d times in %v, held by goroutine %d, which meanwhile has failed TryLock of %s %d times in %v, held by goroutine %d; neither has let go",
			g, a, s.fails.Load(), span(s), h, b, p.fails.Load(), span(p), g),
		Locks: []LockRef{ms.ref(), mp.ref()},
	}
	for _, x := range []struct {
		id   int64
		st   *tryStreak
		lock string
		held string
	}{{g, s, a, b}, {h, p, b, a}} {
		r.Goroutines = append(r.Goroutines, GoroutineRef{
			ID: x.id, Role: "spins on TryLock of", Lock: x.lock, For: span(x.st), Stack: stackFrames(x.st.stack.Load()),
		})
		other := p
		if x.st == p {
			other = s
		}
		if e := other.hold.Load(); e != nil {
			r.Goroutines = append(r.Goroutines, GoroutineRef{ID: x.id, Role: "holds", Lock: x.held, Stack: stackFrames(e.stackOrSite()), SiteOnly: e.siteOnly()})
		}
	}
	keys := []string{siteOf(s.site.Load(), s.site2.Load()).Site(), siteOf(p.site.Load(), p.site2.Load()).Site()}
	sort.Strings(keys)
	r.Key = string(KindLivelock) + "|" + keys[0] + "|" + keys[1]
	return r
}
