package debugmutex_test

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Once, OnceFunc, OnceValue and OnceValues. First, each behaviour sync
// documents (and Go's own tests of sync check), run against sync's
// implementation and lockscope's; then what lockscope adds.

// onceImpl is one implementation of sync's Once API.
type onceImpl struct {
	name       string
	newOnce    func() doer
	onceFunc   func(func()) func()
	onceValue  func(func() int) func() int
	onceValues func(func() (int, int)) func() (int, int)
	// running is called from inside the function a Once runs, for a Once
	// (typ "Once") or a OnceFunc's ("OnceFunc"): lockscope's must show the
	// goroutine holding that Once in its records. sync's checks nothing.
	running func(t *testing.T, typ string)
}

type doer interface{ Do(func()) }

var onceImpls = []onceImpl{
	{
		name:       "sync",
		newOnce:    func() doer { return new(sync.Once) },
		onceFunc:   sync.OnceFunc,
		onceValue:  sync.OnceValue[int],
		onceValues: sync.OnceValues[int, int],
		running:    func(*testing.T, string) {},
	},
	{
		name:       "lockscope",
		newOnce:    func() doer { return new(debugmutex.Once) },
		onceFunc:   debugmutex.OnceFunc,
		onceValue:  debugmutex.OnceValue[int],
		onceValues: debugmutex.OnceValues[int, int],
		running:    holdsOnce,
	},
}

// holdsOnce fails t unless lockscope's records show the calling goroutine
// holding a lock of type typ.
func holdsOnce(t *testing.T, typ string) {
	t.Helper()
	g := goid()
	for _, h := range inspect.Snapshot().Held {
		if h.Goroutine == g && h.Lock.Type == typ && h.Mode == report.Write {
			return
		}
	}
	t.Errorf("lockscope's records show goroutine %d holding no %s while the function runs", g, typ)
}

// forEachOnce runs test as a subtest for each implementation.
func forEachOnce(t *testing.T, test func(t *testing.T, impl onceImpl)) {
	for _, impl := range onceImpls {
		t.Run(impl.name, func(t *testing.T) { test(t, impl) })
	}
}

// blockedInDo returns, from the runtime's goroutine dump, the goroutines
// blocked waiting for the Mutex of a Once (in sync's doSlow or lockscope's),
// each with the number of doSlow frames on its stack.
func blockedInDo() map[int64]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]int{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, rest, _ := bytes.Cut(g, []byte("\n"))
		h := strings.TrimPrefix(string(header), "goroutine ")
		sp := strings.IndexByte(h, ' ')
		if sp < 0 || !strings.HasPrefix(h[sp:], " [sync.Mutex.Lock") {
			continue
		}
		id, err := strconv.ParseInt(h[:sp], 10, 64)
		if err != nil {
			continue
		}
		if k := bytes.Count(rest, []byte(".(*Once).doSlow(")); k > 0 {
			out[id] = k
		}
	}
	return out
}

// eventually polls cond until it holds, failing t after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// "if once.Do(f) is called multiple times, only the first call will invoke
// f, even if f has a different value in each invocation."
func TestOnceCallsOnlyTheFirstFunction(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		once := impl.newOnce()
		var calls []string
		once.Do(func() { impl.running(t, "Once"); calls = append(calls, "f") })
		once.Do(func() { calls = append(calls, "g") })
		once.Do(func() { calls = append(calls, "f again") })
		if len(calls) != 1 || calls[0] != "f" {
			t.Errorf("calls %v, want [f]", calls)
		}
		// "A new instance of Once is required for each function to execute."
		other := impl.newOnce()
		other.Do(func() { calls = append(calls, "g") })
		if len(calls) != 2 || calls[1] != "g" {
			t.Errorf("calls %v, want [f g]", calls)
		}
	})
}

// "no call to Do returns until the one call to f returns", and "the return
// from f synchronizes before the return from any call of once.Do(f)": a
// second caller waits, and then sees what f wrote (the race detector checks
// the second part under -race).
func TestOnceDoReturnsOnlyAfterTheFunctionReturns(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		once := impl.newOnce()
		started, release := make(chan struct{}), make(chan struct{})
		written := 0 // written by f, read by the second caller: no atomics
		go once.Do(func() {
			impl.running(t, "Once")
			close(started)
			<-release
			written = 42
		})
		<-started
		second := make(chan int64, 1)
		returned := make(chan int, 1)
		go func() {
			second <- goid()
			once.Do(func() { t.Error("the second call ran its function") })
			returned <- written
		}()
		id := <-second
		eventually(t, "the second caller blocked in Do", func() bool { return blockedInDo()[id] > 0 })
		select {
		case <-returned:
			t.Fatal("the second Do returned while f was still running")
		default:
		}
		close(release)
		if got := <-returned; got != 42 {
			t.Errorf("the second caller saw %d, want f's 42", got)
		}
	})
}

