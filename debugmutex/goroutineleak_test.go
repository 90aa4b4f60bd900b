//go:build goexperiment.goroutineleakprofile || go1.27

package debugmutex_test

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Go's goroutine leak profile (GOEXPERIMENT=goroutineleakprofile on Go 1.26,
// on by default from Go 1.27) must see the same leaks with lockscope as
// without it (DESIGN.md, "Never the cause"): lockscope may not keep a lock
// that only leaked goroutines can reach alive.
//
// The leak: a holder locks a mutex and then blocks forever on a channel
// nobody else references; a waiter blocks on the mutex; then every other
// reference is dropped. Both goroutines are leaked, and the profile shows 2.
// It is made once with sync.Mutex and once with debugmutex.Mutex, in a child
// process (leaked goroutines stay for the life of a process), run twice:
// with LOCKSCOPE=off and with recording on.
//
//	GOEXPERIMENT=goroutineleakprofile go test -run TestGoroutineLeakProfileSeesLeaksThroughLocks ./debugmutex
//	GOTOOLCHAIN=go1.27.3 go test -run TestGoroutineLeakProfileSeesLeaksThroughLocks ./debugmutex

func TestGoroutineLeakProfileSeesLeaksThroughLocks(t *testing.T) {
	const name = "TestGoroutineLeakProfileSeesLeaksThroughLocks"
	if pprof.Lookup("goroutineleak") == nil {
		t.Log(`pprof.Lookup("goroutineleak") is nil: this toolchain has no goroutine leak profile (GOEXPERIMENT=goroutineleakprofile, or Go 1.27)`)
		t.Fatal("no goroutine leak profile: this run cannot pass")
	}
	if inReexec(name) {
		leakChild(t)
		return
	}
	counts := map[string]map[string][2]int{} // run -> variant -> holder, waiter
	for _, run := range []struct{ name, env string }{{"LOCKSCOPE=off", "LOCKSCOPE=off"}, {"lockscope", "LOCKSCOPE=on"}} {
		out, err := reexecTest(t, name, run.env)
		reexecLog(t, out)
		if err != nil {
			t.Fatalf("child process (%s) failed (%v):\n%s", run.name, err, out)
		}
		counts[run.name] = map[string][2]int{}
		for _, m := range leakCountLine.FindAllStringSubmatch(out, -1) {
			h, _ := strconv.Atoi(m[2])
			w, _ := strconv.Atoi(m[3])
			counts[run.name][m[1]] = [2]int{h, w}
		}
	}
	describe := func(c [2]int) string {
		return fmt.Sprintf("%d (holder %d, waiter %d)", c[0]+c[1], c[0], c[1])
	}
	for _, run := range []string{"LOCKSCOPE=off", "lockscope"} {
		if got := counts[run]["sync"]; got != [2]int{1, 1} {
			t.Errorf("%s run: with sync.Mutex the profile shows %s leaked goroutines, want 2 (holder 1, waiter 1): the test's own leak is not what it should be", run, describe(got))
		}
	}
	off, on := counts["LOCKSCOPE=off"]["debugmutex"], counts["lockscope"]["debugmutex"]
	if off != [2]int{1, 1} {
		t.Errorf("with LOCKSCOPE=off the profile shows %s leaked goroutines of debugmutex.Mutex, want 2 (holder 1, waiter 1), as with sync.Mutex", describe(off))
	}
	if on != off || on != [2]int{1, 1} {
		t.Errorf("with lockscope recording the goroutine leak profile shows %s leaked goroutines, with LOCKSCOPE=off %s and with sync.Mutex 2: lockscope keeps the leaked lock reachable",
			describe(on), describe(off))
	}
}

var leakCountLine = regexp.MustCompile(`LEAKED variant=(\w+) holder=(\d+) waiter=(\d+)`)

// The leaking goroutines' functions, one pair per variant, so that the
// profile's stacks say which leak a goroutine belongs to.

//go:noinline
func leakHolderSync(mu *sync.Mutex, locked chan<- struct{}) {
	mu.Lock()
	close(locked)
	<-make(chan struct{})
	panic("unreachable")
}

//go:noinline
func leakWaiterSync(mu *sync.Mutex) {
	mu.Lock()
	panic("unreachable")
}

//go:noinline
func leakHolderDebug(mu *debugmutex.Mutex, locked chan<- struct{}) {
	mu.Lock()
	close(locked)
	<-make(chan struct{})
	panic("unreachable")
}

//go:noinline
func leakWaiterDebug(mu *debugmutex.Mutex) {
	mu.Lock()
	panic("unreachable")
}

// leakSync and leakDebug make the leak and return once the waiter is
// blocked on the mutex, dropping the last references to it.
//
//go:noinline
func leakSync(t *testing.T) {
	mu := new(sync.Mutex)
	locked := make(chan struct{})
	go leakHolderSync(mu, locked)
	<-locked
	go leakWaiterSync(mu)
	leakAwaitBlocked(t, "leakWaiterSync")
}

//go:noinline
func leakDebug(t *testing.T) {
	mu := new(debugmutex.Mutex)
	locked := make(chan struct{})
	go leakHolderDebug(mu, locked)
	<-locked
	go leakWaiterDebug(mu)
	leakAwaitBlocked(t, "leakWaiterDebug")
}

// leakAwaitBlocked waits until the goroutine running fn is parked (in the
// mutex's Lock).
func leakAwaitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, "."+fn+"(") && !strings.Contains(head, "[running") && !strings.Contains(head, "[runnable") {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s did not block within 10s", fn)
}

// leakCounts writes the goroutine leak profile and counts the leaked
// goroutines whose stacks run each of the leak functions.
func leakCounts(t *testing.T) map[string]int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutineleak").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	count := 0
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if n, _, ok := strings.Cut(line, " @ "); ok {
			count, _ = strconv.Atoi(n)
			continue
		}
		if !strings.HasPrefix(line, "#") {
			continue
		}
		for _, fn := range []string{"leakHolderSync", "leakWaiterSync", "leakHolderDebug", "leakWaiterDebug"} {
			if strings.Contains(line, "debugmutex_test."+fn+"+") {
				counts[fn] += count
			}
		}
	}
	return counts
}

// leakChild makes both leaks and prints what the profile shows.
func leakChild(t *testing.T) {
	t.Logf("recording: %v", debugmutex.Enabled())
	leakSync(t)
	leakDebug(t)
	// Leak detection runs with the GC that writing the profile starts; give
	// it a few cycles, and up to 5s, to see both leaks of both variants.
	var c map[string]int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c = leakCounts(t)
		if c["leakHolderSync"] >= 1 && c["leakWaiterSync"] >= 1 && c["leakHolderDebug"] >= 1 && c["leakWaiterDebug"] >= 1 ||
			time.Now().After(deadline) {
			break
		}
	}
	t.Logf("LEAKED variant=sync holder=%d waiter=%d", c["leakHolderSync"], c["leakWaiterSync"])
	t.Logf("LEAKED variant=debugmutex holder=%d waiter=%d", c["leakHolderDebug"], c["leakWaiterDebug"])
}
