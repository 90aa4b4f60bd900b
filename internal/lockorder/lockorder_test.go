package lockorder_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/engine"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"
)

// The lock-order graph fed by the engine's acquire and release flows on
// lock cores beside plain sync locks: no debugmutex Mutex, nothing ever blocks, and each fake goroutine's
// record is its own (ids far above any real goroutine's).

const fakeBase = 1 << 51

type holder struct {
	id int64
	g  *record.Gstate
}

func goroutine(t *testing.T, n int64) holder {
	t.Helper()
	id := fakeBase + n
	g := record.LookupG(id)
	t.Cleanup(func() {
		record.GtableMu.Lock()
		record.FreeG(id)
		record.GtableMu.Unlock()
	})
	return holder{id, g}
}

// lockCore is a lock in the layout the engine expects (record.mutexLayout):
// the real sync lock, then the core.
type lockCore struct {
	mu sync.Mutex
	c  record.LockCore
}

// lock and unlock take and release l's real lock and record the hold by h,
// as Mutex.Lock and Unlock do.
//
//go:noinline
func (h holder) lock(l *lockCore) {
	l.mu.Lock()
	engine.Acquired(&l.c, h.g, h.id, rt.Getfp(), record.MutexType, report.Write, false, nil)
}

//go:noinline
func (h holder) unlock(t *testing.T, l *lockCore) {
	r := engine.UnlockWrite(&l.c, h.id, rt.Getfp(), record.MutexType)
	l.mu.Unlock()
	if r != nil {
		t.Fatalf("unlock: %v", r.Summary)
	}
}

// lockOrder runs f and returns how many lock-order problems it made (new
// reports, and repeats of ones reported before: with -count=N the same
// sites make the same problem, which is counted, not reported again), and
// the reports delivered.
func lockOrder(f func()) (problems int, delivered []report.Report) {
	seen := func() (n int) {
		for _, r := range delivery.Reports() {
			if r.Kind == report.KindLockOrder {
				n += r.Count
			}
		}
		return n
	}
	var mu sync.Mutex
	stop := delivery.OnReport(func(r report.Report) {
		if r.Kind == report.KindLockOrder {
			mu.Lock()
			delivered = append(delivered, r)
			mu.Unlock()
		}
	})
	before := seen()
	f()
	stop()
	return seen() - before, delivered
}

func TestInverseOrdersOfTwoLocksAreOneReport(t *testing.T) {
	var a, b lockCore
	g1, g2 := goroutine(t, 1), goroutine(t, 2)
	n, got := lockOrder(func() {
		g1.lock(&a)
		g1.lock(&b)
		g1.unlock(t, &b)
		g1.unlock(t, &a)
		g2.lock(&b)
		g2.lock(&a)
		g2.unlock(t, &a)
		g2.unlock(t, &b)
	})
	if n != 1 {
		t.Fatalf("lock-order problems = %d (delivered %v), want 1", n, got)
	}
	for _, r := range got { // the first run: the report itself
		if len(r.Edges) != 2 || !strings.Contains(r.Summary, "deadlock") {
			t.Errorf("report %q has %d edges, want 2 and a summary naming the potential deadlock", r.Summary, len(r.Edges))
		}
	}
}

func TestOneOrderIsQuiet(t *testing.T) {
	var a, b lockCore
	g1, g2 := goroutine(t, 3), goroutine(t, 4)
	n, got := lockOrder(func() {
		for _, g := range []holder{g1, g2, g1} {
			g.lock(&a)
			g.lock(&b)
			g.unlock(t, &b)
			g.unlock(t, &a)
		}
	})
	if n != 0 {
		t.Fatalf("lock-order problems = %d (%v), want none", n, got)
	}
}

func TestAnInversionUnderACommonGateIsQuiet(t *testing.T) {
	var gate, a, b lockCore
	g1, g2 := goroutine(t, 5), goroutine(t, 6)
	n, got := lockOrder(func() {
		for _, step := range []struct {
			g           holder
			first, then *lockCore
		}{{g1, &a, &b}, {g2, &b, &a}} {
			step.g.lock(&gate)
			step.g.lock(step.first)
			step.g.lock(step.then)
			step.g.unlock(t, step.then)
			step.g.unlock(t, step.first)
			step.g.unlock(t, &gate)
		}
	})
	if n != 0 {
		t.Fatalf("lock-order problems under a common gate = %d (%v), want none", n, got)
	}
}
