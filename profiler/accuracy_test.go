package profiler

import (
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
)

// Accuracy against ground truth known by construction, checked through the
// real `go tool pprof`. Statistics are cumulative for the whole test binary,
// so each test names its locks uniquely and filters on them with -tagfocus
// (which also tests that the labels work).

// truth is what a workload measured itself, around its own Lock and Unlock
// calls.
type truth struct {
	ops  atomic.Int64
	hold atomic.Int64 // ns, from Lock returning to Unlock being called
	wait atomic.Int64 // ns, spent in Lock
	all  atomic.Int64 // ns, from Lock being called to Unlock returning
}

// hammer has goroutines goroutines each lock mu (calling lock) ops times
// and hold it for hold (sleeping inside the critical section: that is the
// workload). They all start when start is closed; done is closed when all
// have finished.
func hammer(mu *debugmutex.Mutex, lock func(*debugmutex.Mutex), goroutines, ops int, hold time.Duration, start <-chan struct{}, tr *truth) (done <-chan struct{}) {
	fin := make(chan struct{}, goroutines)
	for range goroutines {
		go func() {
			defer func() { fin <- struct{}{} }()
			<-start
			for range ops {
				t0 := time.Now()
				lock(mu)
				t1 := time.Now()
				time.Sleep(hold)
				t2 := time.Now()
				mu.Unlock()
				tr.all.Add(int64(time.Since(t0)))
				tr.hold.Add(int64(t2.Sub(t1)))
				tr.wait.Add(int64(t1.Sub(t0)))
				tr.ops.Add(1)
			}
		}()
	}
	all := make(chan struct{})
	go func() {
		for range goroutines {
			<-fin
		}
		close(all)
	}()
	return all
}

// The acquire sites of the two locks, so that they are told apart by
// function in -top.
func lockSiteA(mu *debugmutex.Mutex) { mu.Lock() }
func lockSiteB(mu *debugmutex.Mutex) { mu.Lock() }

