package debugmutex_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// waitUntilWaiting returns once goroutine activity shows a waiter for the
// lock named name (polling the snapshot: nothing else can tell that a
// goroutine is blocked inside Lock), failing after a deadline.
func waitUntilWaiting(t *testing.T, name string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, w := range debugmutex.Snapshot().Waiting {
			if w.Lock.Name == name {
				return
			}
		}
	}
	t.Fatalf("no goroutine ever waited for %s", name)
}

// seen returns how many times a problem of kind k naming the lock name has
// been reported in this process (a repeat, as under -count=2, adds to the
// count of the first report).
func seen(k debugmutex.Kind, name string) int {
	n := 0
	for _, r := range debugmutex.Reports() {
		if r.Kind == k && strings.Contains(r.Summary, name) {
			n += r.Count
		}
	}
	return n
}

func TestCheckEndReportsALockLeakedByAnExitedGoroutine(t *testing.T) {
	if !debugmutex.Enabled() {
		t.Fatal("lockscope is off in this build")
	}
	w := watchReports(t)
	before := seen(debugmutex.KindLeakedLock, "atexit.leaked")
	var leaked, kept debugmutex.Mutex
	debugmutex.SetName(&leaked, "atexit.leaked")
	debugmutex.SetName(&kept, "atexit.kept")
	done := make(chan struct{})
	go func() { leaked.Lock(); close(done) }() // exits holding it
	<-done
	// A lock held by a goroutine still alive is no leak at the end.
	kept.Lock()
	defer kept.Unlock()

	// Well below the 30s hold threshold: only the end makes it certain.
	debugmutex.CheckEnd()
	if got := seen(debugmutex.KindLeakedLock, "atexit.leaked") - before; got != 1 {
		t.Errorf("leaked-lock reports for the lock of an exited goroutine: %d, want 1; got %v", got, kinds(w.all()))
	}
	for _, r := range w.all() {
		if strings.Contains(r.Summary, "atexit.kept") {
			t.Errorf("a lock held by a live goroutine is reported at the end: %s", r.Summary)
		}
	}
	// Once is enough.
	debugmutex.CheckEnd()
	if got := seen(debugmutex.KindLeakedLock, "atexit.leaked") - before; got != 1 {
		t.Errorf("a second CheckEnd reports the leak again: %d reports", got)
	}
	leaked.Unlock() // a hand-off, allowed: the test leaves nothing held
}

// A holder that has signalled it is done but is still running on its way
// out when the end comes (the usual shape: close(done), return) is waited
// for a moment, not taken for alive: its lock is reported as leaked.
func TestCheckEndWaitsForAHolderOnItsWayOut(t *testing.T) {
	w := watchReports(t)
	before := seen(debugmutex.KindLeakedLock, "atexit.exiting")
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "atexit.exiting")
	done := make(chan struct{})
	go func() {
		mu.Lock()
		close(done)
		// Still running for a few milliseconds after the signal: the work
		// a goroutine does on its way out (deferred calls), made long.
		for end := time.Now().Add(5 * time.Millisecond); time.Now().Before(end); {
			runtime.Gosched()
		}
	}()
	<-done
	debugmutex.CheckEnd()
	if got := seen(debugmutex.KindLeakedLock, "atexit.exiting") - before; got != 1 {
		t.Errorf("leaked-lock reports for a holder that exits just after the end began: %d, want 1; got %v", got, kinds(w.all()))
	}
}

// endStore's lock is a struct field never contended or named: a leak of
// it is reported by its declaration, as a contended one would be.
type endStore struct{ writer debugmutex.Mutex }

func (s *endStore) begin() { s.writer.Lock() }

func TestLeakedFieldLockNamedByItsDeclaration(t *testing.T) {
	before := seen(debugmutex.KindLeakedLock, "endStore.writer")
	s := new(endStore)
	done := make(chan struct{})
	go func() { defer close(done); s.begin() }() // never ended: exits holding it
	<-done
	debugmutex.CheckEnd()
	if got := seen(debugmutex.KindLeakedLock, "endStore.writer") - before; got != 1 {
		var sums []string
		for _, r := range debugmutex.Reports() {
			sums = append(sums, r.Summary)
		}
		t.Errorf("leaked-lock reports naming endStore.writer: %d, want 1; reports:\n%s", got, strings.Join(sums, "\n"))
	}
}

func TestCheckEndReportsARecursiveLockWithinTheGrace(t *testing.T) {
	debugmutex.Configure(debugmutex.RecursiveGrace(time.Hour))
	defer debugmutex.Configure(debugmutex.RecursiveGrace(50 * time.Millisecond))
	before := seen(debugmutex.KindDeadlock, "atexit.recursive")
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "atexit.recursive")
	relocked := make(chan struct{})
	go func() {
		mu.Lock()
		mu.Lock() // blocks: it holds mu itself
		close(relocked)
		mu.Unlock()
	}()
	waitUntilWaiting(t, "atexit.recursive")
	if got := seen(debugmutex.KindDeadlock, "atexit.recursive") - before; got != 0 {
		t.Fatalf("reported within the hour of grace, before the end: %d", got)
	}
	debugmutex.CheckEnd()
	if got := seen(debugmutex.KindDeadlock, "atexit.recursive") - before; got != 1 {
		t.Errorf("deadlock reports for a goroutine stuck in a recursive Lock at the end: %d, want 1", got)
	}
	mu.Unlock() // let it go, as sync would: another goroutine may unlock
	<-relocked
}

// exitingCalled says whether this process has called Exiting (-count=2
// runs the test twice in one process).
var exitingCalled bool

func TestExitingRunsOnceAndKeepsTheCode(t *testing.T) {
	// Exiting's AtExit functions run once, at the first call; this test
	// binary's TestMain does not call it. The second time the test runs in
	// the process, the function registered now must not run.
	runs := 0
	debugmutex.AtExit(func() { runs++ })
	if got := debugmutex.Exiting(3); got != 3 {
		t.Errorf("Exiting(3) = %d", got)
	}
	debugmutex.Exiting(0)
	want := 1
	if exitingCalled {
		want = 0
	}
	exitingCalled = true
	if runs != want {
		t.Errorf("AtExit function ran %d times, want %d", runs, want)
	}
}
