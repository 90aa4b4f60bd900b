package locktest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/debugmutex/locktest"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

func TestMain(m *testing.M) {
	debugmutex.Configure(debugmutex.Quiet(true))
	locktest.VerifyTestMain(m, locktest.IgnoreLocks("left.held", "leaked.short", "recursive.short"), locktest.IgnoreKinds(report.KindRecursiveRead))
}

type fakeT struct{ errs []string }

func (f *fakeT) Helper()           {}
func (f *fakeT) Error(args ...any) { f.errs = append(f.errs, fmt.Sprint(args...)) }

func TestCleanTestPasses(t *testing.T) {
	var mu debugmutex.Mutex
	mu.Lock()
	mu.Unlock()
	ft := &fakeT{}
	locktest.VerifyNone(ft, locktest.IgnoreCurrent())
	if len(ft.errs) != 0 {
		t.Fatalf("clean test failed: %v", ft.errs)
	}
}

func TestLockStillHeldFails(t *testing.T) {
	base := locktest.IgnoreCurrent()
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "left.held")
	mu.Lock() // forgotten
	ft := &fakeT{}
	locktest.VerifyNone(ft, base, locktest.MaxWait(20*time.Millisecond))
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "left.held still write-held") {
		t.Fatalf("errors %q", ft.errs)
	}
	// A holder that finishes within MaxWait is not a problem.
	done := make(chan struct{})
	go func() { <-done; mu.Unlock() }()
	close(done)
	ft = &fakeT{}
	locktest.VerifyNone(ft, base)
	if len(ft.errs) != 0 {
		t.Fatalf("released lock still reported: %v", ft.errs)
	}
}

func TestReportFails(t *testing.T) {
	base := locktest.IgnoreCurrent()
	var rw debugmutex.RWMutex
	debugmutex.SetName(&rw, "twice.read")
	rw.RLock()
	rw.RLock() // recursive read: reported
	rw.RUnlock()
	rw.RUnlock()
	ft := &fakeT{}
	locktest.VerifyNone(ft, base)
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "LOCKSCOPE: potential deadlock") {
		t.Fatalf("errors %q", ft.errs)
	}
	ft = &fakeT{}
	locktest.VerifyNone(ft, base, locktest.IgnoreKinds(report.KindRecursiveRead))
	if len(ft.errs) != 0 {
		t.Fatalf("ignored kind still reported: %v", ft.errs)
	}
	ft = &fakeT{}
	locktest.VerifyNone(ft, locktest.IgnoreCurrent())
	if len(ft.errs) != 0 {
		t.Fatalf("IgnoreCurrent did not ignore: %v", ft.errs)
	}
}

func TestShortTestLeavingALeakedLockFails(t *testing.T) {
	base := locktest.IgnoreCurrent()
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "leaked.short")
	done := make(chan struct{})
	go func() { mu.Lock(); close(done) }() // exits holding it
	<-done
	ft := &fakeT{}
	locktest.VerifyNone(ft, base, locktest.MaxWait(0))
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "leaked.short") || !strings.Contains(ft.errs[0], "has exited without unlocking it") {
		t.Fatalf("errors %q", ft.errs)
	}
	mu.Unlock()
}

func TestGoroutineStuckInARecursiveLockFails(t *testing.T) {
	base := locktest.IgnoreCurrent()
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "recursive.short")
	relocked := make(chan struct{})
	go func() {
		mu.Lock()
		mu.Lock() // waits for itself; the default grace is 1s
		close(relocked)
		mu.Unlock()
	}()
	// Only the snapshot can tell that the goroutine is blocked in Lock.
	for deadline := time.Now().Add(10 * time.Second); !waiting("recursive.short"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the goroutine never waited")
		}
	}
	ft := &fakeT{}
	locktest.VerifyNone(ft, base, locktest.AllowHeld())
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "which it holds itself (recursive locking)") {
		t.Fatalf("errors %q", ft.errs)
	}
	mu.Unlock() // another goroutine may unlock, as under sync
	<-relocked
}

func waiting(name string) bool {
	for _, w := range inspect.Snapshot().Waiting {
		if w.Lock.Name == name {
			return true
		}
	}
	return false
}

func ExampleVerifyNone() {
	// In a test: defer locktest.VerifyNone(t)
	var mu debugmutex.Mutex
	mu.Lock()
	mu.Unlock()
	fmt.Println(locktest.Find(locktest.IgnoreCurrent()))
	// Output: <nil>
}