// 10,000 goroutines racing one Once run its function once, and every one
// returns after it (TestOnce of Go's sync, at scale). lockscope records the
// ones that waited as contention on the Once.
func TestOnce10000GoroutinesRunItOnce(t *testing.T) {
	const n = 10_000
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		before := onceContentions()
		stuck := blockedInDo() // left blocked in Do by other tests
		once := impl.newOnce()
		var calls atomic.Int32
		value := 0
		gate, ranF := make(chan struct{}), make(chan struct{})
		var started, done sync.WaitGroup
		bad := atomic.Int32{}
		for range n {
			started.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				started.Done()
				<-gate
				once.Do(func() {
					impl.running(t, "Once")
					calls.Add(1)
					close(ranF)
					// Hold the others off until one of them waits in Do.
					for waiting := false; !waiting; {
						for id := range blockedInDo() {
							waiting = waiting || stuck[id] == 0
						}
					}
					value = 1
				})
				if value != 1 {
					bad.Add(1)
				}
			}()
		}
		started.Wait()
		close(gate)
		done.Wait()
		<-ranF
		if c := calls.Load(); c != 1 {
			t.Errorf("f ran %d times, want 1", c)
		}
		if b := bad.Load(); b != 0 {
			t.Errorf("%d goroutines returned from Do before f had", b)
		}
		if impl.name == "lockscope" && onceContentions() <= before {
			t.Errorf("no wait in Do recorded as contention on a Once (%d before, %d after)", before, onceContentions())
		}
	})
}

// onceContentions adds up the contentions lockscope recorded on Onces.
func onceContentions() int64 {
	var c int64
	for _, l := range inspect.LockStats() {
		if l.Type == "Once" {
			c += l.Contentions
		}
	}
	return c
}

// "If f panics, Do considers it to have returned; future calls of Do
// return without calling f." The panic reaches the caller of Do with its
// value (TestOncePanic of Go's sync), and a call waiting in Do meanwhile
// returns without calling its function. lockscope's records keep no hold of
// the Once after the panic.
func TestOncePanickingFunctionBehavesAsSyncs(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		once := impl.newOnce()
		started, release := make(chan struct{}), make(chan struct{})
		panicked := make(chan any, 1)
		first := make(chan int64, 1)
		go func() {
			first <- goid()
			defer func() { panicked <- recover() }()
			once.Do(func() {
				impl.running(t, "Once")
				close(started)
				<-release
				panic("x")
			})
			t.Error("Do returned normally from a panicking f")
		}()
		firstID := <-first
		<-started
		waiter := make(chan int64, 1)
		waited := make(chan struct{})
		go func() {
			waiter <- goid()
			once.Do(func() { t.Error("a waiting call ran its function after f panicked") })
			close(waited)
		}()
		id := <-waiter
		eventually(t, "a second caller blocked in Do", func() bool { return blockedInDo()[id] > 0 })
		close(release)
		if p := <-panicked; p != "x" {
			t.Errorf("Do panicked with %v, want x", p)
		}
		<-waited
		once.Do(func() { t.Error("Do called f again after it panicked") })
		for _, h := range inspect.Snapshot().Held {
			if h.Goroutine == firstID {
				t.Errorf("goroutine %d still holds %s %s after its f panicked", firstID, h.Lock.Type, h.Lock.Name)
			}
		}
	})
}

// "if f causes Do to be called, it will deadlock": the goroutine blocks in
// the inner Do and stays there (lockscope reports it too:
// TestDoInsideDoIsReportedBeforeItBlocks).
func TestOnceDoInsideItsFunctionDeadlocks(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		w := watchReports(t)
		once := impl.newOnce()
		ids := make(chan int64, 1)
		var innerRan atomic.Bool
		go func() {
			ids <- goid()
			once.Do(func() {
				impl.running(t, "Once")
				once.Do(func() { innerRan.Store(true) })
			})
			t.Error("Do inside Do returned")
		}()
		id := <-ids
		eventually(t, "the goroutine blocked in its inner Do", func() bool { return blockedInDo()[id] == 2 })
		if innerRan.Load() {
			t.Error("the inner function ran")
		}
		if impl.name == "lockscope" {
			// Named by its site (a local of an interface type): left
			// stuck, like the goroutine.
			r := w.waitForLock(t, debugmutex.KindDeadlock, "goroutine "+strconv.FormatInt(id, 10)+" called Do of Once", 10*time.Second)
			abandon(r.Locks[0].Name)
		}
	})
}

