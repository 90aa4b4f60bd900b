package debugmutex

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"

	"github.com/petermattis/goid"
)

// Tests of what differs between platforms: call sites and stacks (frame
// pointers on amd64 and arm64, runtime.Callers elsewhere), goroutine ids
// (github.com/petermattis/goid or the slow fallback), racy 64-bit words
// (plain on 64-bit platforms, atomics on 32-bit ones). They run everywhere
// the package's tests run, including under qemu in .ci/run.

const thisPkg = "github.com/lockscope/lockscope/debugmutex."

func line() int {
	_, _, l, _ := runtime.Caller(1)
	return l
}

func TestLockscopePkgIsThisPackage(t *testing.T) {
	if rt.LockscopePkg != thisPkg {
		t.Fatalf("lockscopePkg = %q", rt.LockscopePkg)
	}
	if !rt.IsLockscopeFrame(thisPkg+"(*Mutex).Lock", "/x/debugmutex/mutex.go") ||
		rt.IsLockscopeFrame(thisPkg+"TestX", "/x/debugmutex/mutex_test.go") ||
		rt.IsLockscopeFrame("github.com/lockscope/lockscope/debugmutex/locktest.VerifyNone", "/x/locktest/locktest.go") {
		t.Fatal("isLockscopeFrame misclassifies")
	}
}

// held returns the holds of the lock named name, from Snapshot.
func held(name string) []report.Holding {
	var out []report.Holding
	for _, h := range inspect.Snapshot().Held {
		if h.Lock.Name == name {
			out = append(out, h)
		}
	}
	return out
}

func checkSite(t *testing.T, what string, site report.Frame, wantFunc string, wantLine int) {
	t.Helper()
	if site.Function != wantFunc || site.Line != wantLine {
		t.Errorf("%s: site %s:%d (%s), want line %d of %s", what, site.File, site.Line, site.Function, wantLine, wantFunc)
	}
}

// Every lock method records the user's line as the acquire site, however
// deep inside lockscope the site is read, and whichever way it is read.
func TestAcquireSitesAreTheCallers(t *testing.T) {
	const fn = thisPkg + "TestAcquireSitesAreTheCallers"
	var mu Mutex
	var rw RWMutex
	SetName(&mu, "platform.mu")
	SetName(&rw, "platform.rw")
	// Several acquisitions of each, so that sampled (timed, stack captured)
	// and unsampled ones are both seen.
	for i := range 3 {
		mu.Lock()
		l := line() - 1
		h := held("platform.mu")
		if len(h) != 1 {
			t.Fatalf("Lock %d: %d holds in Snapshot", i, len(h))
		}
		checkSite(t, "Lock", h[0].Site, fn, l)
		if fs := stacks.Symbolize(h[0].Stack); len(fs) == 0 || fs[0].Function != fn || fs[0].Line != l {
			t.Errorf("Lock %d: stack %v, want it to start at line %d", i, fs, l)
		}
		mu.Unlock()

		rw.RLock()
		l = line() - 1
		if h := held("platform.rw"); len(h) != 1 {
			t.Fatalf("RLock: %d holds", len(h))
		} else {
			checkSite(t, "RLock", h[0].Site, fn, l)
		}
		rw.RUnlock()

		rw.RLocker().Lock()
		l = line() - 1
		if h := held("platform.rw"); len(h) != 1 {
			t.Fatalf("RLocker().Lock: %d holds", len(h))
		} else {
			checkSite(t, "RLocker().Lock", h[0].Site, fn, l)
		}
		rw.RLocker().Unlock()

		LockContext(context.Background(), &rw)
		l = line() - 1
		if h := held("platform.rw"); len(h) != 1 {
			t.Fatalf("LockContext: %d holds", len(h))
		} else {
			checkSite(t, "LockContext", h[0].Site, fn, l)
		}
		rw.Unlock()

		if !mu.TryLock() {
			t.Fatal("TryLock failed")
		}
		l = line() - 3
		if h := held("platform.mu"); len(h) != 1 {
			t.Fatalf("TryLock: %d holds", len(h))
		} else {
			checkSite(t, "TryLock", h[0].Site, fn, l)
		}
		mu.Unlock()
	}
}

// A contended Lock records the waiter's site and stack, from the slow path.
func TestWaitSiteAndStackAreTheWaiters(t *testing.T) {
	const fn = thisPkg + "TestWaitSiteAndStackAreTheWaiters.func1"
	var mu Mutex
	SetName(&mu, "platform.wait")
	mu.Lock()
	var wg sync.WaitGroup
	lines := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		lines <- line() + 1
		mu.Lock()
		mu.Unlock()
	}()
	want := <-lines
	var w *report.Waiting
	for deadline := time.Now().Add(10 * time.Second); w == nil && time.Now().Before(deadline); {
		for _, x := range inspect.Snapshot().Waiting {
			if x.Lock.Name == "platform.wait" {
				w = &x
			}
		}
		time.Sleep(time.Millisecond)
	}
	mu.Unlock()
	wg.Wait()
	if w == nil {
		t.Fatal("the waiter never showed in Snapshot")
	}
	checkSite(t, "wait", w.Site, fn, want)
	if fs := stacks.Symbolize(w.Stack); len(fs) == 0 || fs[0].Function != fn || fs[0].Line != want {
		t.Errorf("wait stack %v, want it to start at line %d", fs, want)
	}
}