func TestAccuracyLongHoldsRankFirstAndTotalsMatchTruth(t *testing.T) {
	var a, b debugmutex.Mutex
	debugmutex.SetName(&a, "accuracy.A")
	debugmutex.SetName(&b, "accuracy.B")
	const goroutines, ops = 4, 20
	var trA, trB truth
	start := make(chan struct{})
	doneA := hammer(&a, lockSiteA, goroutines, ops, 8*time.Millisecond, start, &trA)
	doneB := hammer(&b, lockSiteB, goroutines, ops, time.Millisecond, start, &trB)
	close(start)
	<-doneA
	<-doneB

	hold := writeTemp(t, Hold)
	cont := writeTemp(t, Contention)
	byHolder := writeTemp(t, ContentionByHolder)

	// Hold: every acquisition of a lock held for milliseconds is timed, so
	// the count is exact, and debugmutex's interval (from acquisition to
	// release, inside Lock and Unlock) encloses the one measured here: it
	// can only be a little longer. How much longer is lockscope's own work
	// between its stamps and the calls' edges, plus any preemption there:
	// 3% and 2ms, and under the race detector (which slows that work
	// tenfold, and CI runs packages side by side) 100µs more per hold.
	slack := func(ops int64) float64 {
		d := 2 * time.Millisecond
		if raceOn {
			d += time.Duration(ops) * 100 * time.Microsecond
		}
		return float64(d)
	}
	for _, c := range []struct {
		name string
		tr   *truth
	}{{"accuracy.A", &trA}, {"accuracy.B", &trB}} {
		n := pprofTotal(t, "-sample_index=acquisitions", tagFocus(c.name), hold)
		if want := c.tr.ops.Load(); n != want {
			t.Errorf("%s: %d acquisitions in the hold profile, want %d", c.name, n, want)
		}
		got, want := pprofTotal(t, "-sample_index=hold", tagFocus(c.name), hold), c.tr.hold.Load()
		if got < want || float64(got) > 1.03*float64(want)+slack(n) {
			t.Errorf("%s: hold total %v in the profile, measured %v: want at least that and at most 3%% (+%v) more",
				c.name, time.Duration(got), time.Duration(want), time.Duration(slack(n)))
		}
		// Whatever the load: each timed wait and the hold it ended lie,
		// without overlapping, inside the Lock..Unlock call they were timed
		// in.
		delay := pprofTotal(t, "-sample_index=delay", tagFocus(c.name), cont)
		if all := c.tr.all.Load(); got+delay > all {
			t.Errorf("%s: hold %v + delay %v in the profiles, more than the %v spent from calling Lock to Unlock returning",
				c.name, time.Duration(got), time.Duration(delay), time.Duration(all))
		}
		t.Logf("%s: hold %v (measured %v), %d acquisitions", c.name, time.Duration(got), time.Duration(want), n)
	}

	// Contention: the waits debugmutex times lie inside the Lock calls timed
	// here, which also include uncontended calls and lockscope's own work.
	var waits [2]int64
	for i, c := range []struct {
		name string
		tr   *truth
	}{{"accuracy.A", &trA}, {"accuracy.B", &trB}} {
		got, want := pprofTotal(t, "-sample_index=delay", tagFocus(c.name), cont), c.tr.wait.Load()
		if n := c.tr.ops.Load(); got > want || float64(got) < 0.97*float64(want)-slack(n) {
			t.Errorf("%s: delay total %v in the contention profile, measured %v in Lock: want at most that and at least 97%% (-%v) of it",
				c.name, time.Duration(got), time.Duration(want), time.Duration(slack(n)))
		}
		n := pprofTotal(t, "-sample_index=contentions", tagFocus(c.name), cont)
		if n <= 0 || n > c.tr.ops.Load() {
			t.Errorf("%s: %d contentions, want between 1 and %d (the Lock calls)", c.name, n, c.tr.ops.Load())
		}
		// Same waits, charged to the holders: the totals are the same.
		if h := pprofTotal(t, "-sample_index=delay", tagFocus(c.name), byHolder); h != got {
			t.Errorf("%s: delay %v by holder, %v by waiter: want the same waits", c.name, time.Duration(h), time.Duration(got))
		}
		waits[i] = got
		t.Logf("%s: delay %v (measured %v), %d contentions", c.name, time.Duration(got), time.Duration(want), n)
	}

	// Ranking, as a user sees it: A's acquire site is above B's in -top of
	// every profile.
	for _, c := range []struct{ path, index string }{
		{hold, "hold"}, {cont, "delay"}, {byHolder, "delay"},
	} {
		out := pprof(t, "-top", "-nodefraction=0", "-sample_index="+c.index, "-tagfocus=lock=^accuracy\\.[AB]$", c.path)
		if pa, pb := strings.Index(out, "profiler.lockSiteA"), strings.Index(out, "profiler.lockSiteB"); pa < 0 || pb < 0 || pa > pb {
			t.Errorf("-top -sample_index=%s of %s does not rank lockSiteA above lockSiteB:\n%s", c.index, c.path, out)
		}
	}
	if waits[0] <= waits[1] {
		t.Errorf("A waited %v, B %v: want A more", time.Duration(waits[0]), time.Duration(waits[1]))
	}
}

// tryFail is one call site for TryLock failures.
func tryFail(mu *debugmutex.Mutex, n int) (failed int) {
	for range n {
		if !mu.TryLock() { // the site: tryFailLine
			failed++
		} else {
			mu.Unlock()
		}
	}
	return failed
}