// OnceFunc, OnceValue and OnceValues call f once, return its values every
// time, allocate nothing per call and at most twice per construction
// (TestOnceFunc, TestOnceValue and TestOnceValues of Go's sync), and may
// be called concurrently.
func TestOnceFuncValueValuesCallFOnce(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		var calls atomic.Int32
		fn := impl.onceFunc(func() { impl.running(t, "OnceFunc"); calls.Add(1) })
		val := impl.onceValue(func() int { impl.running(t, "OnceFunc"); return int(calls.Add(1)) })
		vals := impl.onceValues(func() (int, int) { impl.running(t, "OnceFunc"); c := int(calls.Add(1)); return c, c + 1 })
		var wg sync.WaitGroup
		results := make(chan [3]int, 10)
		for range 10 {
			wg.Go(func() {
				fn()
				a, b := vals()
				results <- [3]int{val(), a, b}
			})
		}
		wg.Wait()
		close(results)
		var first [3]int
		for r := range results {
			if first == ([3]int{}) {
				first = r
			}
			if r != first || r[2] != r[1]+1 {
				t.Errorf("results %v and %v differ", first, r)
			}
		}
		if c := calls.Load(); c != 3 {
			t.Errorf("the three functions ran %d times in all, want 3", c)
		}
		if a := testing.AllocsPerRun(10, func() { fn(); val(); vals() }); a != 0 {
			t.Errorf("%v allocations per call, want 0", a)
		}
		for name, mk := range map[string]func(){
			"OnceFunc":   func() { fn = impl.onceFunc(func() {}) },
			"OnceValue":  func() { val = impl.onceValue(func() int { return 0 }) },
			"OnceValues": func() { vals = impl.onceValues(func() (int, int) { return 0, 0 }) },
		} {
			if a := testing.AllocsPerRun(10, mk); a > 2 {
				t.Errorf("%v allocations per call to %s, want at most 2", a, name)
			}
		}
	})
}

// "If f panics, the returned function will panic with the same value on
// every call", f is called once (TestOnceFuncPanic..., Go's sync), a nil
// panic too (TestOnceFuncPanicNil), and the first panic's stack reaches the
// origin of the panic (TestOnceFuncPanicTraceback).
func TestOnceFuncPanicsWithTheSameValueOnEveryCall(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		var calls atomic.Int32
		onX := func() { impl.running(t, "OnceFunc"); calls.Add(1); oncePanicX() }
		valX := impl.onceValue(func() int { onX(); return 0 })
		valsX := impl.onceValues(func() (int, int) { onX(); return 0, 0 })
		for name, f := range map[string]func(){
			"OnceFunc":   impl.onceFunc(onX),
			"OnceValue":  func() { valX() },
			"OnceValues": func() { valsX() },
		} {
			for i := range 2 {
				var stack []byte
				p := func() (p any) {
					defer func() { p = recover(); stack = debug.Stack() }()
					f()
					return "no panic"
				}()
				if p != "x" {
					t.Errorf("%s call %d: panic %v, want x", name, i+1, p)
				}
				if i == 0 && !bytes.Contains(stack, []byte("debugmutex_test.oncePanicX")) {
					t.Errorf("%s: the first panic's stack does not reach f:\n%s", name, stack)
				}
			}
		}
		if c := calls.Load(); c != 3 {
			t.Errorf("f called %d times by the three, want 3", c)
		}
		nilCalls := 0
		fnil := impl.onceFunc(func() { nilCalls++; panic(nil) })
		for i := range 2 {
			p := func() (p any) {
				defer func() { p = recover() }()
				fnil()
				return "no panic"
			}()
			if _, ok := p.(*runtime.PanicNilError); !ok {
				t.Errorf("call %d: panic %v, want a *runtime.PanicNilError", i+1, p)
			}
		}
		if nilCalls != 1 {
			t.Errorf("panic(nil) f called %d times, want 1", nilCalls)
		}
	})
}

func oncePanicX() { panic("x") }