// callersSite and callersStack skip lockscope's frames: from a test
// function (the user's code), there are none to skip.
func TestCallersFallbackStartsAtTheUsersFrame(t *testing.T) {
	const fn = thisPkg + "TestCallersFallbackStartsAtTheUsersFrame"
	pc1, pc2 := rt.CallersSite()
	if pc1 == 0 || pc2 == 0 {
		t.Fatalf("callersSite = %#x, %#x", pc1, pc2)
	}
	if f := runtime.FuncForPC(pc1 - 1); f == nil || f.Name() != fn {
		t.Errorf("callersSite's pc1 is not in the test function")
	}
	var buf [8]uintptr
	n := rt.CallersStack(buf[:])
	if fs := stacks.Symbolize(buf[:n]); len(fs) < 2 || fs[0].Function != fn || fs[1].Function != "testing.tRunner" {
		t.Errorf("callersStack = %v", fs)
	}
}

// goidSlow is the runtime's id, on every goroutine, also with the longer
// stack header GOTRACEBACK=system prints.
func TestGoidSlowIsTheRuntimesID(t *testing.T) {
	check := func() string {
		id := rt.GoidSlow()
		if id < 1 {
			return "goidSlow returned a value that is not a goroutine id"
		}
		var buf [64]byte
		hdr := string(buf[:runtime.Stack(buf[:], false)])
		if want := "goroutine " + itoa(id) + " "; !strings.HasPrefix(hdr, want) {
			return "goidSlow = " + itoa(id) + " but the stack header is " + hdr
		}
		if rt.GoidFast && goid.Get() != id {
			return "goid.Get disagrees with goidSlow although goidFast"
		}
		return ""
	}
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- check() }()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
	debug.SetTraceback("system")
	defer debug.SetTraceback("single")
	if e := check(); e != "" {
		t.Fatal("GOTRACEBACK=system:", e)
	}
}

func itoa(i int64) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func TestParseGoroutineHeader(t *testing.T) {
	for _, c := range []struct {
		in string
		id int64
		ok bool
	}{
		{"goroutine 1 [running]:\n", 1, true},
		{"goroutine 123456 [running, locked to thread]:", 123456, true},
		{"goroutine 77 gp=0xc000002380 m=0 mp=0x5bf0a0 [running]:", 77, true},
		{"goroutine 9223372036854775807 [", 1<<63 - 1, true},
		{"goroutine 9223372036854775808 [", 0, false}, // overflows
		{"goroutine 0 [running]:", 0, false},          // not an id
		{"goroutine -1 [running]:", 0, false},
		{"goroutine  [running]:", 0, false},
		{"goroutine 12", 0, false}, // cut short
		{"goroutine 12[", 0, false},
		{"Goroutine 12 [", 0, false},
		{"", 0, false},
	} {
		id, ok := rt.ParseGoroutineHeader([]byte(c.in))
		if id != c.id || ok != c.ok {
			t.Errorf("parseGoroutineHeader(%q) = %d, %v; want %d, %v", c.in, id, ok, c.id, c.ok)
		}
	}
}

// Under the lockscope_slowgoid build tag every id comes from goidSlow.
func TestSlowGoidTagForcesTheSlowPath(t *testing.T) {
	if rt.SlowGoidForced && rt.GoidFast {
		t.Fatal("lockscope_slowgoid is set but goidFast is true")
	}
	if !rt.SlowGoidForced && !config.Disabled && !rt.GoidFast {
		t.Log("github.com/petermattis/goid does not match this Go release: ids come from goidSlow")
	}
	if rt.SlowGoidForced {
		t.Log("lockscope_slowgoid: ids come from goidSlow")
	}
}

// The racy 64-bit helpers never tear a value: plain loads only where an
// int64 is one word, atomics elsewhere (racy.go).
func TestRacyInt64DoesNotTear(t *testing.T) {
	var x struct{ v int64 } // first word of an allocated struct: 8-byte aligned on 32-bit platforms too
	p := &x
	const a, b = int64(0), int64(-1) // all bits clear, all bits set
	n := 200000
	if testing.Short() {
		n = 20000
	}
	done := make(chan bool)
	go func() {
		for i := range n {
			if i%2 == 0 {
				rt.StInt64(&p.v, a)
			} else {
				rt.StInt64(&p.v, b)
			}
		}
		done <- true
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if v := rt.LdInt64(&p.v); v != a && v != b {
			t.Fatalf("torn read: %#x", v)
		}
	}
}