// lineOf returns the line in this file that contains marker.
func lineOf(t *testing.T, marker string) int {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out, err := exec.Command("grep", "-n", "-F", marker, file).Output()
	if err != nil {
		t.Fatalf("grep %q %s: %v", marker, file, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// The first match is the marker itself; later ones are in this function.
	n, err := strconv.Atoi(strings.SplitN(lines[0], ":", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAccuracyTryLockFailuresAreExact(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "accuracy.try")
	held := make(chan struct{})
	release := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		mu.Lock()
		close(held)
		<-release
		mu.Unlock()
		close(finished)
	}()
	<-held
	if n := tryFail(&mu, 1000); n != 1000 {
		t.Fatalf("%d of 1000 TryLocks failed while the lock was held", n)
	}
	close(release)
	<-finished

	path := writeTemp(t, TryLock)
	if n := pprofTotal(t, tagFocus("accuracy.try"), path); n != 1000 {
		t.Errorf("%d failures in the trylock profile, want exactly 1000", n)
	}
	// At the call site, to the line.
	want := fmt.Sprintf("accuracy_test.go:%d", lineOf(t, "// the site: tryFailLine"))
	out := pprof(t, "-top", "-lines", tagFocus("accuracy.try"), path)
	if !regexp.MustCompile(`(?m)^\s*1000\s.*profiler\.tryFail .*` + regexp.QuoteMeta(want)).MatchString(out) {
		t.Errorf("-top -lines does not put 1000 failures at tryFail %s:\n%s", want, out)
	}
}

// parkHolding locks mu, named name, in a goroutine that parks, holding it,
// until the test ends. It returns when mu is held, with the holder's id.
func parkHolding(t *testing.T, mu *debugmutex.Mutex, name string) (lockedAt time.Time, goroutine int64) {
	locked := make(chan time.Time)
	end := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		lockInlined(mu) // the held-forever site
		locked <- time.Now()
		<-end
		mu.Unlock()
	}()
	lockedAt = <-locked
	t.Cleanup(func() { close(end); <-done })
	for _, h := range inspect.Snapshot().Held {
		if h.Lock.Name == name {
			goroutine = h.Goroutine
		}
	}
	return lockedAt, goroutine
}

// lockInlined is small enough to be inlined into its callers: the held
// profile must still show both it and its caller, at the right lines.
func lockInlined(mu *debugmutex.Mutex) {
	mu.Lock() // lockInlined's lock
}

func TestAccuracyHeldForeverIsInTheHeldProfileWithItsAge(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "accuracy.forever")
	lockedAt, g := parkHolding(t, &mu, "accuracy.forever")
	if g == 0 {
		t.Fatal("inspect.Snapshot does not show the parked holder")
	}
	// Let it age a little: a wait, not synchronisation.
	<-time.After(50 * time.Millisecond)
	waited := time.Since(lockedAt)
	path := writeTemp(t, Held)

	if n := pprofTotal(t, "-sample_index=locks", tagFocus("accuracy.forever"), path); n != 1 {
		t.Errorf("%d holds of accuracy.forever in the held profile, want 1", n)
	}
	age := pprofTotal(t, "-sample_index=age", tagFocus("accuracy.forever"), path)
	if time.Duration(age) < waited {
		t.Errorf("held profile gives age %v, but it was held for at least %v", time.Duration(age), waited)
	}
	// The holder goroutine is a numeric label.
	if n := pprofTotal(t, "-sample_index=locks", tagFocus("accuracy.forever"), fmt.Sprintf("-tagfocus=goroutine=%d", g), path); n != 1 {
		t.Errorf("-tagfocus=goroutine=%d keeps %d samples, want 1", g, n)
	}
	// Its acquire site, with the inlined call expanded: lockInlined at its
	// line, inlined (one location, two lines: pprof says "(inline)") in
	// parkHolding's closure at its line.
	traces := pprof(t, "-traces", "-lines", tagFocus("accuracy.forever"), path)
	site := fmt.Sprintf("profiler.lockInlined .*accuracy_test.go:%d", lineOf(t, "// lockInlined's lock"))
	caller := fmt.Sprintf("profiler.parkHolding.func1 .*accuracy_test.go:%d", lineOf(t, "// the held-forever site"))
	if !regexp.MustCompile(site + ` \(inline\)\s*\n\s*\S*` + caller + `\s*\n`).MatchString(traces) {
		t.Errorf("-traces does not show %q inlined in %q (go test -gcflags=-l turns inlining off):\n%s", site, caller, traces)
	}
	if !strings.Contains(traces, "goroutine:") {
		t.Errorf("-traces does not show the goroutine label:\n%s", traces)
	}
}