// "If f calls Goexit, the results are unspecified. But check that f doesn't
// get called twice" (TestOnceFuncGoexit, Go's sync); and a Once's Do whose
// f calls Goexit is done, as sync's.
func TestOnceFuncGoexitCallsFOnce(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		calls := 0
		f := impl.onceFunc(func() { impl.running(t, "OnceFunc"); calls++; runtime.Goexit() })
		once := impl.newOnce()
		doCalls := 0
		for range 2 {
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer func() { recover() }()
				f()
			}()
			<-done
			done = make(chan struct{})
			go func() {
				defer close(done)
				once.Do(func() { doCalls++; runtime.Goexit() })
			}()
			<-done
		}
		if calls != 1 || doCalls != 1 {
			t.Errorf("f called %d times by OnceFunc and %d by Do, want 1 and 1", calls, doCalls)
		}
	})
}

// "Do not keep f alive after invoking it" (TestOnceXGC, Go's sync): after
// the first call, what f refers to can be collected, whether f returned or
// panicked.
func TestOnceFuncDoesNotKeepFAlive(t *testing.T) {
	forEachOnce(t, func(t *testing.T, impl onceImpl) {
		running := func() { impl.running(t, "OnceFunc") }
		for name, mk := range map[string]func(buf []byte) func(){
			"OnceFunc": func(buf []byte) func() { return impl.onceFunc(func() { running(); buf[0] = 1 }) },
			"OnceValue": func(buf []byte) func() {
				f := impl.onceValue(func() int { running(); buf[0] = 1; return 0 })
				return func() { f() }
			},
			"OnceValues": func(buf []byte) func() {
				f := impl.onceValues(func() (int, int) { running(); buf[0] = 1; return 0, 0 })
				return func() { f() }
			},
			"OnceFunc panic": func(buf []byte) func() {
				return impl.onceFunc(func() { running(); buf[0] = 1; panic("test panic") })
			},
		} {
			t.Run(name, func(t *testing.T) {
				buf := make([]byte, 1024)
				collected := make(chan struct{})
				runtime.AddCleanup(&buf[0], func(c chan struct{}) { close(c) }, collected)
				f := mk(buf)
				buf = nil
				runtime.GC()
				runtime.GC()
				select {
				case <-collected:
					t.Fatal("f collected before the first call")
				default:
				}
				call := func() {
					defer func() { recover() }()
					f()
				}
				call()
				deadline := time.After(10 * time.Second)
				for done := false; !done; {
					runtime.GC()
					select {
					case <-collected:
						done = true
					case <-deadline:
						t.Fatal("f still alive 10s after the first call")
					case <-time.After(time.Millisecond):
					}
				}
				call()
			})
		}
	})
}

// lockscope's own: what a Once is in its records and reports.

// onceDeadlockConfig is the state of TestOnceDeadlockThroughALockIsReportedWhenItCloses.
type onceDeadlockConfig struct {
	mu   debugmutex.Mutex
	once debugmutex.Once
}

