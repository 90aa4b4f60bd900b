package debugmutex_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Copied locks (copied.go).

type copyBox struct {
	mu debugmutex.Mutex
	n  int
}

type copyRWBox struct {
	rw debugmutex.RWMutex
}

// copyOf copies *v through a type parameter: go vet's copylocks cannot see
// that T holds a lock.
//
//go:noinline
func copyOf[T any](v *T) *T {
	c := *v
	return &c
}

func copiedReports(w *reportWatch) int {
	n := 0
	for _, r := range w.all() {
		if r.Kind == debugmutex.KindCopiedLock {
			n++
		}
	}
	return n
}

func TestCopiedLockAfterUseIsReportedOnceWithBothSites(t *testing.T) {
	w := watchReports(t)
	orig := &copyBox{}
	debugmutex.SetName(&orig.mu, "cp.orig")
	abandon("cp.orig")
	orig.mu.Lock()
	orig.mu.Unlock() // the original's last unlock: one of the report's two sites
	cp := copyOf(orig)
	cp.mu.Lock() // the copy's use: the other site
	cp.mu.Unlock()
	r := w.waitFor(t, debugmutex.KindCopiedLock, 5*time.Second)
	if !strings.Contains(r.Summary, "copy of cp.orig") {
		t.Errorf("summary %q does not name the original", r.Summary)
	}
	me := goid()
	var locker, unlocker *debugmutex.GoroutineRef
	for i := range r.Goroutines {
		switch g := &r.Goroutines[i]; {
		case strings.HasPrefix(g.Role, "locks the copy"):
			locker = g
		case strings.HasPrefix(g.Role, "last unlocked the original"):
			unlocker = g
		}
	}
	if locker == nil || locker.ID != me || !hasFrame(locker.Stack, "TestCopiedLockAfterUseIsReportedOnceWithBothSites") {
		t.Errorf("the copy's locker is not this goroutine (%d) at this test: %+v", me, locker)
	}
	if unlocker == nil || unlocker.ID != me || len(unlocker.Stack) == 0 ||
		!strings.HasSuffix(unlocker.Stack[0].File, "copied_test.go") {
		t.Errorf("the original's last unlock is not this test's: %+v", unlocker)
	}

	// Both go on as two locks, silently: one report.
	for i := 0; i < 3; i++ {
		orig.mu.Lock()
		cp.mu.Lock()
		cp.mu.Unlock()
		orig.mu.Unlock()
	}
	if n := copiedReports(w); n != 1 {
		t.Errorf("%d copied-lock reports, want 1", n)
	}
}

// A copy made while the original was held is born locked: the goroutine
// that locks it is told why before it blocks, with the original's holder.
func TestCopyOfAHeldLockIsReportedBeforeItsLockerBlocks(t *testing.T) {
	w := watchReports(t)
	orig := &copyBox{}
	debugmutex.SetName(&orig.mu, "cp.born")
	abandon("cp.born")
	orig.mu.Lock()
	cp := copyOf(orig)
	done := make(chan int64)
	go func() {
		cp.mu.Lock() // blocks: the copy is locked
		cp.mu.Unlock()
		done <- goid()
	}()
	r := w.waitFor(t, debugmutex.KindCopiedLock, 5*time.Second)
	if !strings.Contains(r.Summary, "nobody will unlock it") || !strings.Contains(r.Summary, "cp.born") {
		t.Errorf("summary %q", r.Summary)
	}
	me := goid()
	found := false
	for _, g := range r.Goroutines {
		if g.ID == me && strings.HasPrefix(g.Role, "held the original") {
			found = len(g.Stack) == 1 && strings.HasSuffix(g.Stack[0].File, "copied_test.go")
		}
	}
	if !found {
		t.Errorf("the original's holder (goroutine %d, locked here) is not in %+v", me, r.Goroutines)
	}
	orig.mu.Unlock()
	cp.mu.Unlock() // sync lets any goroutine unlock the born-locked copy
	if id := <-done; id == me {
		t.Error("locker ran on the test goroutine")
	}
	// The wait for the copy was no deadlock: the original's holder was not
	// taken for the copy's.
	for _, r := range w.all() {
		if r.Kind == debugmutex.KindDeadlock && strings.Contains(r.Summary, "cp.born") {
			t.Errorf("false deadlock: %s", r.Summary)
		}
	}
}

func TestCopiedRWMutexReadLockedIsReported(t *testing.T) {
	w := watchReports(t)
	orig := &copyRWBox{}
	debugmutex.SetName(&orig.rw, "cp.rw")
	abandon("cp.rw")
	orig.rw.RLock()
	orig.rw.RUnlock()
	cp := copyOf(orig)
	cp.rw.RLock()
	cp.rw.RUnlock()
	r := w.waitFor(t, debugmutex.KindCopiedLock, 5*time.Second)
	if !strings.HasPrefix(r.Summary, "RLock of RWMutex") || !strings.Contains(r.Summary, "copy of cp.rw") {
		t.Errorf("summary %q", r.Summary)
	}
}

// A lock never sits on a goroutine stack (which moves when it grows, and
// would then look copied): a local lock escapes to the heap. One
// allocation per local lock, where sync's stays on the stack.
func TestLocksLiveOnTheHeap(t *testing.T) {
	// What locking a lock that already exists allocates (nothing, unless
	// goroutine ids come from the slow fallback, -tags lockscope_slowgoid).
	var warm debugmutex.Mutex
	var warmRW debugmutex.RWMutex
	for range 1000 { // past their first timed holds: meta, name
		warm.Lock()
		warm.Unlock()
		warmRW.Lock()
		warmRW.Unlock()
	}
	ops := testing.AllocsPerRun(100, func() { warm.Lock(); warm.Unlock() })
	opsRW := testing.AllocsPerRun(100, func() { warmRW.Lock(); warmRW.Unlock() })
	if n := testing.AllocsPerRun(100, func() {
		var mu debugmutex.Mutex
		mu.Lock()
		mu.Unlock()
	}) - ops; n != 1 {
		t.Errorf("a local Mutex costs %v allocations beyond locking, want 1 (moved to the heap)", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		var rw debugmutex.RWMutex
		rw.Lock()
		rw.Unlock()
	}) - opsRW; n != 1 {
		t.Errorf("a local RWMutex costs %v allocations beyond locking, want 1 (moved to the heap)", n)
	}
}
