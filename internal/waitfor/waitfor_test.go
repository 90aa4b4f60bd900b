package waitfor_test

import (
	"testing"
	"unsafe"

	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/waitfor"
	"github.com/lockscope/lockscope/report"
)

// The wait-for search on records made by hand: no Mutex, no goroutine
// blocks. Goroutine ids far above any real one name the fake goroutines.

const fakeBase = 1 << 50

// goroutine claims a record for a fake goroutine, freed when the test ends.
func goroutine(t *testing.T, n int64) (int64, *record.Gstate) {
	t.Helper()
	id := fakeBase + n
	g := record.LookupG(id)
	t.Cleanup(func() {
		record.GtableMu.Lock()
		record.FreeG(id)
		record.GtableMu.Unlock()
	})
	return id, g
}

// lock is a lock core held for writing by goroutine holder (0: nobody).
type lock struct {
	c    record.LockCore
	meta record.LockMeta
}

func newLock(holder int64) *lock {
	l := &lock{}
	l.c.Holder = holder
	return l
}

// waitFor makes g a registered writer waiting for l.
func waitFor(g *record.Gstate, l *lock) *record.Waiter {
	w := &g.Wait
	w.Lock, w.Meta, w.Mode = uintptr(unsafe.Pointer(&l.c)), &l.meta, report.Write
	w.Active.Store(true)
	return w
}

func search(start *record.Waiter) []*record.Waiter {
	record.WaitMu.Lock()
	defer record.WaitMu.Unlock()
	return waitfor.FindCycle(start)
}

func TestTwoWritersWaitingForEachOtherAreACycle(t *testing.T) {
	id1, g1 := goroutine(t, 1)
	id2, g2 := goroutine(t, 2)
	a, b := newLock(id1), newLock(id2)
	w1 := waitFor(g1, b) // g1 holds a, waits for b
	w2 := waitFor(g2, a) // g2 holds b, waits for a
	cycle := search(w1)
	if len(cycle) != 2 || cycle[0] != w1 || cycle[1] != w2 {
		t.Fatalf("cycle = %v, want [g1's wait, g2's wait]", cycle)
	}
}

func TestAHolderThatIsNotWaitingBreaksTheChain(t *testing.T) {
	id1, g1 := goroutine(t, 3)
	id2, _ := goroutine(t, 4)
	_, b := newLock(id1), newLock(id2)
	w1 := waitFor(g1, b) // g2 holds b and runs: it will unlock it
	if cycle := search(w1); cycle != nil {
		t.Fatalf("cycle = %v, want none", cycle)
	}
}

func TestAGoroutineWaitingForItsOwnLockIsACycleOfOne(t *testing.T) {
	id1, g1 := goroutine(t, 5)
	a := newLock(id1)
	w1 := waitFor(g1, a)
	if cycle := search(w1); len(cycle) != 1 || cycle[0] != w1 {
		t.Fatalf("cycle = %v, want [g1's wait]", cycle)
	}
}

func TestAHandedOffLockIsNoEdge(t *testing.T) {
	id1, g1 := goroutine(t, 6)
	id2, g2 := goroutine(t, 7)
	a, b := newLock(id1), newLock(id2)
	b.c.MarkHandedOff() // b is a baton: its holder is not who will release it
	w1 := waitFor(g1, b)
	waitFor(g2, a)
	if cycle := search(w1); cycle != nil {
		t.Fatalf("cycle through a handed-off lock = %v, want none", cycle)
	}
}