// Goroutine A runs the Once's function, which waits for a lock held by B;
// B calls Do of the same Once: deadlocked in sync. lockscope reports it from
// B's Do, before B blocks, in well under 100 ms, naming the Once by its
// declaration.
func TestOnceDeadlockThroughALockIsReportedWhenItCloses(t *testing.T) {
	abandon("onceDeadlockConfig.once", "onceDeadlockConfig.mu")
	c := &onceDeadlockConfig{}
	var closedAt atomic.Int64 // when B calls Do, closing the cycle (UnixNano)
	got := make(chan struct {
		r       report.Report
		g       int64
		elapsed time.Duration
	}, 1)
	unregister := inspect.OnReport(func(r report.Report) {
		if r.Kind != report.KindDeadlock || !strings.Contains(r.Summary, "onceDeadlockConfig.once") {
			return
		}
		select {
		case got <- struct {
			r       report.Report
			g       int64
			elapsed time.Duration
		}{r, goid(), time.Duration(time.Now().UnixNano() - closedAt.Load())}:
		default:
		}
	})
	defer unregister()

	bHolds, bGo := make(chan int64), make(chan struct{})
	go func() { // B
		c.mu.Lock()
		bHolds <- goid()
		<-bGo
		closedAt.Store(time.Now().UnixNano())
		c.once.Do(func() { t.Error("B ran the Once's function") }) // B's Do
	}()
	b := <-bHolds
	aIn := make(chan int64)
	go func() { // A
		c.once.Do(func() { // A's Do
			aIn <- goid()
			c.mu.Lock()
		})
	}()
	a := <-aIn
	eventually(t, "A waiting for the lock B holds", func() bool {
		for _, w := range inspect.Snapshot().Waiting {
			if w.Goroutine == a && w.Lock.Name == "onceDeadlockConfig.mu" {
				return true
			}
		}
		return false
	})
	close(bGo)
	var res struct {
		r       report.Report
		g       int64
		elapsed time.Duration
	}
	select {
	case res = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no deadlock report through the Once within 10s")
	}
	r := res.r
	if res.g != b {
		t.Errorf("reported on goroutine %d, want B (%d), before it blocks", res.g, b)
	}
	if res.elapsed >= 100*time.Millisecond {
		t.Errorf("reported %v after the cycle closed, want under 100ms", res.elapsed)
	}
	t.Logf("reported %v after B's Do closed the cycle", res.elapsed)
	for _, s := range []string{
		"goroutine " + strconv.FormatInt(b, 10) + " waits for Once onceDeadlockConfig.once, whose function goroutine " + strconv.FormatInt(a, 10) + " is running",
		"goroutine " + strconv.FormatInt(a, 10) + " waits for write lock onceDeadlockConfig.mu held by goroutine " + strconv.FormatInt(b, 10),
	} {
		if !strings.Contains(r.Summary, s) {
			t.Errorf("summary %q\nlacks %q", r.Summary, s)
		}
	}
	types := map[string]string{}
	for _, l := range r.Locks {
		types[l.Name] = l.Type
	}
	if types["onceDeadlockConfig.once"] != "Once" || types["onceDeadlockConfig.mu"] != "Mutex" {
		t.Errorf("locks %+v", r.Locks)
	}
	roles := map[string]report.GoroutineRef{}
	for _, g := range r.Goroutines {
		roles[strconv.FormatInt(g.ID, 10)+" "+g.Role+" "+g.Lock] = g
	}
	bWaits, ok := roles[strconv.FormatInt(b, 10)+" waits for Once onceDeadlockConfig.once"]
	if !ok || len(bWaits.Stack) == 0 || !strings.HasSuffix(bWaits.Stack[0].Function, "TestOnceDeadlockThroughALockIsReportedWhenItCloses.func2") {
		t.Errorf("B's wait in Do: %+v", bWaits)
	}
	aRuns, ok := roles[strconv.FormatInt(a, 10)+" runs the function of Once onceDeadlockConfig.once"]
	if !ok || len(aRuns.Stack) == 0 || !strings.HasSuffix(aRuns.Stack[0].Function, "TestOnceDeadlockThroughALockIsReportedWhenItCloses.func3") {
		t.Errorf("A running the Once's function, from its Do: %+v", aRuns)
	}
	if !strings.Contains(r.String(), "Goroutine "+strconv.FormatInt(a, 10)+" runs the function of Once onceDeadlockConfig.once:") {
		t.Errorf("text form:\n%s", r.String())
	}
	// A and B stay deadlocked, as they would with sync.Once.
}

// recursiveDoOnce is the Once of TestDoInsideDoIsReportedBeforeItBlocks.
var recursiveDoOnce debugmutex.Once

// Do called from inside its own function deadlocks in sync; lockscope
// reports it at once, on the goroutine itself before it blocks (not after
// the recursive grace, which a Mutex locked twice waits for: a Once's
// Mutex is only ever unlocked by the Do that locked it), with where the
// outer and the inner Do were called.
func TestDoInsideDoIsReportedBeforeItBlocks(t *testing.T) {
	const name = "debugmutex_test.recursiveDoOnce"
	abandon(name)
	var innerAt atomic.Int64
	type result struct {
		r       report.Report
		g       int64
		elapsed time.Duration
	}
	got := make(chan result, 1)
	unregister := inspect.OnReport(func(r report.Report) {
		if r.Kind == report.KindDeadlock && strings.Contains(r.Summary, name) {
			select {
			case got <- result{r, goid(), time.Duration(time.Now().UnixNano() - innerAt.Load())}:
			default:
			}
		}
	})
	defer unregister()
	ids := make(chan int64, 1)
	var outerLine, innerLine int
	var innerRan atomic.Bool
	go func() {
		ids <- goid()
		outerLine = line() + 1
		recursiveDoOnce.Do(func() {
			innerLine = line() + 2
			innerAt.Store(time.Now().UnixNano())
			recursiveDoOnce.Do(func() { innerRan.Store(true) })
		})
	}()
	id := <-ids
	var res result
	select {
	case res = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no report of Do inside Do within 10s")
	}
	r := res.r
	if res.g != id {
		t.Errorf("reported on goroutine %d, want %d itself, before it blocks", res.g, id)
	}
	if res.elapsed >= 100*time.Millisecond {
		t.Errorf("reported %v after the inner Do, want under 100ms", res.elapsed)
	}
	t.Logf("reported %v after the inner Do", res.elapsed)
	if want := "deadlock: goroutine " + strconv.FormatInt(id, 10) + " called Do of Once " + name + " from inside its own function (recursive Do)"; r.Summary != want {
		t.Errorf("summary %q, want %q", r.Summary, want)
	}
	if len(r.Locks) != 1 || r.Locks[0].Name != name || r.Locks[0].Type != "Once" {
		t.Errorf("locks %+v", r.Locks)
	}
	if len(r.Goroutines) != 2 {
		t.Fatalf("goroutines %+v, want the waiter and the holder", r.Goroutines)
	}
	w, h := r.Goroutines[0], r.Goroutines[1]
	if w.ID != id || w.Role != "waits for Once" || len(w.Stack) == 0 || w.Stack[0].Line != innerLine {
		t.Errorf("waiter %+v, want goroutine %d waiting at line %d", w, id, innerLine)
	}
	if h.ID != id || h.Role != "runs the function of Once" || len(h.Stack) == 0 || h.Stack[0].Line != outerLine {
		t.Errorf("holder %+v, want goroutine %d, from the Do at line %d", h, id, outerLine)
	}
	// And it deadlocks as sync's does: the goroutine waits on.
	eventually(t, "the goroutine blocked in its inner Do", func() bool { return blockedInDo()[id] == 2 })
	if innerRan.Load() {
		t.Error("the inner function ran")
	}
}

// recursiveValue is the OnceValue of TestOnceFuncCalledFromItsOwnFunctionIsReported.
var recursiveValue func() int

// A function OnceValue returned, called again from inside its f, is
// reported like Do inside Do, naming the variable that holds it.
func TestOnceFuncCalledFromItsOwnFunctionIsReported(t *testing.T) {
	const name = "debugmutex_test.recursiveValue"
	abandon(name)
	w := watchReports(t)
	innerLine := 0
	recursiveValue = debugmutex.OnceValue(func() int {
		innerLine = line() + 1
		return recursiveValue() + 1
	})
	go func() { recursiveValue() }()
	r := w.waitForLock(t, debugmutex.KindDeadlock, name, 10*time.Second)
	if want := " called the OnceFunc " + name + " from inside its own function (recursive call)"; !strings.Contains(r.Summary, want) {
		t.Errorf("summary %q lacks %q", r.Summary, want)
	}
	if len(r.Locks) != 1 || r.Locks[0].Type != "OnceFunc" {
		t.Errorf("locks %+v", r.Locks)
	}
	if len(r.Goroutines) == 0 || len(r.Goroutines[0].Stack) == 0 || r.Goroutines[0].Stack[0].Line != innerLine {
		t.Errorf("waiter %+v, want the call at line %d first", r.Goroutines, innerLine)
	}
}

// The declarations of TestOnceIsNamedByItsDeclarationAndItsWaitsAreContention.
type onceClient struct {
	initOnce debugmutex.Once
}

func (c *onceClient) init(f func()) { c.initOnce.Do(f) }

var (
	namingCfgOnce debugmutex.Once
	namingHook    func() // what namingValue's function does
	namingValue   = debugmutex.OnceValue(func() int { namingHook(); return 7 })
)

// A Once is named by its declaration as the caller of Do wrote it (a
// package variable, a field through a method's receiver), and a OnceFunc's
// by the variable that holds the function; a goroutine waiting in Do is
// waiting for that lock, and its wait is contention on it in the
// statistics the profiles are made of.
func TestOnceIsNamedByItsDeclarationAndItsWaitsAreContention(t *testing.T) {
	c := &onceClient{}
	for _, tc := range []struct {
		name, typ string
		call      func(f func()) // calls Do (f runs in the first call only)
	}{
		{"debugmutex_test.namingCfgOnce", "Once", func(f func()) { namingCfgOnce.Do(f) }},
		{"onceClient.initOnce", "Once", c.init},
		{"debugmutex_test.namingValue", "OnceFunc", func(f func()) {
			namingHook = f
			if v := namingValue(); v != 7 {
				t.Errorf("namingValue() = %d", v)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := lockStat(tc.name)
			release := make(chan struct{})
			started := make(chan struct{})
			firstDone := make(chan struct{})
			go func() {
				defer close(firstDone)
				tc.call(func() { close(started); <-release })
			}()
			<-started
			waiter := make(chan int64, 1)
			secondDone := make(chan struct{})
			go func() {
				defer close(secondDone)
				waiter <- goid()
				tc.call(func() { t.Error("the second call ran its function") })
			}()
			id := <-waiter
			var seen report.Waiting
			eventually(t, "the second caller waiting for "+tc.name, func() bool {
				for _, w := range inspect.Snapshot().Waiting {
					if w.Goroutine == id {
						seen = w
						return true
					}
				}
				return false
			})
			if seen.Lock.Name != tc.name || seen.Lock.Type != tc.typ {
				t.Errorf("waits for %s %s, want %s %s", seen.Lock.Type, seen.Lock.Name, tc.typ, tc.name)
			}
			close(release)
			<-firstDone
			<-secondDone
			after := lockStat(tc.name)
			if after.Type != tc.typ || after.Contentions-before.Contentions != 1 || after.WaitTime <= before.WaitTime {
				t.Errorf("statistics %+v (before: %+v), want one more contention on %s %s", after, before, tc.typ, tc.name)
			}
		})
	}
}

// lockStat returns the statistics of the lock named name.
func lockStat(name string) report.LockStat {
	for _, l := range inspect.LockStats() {
		if l.Lock == name {
			return l
		}
	}
	return report.LockStat{}
}

// longOnce is the Once of TestOnceWhoseFunctionRunsLongIsALongHold.
var longOnce debugmutex.Once

// A Do whose function runs past the hold threshold keeps every other call
// waiting as long: a long hold, which says where the function is stuck.
func TestOnceWhoseFunctionRunsLongIsALongHold(t *testing.T) {
	const name = "debugmutex_test.longOnce"
	w := watchReports(t)
	debugmutex.Configure(debugmutex.HoldThreshold(30 * time.Millisecond))
	defer debugmutex.Configure(debugmutex.HoldThreshold(30 * time.Second))
	stuck, done := make(chan struct{}), make(chan struct{})
	ids := make(chan int64, 1)
	go func() {
		defer close(done)
		longOnce.Do(func() {
			ids <- goid()
			<-stuck // the function is stuck on a channel
		})
	}()
	id := <-ids
	r := w.waitForLock(t, debugmutex.KindLongHold, name, 10*time.Second)
	close(stuck)
	<-done
	if !strings.Contains(r.Summary, "Once "+name+" has been running its function for ") ||
		!strings.Contains(r.Summary, "in goroutine "+strconv.FormatInt(id, 10)) {
		t.Errorf("summary %q", r.Summary)
	}
	if len(r.Goroutines) != 1 || r.Goroutines[0].ID != id || r.Goroutines[0].Role != "runs the function of Once" ||
		r.Goroutines[0].State != "chan receive" {
		t.Errorf("goroutines %+v", r.Goroutines)
	}
}

// onceOrder is the state of TestOnceTakesItsPlaceInTheLockOrder.
type onceOrder struct {
	mu   debugmutex.Mutex
	once debugmutex.Once
}

// A Once's function that takes a lock, and a caller of Do that holds that
// lock while it waits, are a lock-order inversion: with other timing, a
// deadlock. Reported though nothing deadlocked.
func TestOnceTakesItsPlaceInTheLockOrder(t *testing.T) {
	w := watchReports(t)
	o := &onceOrder{}
	tookLock, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		o.once.Do(func() {
			o.mu.Lock() // onceOrder.once -> onceOrder.mu
			o.mu.Unlock()
			close(tookLock)
			<-release
		})
	}()
	<-tookLock
	o.mu.Lock()
	me := goid()
	go func() { // lets the Once's function return once this goroutine waits in Do
		defer close(release)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			for _, w := range inspect.Snapshot().Waiting {
				if w.Goroutine == me && w.Lock.Name == "onceOrder.once" {
					return
				}
			}
		}
	}()
	o.once.Do(func() { t.Error("ran twice") }) // onceOrder.mu -> onceOrder.once, waiting
	o.mu.Unlock()
	<-firstDone
	r := w.waitFor(t, debugmutex.KindLockOrder, time.Second)
	if !strings.Contains(r.Summary, "onceOrder.mu") || !strings.Contains(r.Summary, "onceOrder.once") {
		t.Errorf("summary %q", r.Summary)
	}
	types := map[string]string{}
	for _, l := range r.Locks {
		types[l.Name] = l.Type
	}
	if types["onceOrder.once"] != "Once" {
		t.Errorf("locks %+v", r.Locks)
	}
}

// A Once used once allocates nothing beyond what a Mutex locked once does;
// one done costs nothing per Do; a local Once lives on the heap, as a
// local Mutex does (copied.go); and it is 72 bytes (64 on 32-bit).
func TestOnceAllocationsAndSize(t *testing.T) {
	f := func() {}
	freshMutex := func() { mu := new(debugmutex.Mutex); mu.Lock(); mu.Unlock() }
	freshOnce := func() { o := new(debugmutex.Once); o.Do(f) }
	freshMutex()
	freshOnce()
	m, o := testing.AllocsPerRun(200, freshMutex), testing.AllocsPerRun(200, freshOnce)
	t.Logf("a fresh Mutex locked once: %v allocations; a fresh Once done once: %v", m, o)
	if o > m {
		t.Errorf("a fresh Once done once costs %v allocations, a fresh Mutex locked once %v", o, m)
	}
	var done debugmutex.Once
	done.Do(f)
	if n := testing.AllocsPerRun(200, func() { done.Do(f) }); n != 0 {
		t.Errorf("Do of a done Once costs %v allocations, want 0", n)
	}
	// As a local Mutex: 1 (moved to the heap), plus what the goroutine id
	// costs where it is slow (-tags lockscope_slowgoid).
	localMutex := testing.AllocsPerRun(200, func() {
		var local debugmutex.Mutex
		local.Lock()
		local.Unlock()
	})
	if n := testing.AllocsPerRun(200, func() {
		var local debugmutex.Once
		local.Do(f)
	}); n != localMutex || n < 1 {
		t.Errorf("a local Once costs %v allocations, want a local Mutex's %v (at least 1: moved to the heap)", n, localMutex)
	}
	want := uintptr(72)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		want = 64
	}
	if s := unsafe.Sizeof(debugmutex.Once{}); s != want {
		t.Errorf("Once is %d bytes, want %d; update the documentation", s, want)
	}
}

// Do's fast path is inlined at its call sites, as sync's is.
func TestOnceDoIsInlinable(t *testing.T) {
	out, err := goCmd(t, ".", nil, "build", "-gcflags=-m", ".")
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	if !strings.Contains(out, "can inline (*Once).Do\n") {
		t.Errorf("(*Once).Do is not inlinable:\n%s", out)
	}
}

// go vet's copylocks flags a copied Once of this package, as it does
// sync's.
func TestVetCopylocksFlagsACopiedOnce(t *testing.T) {
	out, err := goCmd(t, program(t, "copyonce", true), nil, "vet", ".")
	if err == nil || !strings.Contains(out, "main.go:14:") || !strings.Contains(out, "passes lock by value") ||
		!strings.Contains(out, "debugmutex.Once") {
		t.Errorf("go vet did not flag the copied debugmutex.Once (err %v):\n%s", err, out)
	}
	t.Logf("%s", out)
}

// onceCopyBox is the struct TestOnceCopiedWhileItsFunctionRunsIsReported copies.
type onceCopyBox struct {
	once debugmutex.Once
}

// A Once copied (through a type parameter, where go vet cannot see) while
// its function runs is born locked: its Do blocks forever, as a copied
// sync.Once's does. lockscope reports the copy before that Do blocks.
func TestOnceCopiedWhileItsFunctionRunsIsReported(t *testing.T) {
	w := watchReports(t)
	orig := &onceCopyBox{}
	running, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		orig.once.Do(func() { close(running); <-release })
	}()
	<-running
	cp := copyOf(orig)
	go func() { cp.once.Do(func() { t.Error("the copy ran its function") }) }()
	r := w.waitFor(t, debugmutex.KindCopiedLock, 10*time.Second)
	abandon(r.Locks[0].Name)
	// The copy's Do waits forever: its lock is named by its site, and a
	// long-wait report on it (30 s on, in a later test on a slow machine)
	// is this test's too.
	for named := false; !named; runtime.Gosched() {
		for _, wt := range inspect.Snapshot().Waiting {
			if strings.HasSuffix(wt.Site.Function, "TestOnceCopiedWhileItsFunctionRunsIsReported.func2") {
				abandon(wt.Lock.Name)
				named = true
			}
		}
	}
	close(release)
	<-done
	if !strings.HasPrefix(r.Summary, "Do of Once ") || !strings.Contains(r.Summary, "nobody will unlock it") {
		t.Errorf("summary %q", r.Summary)
	}
	if r.Locks[0].Type != "Once" || len(r.Goroutines) == 0 || len(r.Goroutines[0].Stack) == 0 ||
		!strings.HasSuffix(r.Goroutines[0].Stack[0].Function, "TestOnceCopiedWhileItsFunctionRunsIsReported.func2") {
		t.Errorf("locks %+v, goroutines %+v", r.Locks, r.Goroutines)
	}
}
