//go:build goexperiment.goroutineleakprofile || go1.27

package debugmutex_test

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Verdicts the runtime proves (issue 14), with Go's goroutine leak profile:
//
//	GOEXPERIMENT=goroutineleakprofile go test -run 'Proof|Proven' ./debugmutex
//	GOTOOLCHAIN=go1.27.3 go test -run 'Proof|Proven' ./debugmutex
//
// Each hang is a GoKer-style kernel (the blocking bugs of grpc, etcd,
// kubernetes, cockroach... reduced to their locking), made in a function
// that returns, so that nothing but the stuck goroutines can reach its
// locks and channels: that is what the runtime proves. Each runs in a child
// process of its own, at the default settings (no threshold lowered), and
// must be reported within 2 s of the hang.

// proofKernel is one hang: start makes it and returns the goroutine ids
// and lock names the report must name, and what the last goroutine of the
// chain is blocked in (as in a goroutine dump's header).
type proofKernel struct {
	name    string
	start   func(t *testing.T) (goids []int64, locks []string)
	blocked string // "[chan receive]", or "exited", or "" for a self-wait
}

var proofKernels = []proofKernel{
	{"chan-receive", kernelChanReceive, "[chan receive]"},
	{"chan-send", kernelChanSend, "[chan send]"},
	{"select", kernelSelect, "[select]"},
	{"waitgroup", kernelWaitGroup, "[sync.WaitGroup.Wait]"},
	{"cond", kernelCond, "[sync.Cond.Wait]"},
	{"lock-chain", kernelLockChain, "[chan receive]"},
	{"once", kernelOnce, "[chan receive]"},
	{"holder-exited", kernelHolderExited, "exited"},
	{"double-lock", kernelDoubleLock, ""},
	{"double-lock-rw", kernelDoubleLockRW, ""},
}

func TestProvenHangsReportedWithinTwoSeconds(t *testing.T) {
	const name = "TestProvenHangsReportedWithinTwoSeconds"
	if !debugmutex.ProofAvailable() {
		t.Fatal("no goroutine leak profile in this build: this test needs GOEXPERIMENT=goroutineleakprofile or Go 1.27")
	}
	if inReexec(name) {
		provenKernelChild(t, os.Getenv("LOCKSCOPE_TEST_KERNEL"))
		return
	}
	for _, k := range proofKernels {
		t.Run(k.name, func(t *testing.T) {
			out, err := reexecTest(t, name, "LOCKSCOPE_TEST_KERNEL="+k.name)
			reexecLog(t, out)
			if err != nil {
				t.Fatalf("child process failed (%v):\n%s", err, out)
			}
			if m := regexp.MustCompile(`REPORTED after=(\S+)`).FindStringSubmatch(out); m == nil {
				t.Errorf("child did not say when it was reported:\n%s", out)
			}
		})
	}
}

// provenKernelChild runs kernel name and checks its report.
func provenKernelChild(t *testing.T, name string) {
	var k *proofKernel
	for i := range proofKernels {
		if proofKernels[i].name == name {
			k = &proofKernels[i]
		}
	}
	if k == nil {
		t.Fatalf("no kernel %q", name)
	}
	// The defaults: TestMain shortens the grace, which the proof ignores.
	debugmutex.Configure(debugmutex.RecursiveGrace(time.Second))
	got := make(chan debugmutex.Report, 16)
	defer debugmutex.OnReport(func(r debugmutex.Report) { got <- r })()
	start := time.Now()
	goids, locks := k.start(t)
	var r debugmutex.Report
	for {
		select {
		case r = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("no report within 10s of the hang")
		}
		// The first goroutine is the chain's first waiter (its holders'
		// own waits may be reported first, each on its own).
		if r.Kind == debugmutex.KindDeadlock && regexp.MustCompile(fmt.Sprintf(`^deadlock: goroutine %d\b`, goids[0])).MatchString(r.Summary) {
			break
		}
		t.Logf("(also reported: %s)", r.Summary)
	}
	after := time.Since(start)
	t.Logf("REPORTED after=%v: %s", after.Round(time.Millisecond), r.Summary)
	t.Logf("report:\n%s", r.String())
	if after > 2*time.Second {
		t.Errorf("reported %v after the hang, want within 2s", after)
	}
	if !strings.Contains(r.Summary, "the runtime proves") {
		t.Errorf("summary %q does not say the runtime proved it", r.Summary)
	}
	for _, id := range goids {
		if !regexp.MustCompile(fmt.Sprintf(`goroutine %d\b`, id)).MatchString(r.Summary) {
			t.Errorf("summary %q does not name goroutine %d", r.Summary, id)
		}
	}
	for _, l := range locks {
		if !strings.Contains(r.Summary, l) {
			t.Errorf("summary %q does not name lock %s", r.Summary, l)
		}
	}
	switch k.blocked {
	case "":
		if !strings.Contains(r.Summary, "which it holds itself") {
			t.Errorf("summary %q is not a self-wait", r.Summary)
		}
	case "exited":
		if !strings.Contains(r.Summary, "which has exited without unlocking it") {
			t.Errorf("summary %q does not say the holder exited", r.Summary)
		}
	default:
		if !strings.Contains(r.Summary, "blocked forever "+k.blocked+" at ") || !strings.Contains(r.Summary, "leakproof_test.go:") {
			t.Errorf("summary %q does not say the holder is blocked forever %s at a line of this file", r.Summary, k.blocked)
		}
		// The last holder's current stack, from the runtime's dump.
		last := r.Goroutines[len(r.Goroutines)-1]
		holds := last.Role == "holds" || last.Role == "runs the function of Once"
		if !holds || len(last.Current) == 0 || !strings.Contains(last.State, "(leaked)") {
			t.Errorf("last goroutine of the report: %+v, want the holder with its current stack and a leaked state", last)
		}
	}
	// Every waiter's wait stack and every holder's acquire stack is there.
	for _, g := range r.Goroutines {
		if len(g.Stack) == 0 && !g.Exited {
			t.Errorf("goroutine %d (%s) has no stack in the report", g.ID, g.Role)
		}
	}
}

// kernelGo starts f in a goroutine and returns its id once it has run up
// to its first step (f calls step with its id).
func kernelGo(f func(step func())) int64 {
	ids := make(chan int64, 1)
	go f(func() { ids <- goid() })
	return <-ids
}

// kernelAwait waits until goroutine id is parked in fn (a function name
// fragment of its stack's innermost frames).
func kernelAwait(t *testing.T, id int64, fn string) {
	t.Helper()
	head := fmt.Sprintf("goroutine %d [", id)
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n := runtimeStack(buf)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.HasPrefix(g, head) && strings.Contains(g, fn) && !strings.Contains(g, "[running") && !strings.Contains(g, "[runnable") {
				return
			}
		}
	}
	t.Fatalf("goroutine %d did not park in %s within 5s", id, fn)
}

type kConn struct {
	mu debugmutex.Mutex
	ch chan int
}

// kernelChanReceive: grpc#1460 and friends: a lock held across a channel
// receive; the sender needs the lock first.
//
//go:noinline
func kernelChanReceive(t *testing.T) ([]int64, []string) {
	c := &kConn{ch: make(chan int)}
	debugmutex.SetName(&c.mu, "kConn.mu")
	h := kernelGo(func(step func()) {
		c.mu.Lock()
		step()
		<-c.ch // the lock is held across the receive
		c.mu.Unlock()
	})
	w := kernelGo(func(step func()) {
		step()
		c.mu.Lock()
		c.ch <- 1
		c.mu.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h}, []string{"kConn.mu"}
}

// kernelChanSend: a lock held across a send nobody will receive; the
// receiver needs the lock first.
//
//go:noinline
func kernelChanSend(t *testing.T) ([]int64, []string) {
	c := &kConn{ch: make(chan int)}
	debugmutex.SetName(&c.mu, "kConn.mu")
	h := kernelGo(func(step func()) {
		c.mu.Lock()
		step()
		c.ch <- 1
		c.mu.Unlock()
	})
	w := kernelGo(func(step func()) {
		step()
		c.mu.Lock()
		<-c.ch
		c.mu.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h}, []string{"kConn.mu"}
}

type kOnceCache struct {
	loadOnce debugmutex.Once
	ch       chan int
}

// kernelOnce: a Once whose function waits for a send that never comes;
// another call of Do waits for it.
//
//go:noinline
func kernelOnce(t *testing.T) ([]int64, []string) {
	c := &kOnceCache{ch: make(chan int)}
	h := kernelGo(func(step func()) {
		c.loadOnce.Do(func() {
			step()
			<-c.ch // nobody sends
		})
	})
	w := kernelGo(func(step func()) {
		step()
		c.loadOnce.Do(func() {})
	})
	kernelAwait(t, w, "doSlow")
	return []int64{w, h}, []string{"Once kOnceCache.loadOnce, whose function goroutine"}
}

// kernelSelect: the holder selects on two channels, the closer needs the
// lock first.
//
//go:noinline
func kernelSelect(t *testing.T) ([]int64, []string) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "kSelect.mu")
	stop, tick := make(chan struct{}), make(chan int)
	h := kernelGo(func(step func()) {
		mu.Lock()
		step()
		select {
		case <-stop:
		case <-tick:
		}
		mu.Unlock()
	})
	w := kernelGo(func(step func()) {
		step()
		mu.Lock()
		close(stop)
		mu.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h}, []string{"kSelect.mu"}
}

// kernelWaitGroup: etcd#6873-like: the lock is held across wg.Wait, and
// the worker needs it before Done.
//
//go:noinline
func kernelWaitGroup(t *testing.T) ([]int64, []string) {
	var mu debugmutex.Mutex
	var wg sync.WaitGroup
	debugmutex.SetName(&mu, "kWaitGroup.mu")
	wg.Add(1)
	h := kernelGo(func(step func()) {
		mu.Lock()
		step()
		wg.Wait()
		mu.Unlock()
	})
	w := kernelGo(func(step func()) {
		step()
		mu.Lock()
		wg.Done()
		mu.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h}, []string{"kWaitGroup.mu"}
}

// kernelCond: the holder of mu waits on a Cond of another lock; the
// signaller needs mu first.
//
//go:noinline
func kernelCond(t *testing.T) ([]int64, []string) {
	var mu debugmutex.Mutex
	var cmu sync.Mutex
	cond := sync.NewCond(&cmu)
	ready := false
	debugmutex.SetName(&mu, "kCond.mu")
	h := kernelGo(func(step func()) {
		mu.Lock()
		cmu.Lock()
		step()
		for !ready {
			cond.Wait()
		}
		cmu.Unlock()
		mu.Unlock()
	})
	w := kernelGo(func(step func()) {
		step()
		mu.Lock()
		cmu.Lock()
		ready = true
		cond.Signal()
		cmu.Unlock()
		mu.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h}, []string{"kCond.mu"}
}

// kernelLockChain: a waiter of A, A's holder waiting for B, B's holder
// blocked receiving: the whole chain is reported.
//
//go:noinline
func kernelLockChain(t *testing.T) ([]int64, []string) {
	var a, b debugmutex.Mutex
	debugmutex.SetName(&a, "kChain.a")
	debugmutex.SetName(&b, "kChain.b")
	ch := make(chan int)
	h2 := kernelGo(func(step func()) {
		b.Lock()
		step()
		<-ch
		b.Unlock()
	})
	h1 := kernelGo(func(step func()) {
		a.Lock()
		step()
		b.Lock()
		b.Unlock()
		a.Unlock()
	})
	kernelAwait(t, h1, "Lock")
	w := kernelGo(func(step func()) {
		step()
		a.Lock()
		ch <- 1
		a.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h1, h2}, []string{"kChain.a", "kChain.b"}
}

// kernelHolderExited: the holder returns without unlocking (a missing
// defer on an error path); the waiter waits for ever.
//
//go:noinline
func kernelHolderExited(t *testing.T) ([]int64, []string) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "kExited.mu")
	exited := make(chan struct{})
	h := kernelGo(func(step func()) {
		defer close(exited)
		mu.Lock()
		step()
	})
	<-exited
	w := kernelGo(func(step func()) {
		step()
		mu.Lock()
		mu.Unlock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w, h}, []string{"kExited.mu"}
}

// kernelDoubleLock: moby#4951-like recursive locking.
//
//go:noinline
func kernelDoubleLock(t *testing.T) ([]int64, []string) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "kDouble.mu")
	w := kernelGo(func(step func()) {
		mu.Lock()
		step()
		mu.Lock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w}, []string{"kDouble.mu"}
}

// kernelDoubleLockRW: Lock of an RWMutex the goroutine read-holds.
//
//go:noinline
func kernelDoubleLockRW(t *testing.T) ([]int64, []string) {
	var rw debugmutex.RWMutex
	debugmutex.SetName(&rw, "kDoubleRW.rw")
	w := kernelGo(func(step func()) {
		rw.RLock()
		step()
		rw.Lock()
	})
	kernelAwait(t, w, "Lock")
	return []int64{w}, []string{"kDoubleRW.rw"}
}

// The proof never reports what something runnable can still undo, however
// long it takes: a timer's function that unlocks, a baton's worker that
// sleeps, a slow holder. Each waits longer than the recursive grace's
// default, with the proof consulted meanwhile.

func TestProofSilentOnSelfWaitUnlockedByTimer(t *testing.T) {
	proofSilent(t, "proof.timer.mu", func(mu *debugmutex.Mutex, at int64) {
		mu.Lock()
		// A rate limiter's release, from a timer (re-armed until the proof
		// has been asked about the wait).
		var release func()
		release = func() {
			if !proofConsultedSince(at) {
				time.AfterFunc(100*time.Millisecond, release)
				return
			}
			mu.Unlock()
		}
		time.AfterFunc(1500*time.Millisecond, release)
		mu.Lock()
		mu.Unlock()
	})
}

func TestProofSilentOnBatonHandedToWorker(t *testing.T) {
	proofSilent(t, "proof.baton.mu", func(mu *debugmutex.Mutex, at int64) {
		mu.Lock()
		start := make(chan struct{})
		go func() { // the worker: waits for its go-ahead, then unlocks
			<-start
			mu.Unlock()
		}()
		go func() { // whoever gives the go-ahead is busy for a while
			busyUntilConsulted(at)
			close(start)
		}()
		mu.Lock()
		mu.Unlock()
	})
}

func TestProofSilentOnSlowHolder(t *testing.T) {
	proofSilent(t, "proof.slow.mu", func(mu *debugmutex.Mutex, at int64) {
		locked := make(chan struct{})
		go func() {
			mu.Lock()
			close(locked)
			busyUntilConsulted(at)
			mu.Unlock()
		}()
		<-locked
		mu.Lock()
		mu.Unlock()
	})
}

// proofSilent runs f with a fresh lock called name in a goroutine of its
// own and fails if anything is reported on that lock, or if the proof was
// not consulted while f waited.
func proofSilent(t *testing.T, name string, f func(mu *debugmutex.Mutex, at int64)) {
	if !debugmutex.ProofAvailable() {
		t.Fatal("no goroutine leak profile in this build")
	}
	t.Parallel()
	var mu sync.Mutex
	var bad []string
	defer debugmutex.OnReport(func(r debugmutex.Report) {
		if strings.Contains(r.Summary, name) {
			mu.Lock()
			bad = append(bad, r.Summary)
			mu.Unlock()
		}
	})()
	before := debugmutex.ProofConsultations()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l := new(debugmutex.Mutex)
		debugmutex.SetName(l, name)
		f(l, before)
	}()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		t.Fatal("the lock was never unlocked")
	}
	if !proofConsultedSince(before) {
		t.Errorf("the proof was not consulted during the wait")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range bad {
		t.Errorf("reported, though the lock was unlocked in the end: %s", s)
	}
}

// proofConsultedSince reports whether the proof has been asked for since
// the count was before.
func proofConsultedSince(before int64) bool { return debugmutex.ProofConsultations() > before }

// busyUntilConsulted is a goroutine busy for 1.5s (asleep: runnable, to
// the runtime), and then until the proof has been asked about the wait it
// keeps going (other tests' consultations may have used up the rate).
func busyUntilConsulted(before int64) {
	time.Sleep(1500 * time.Millisecond)
	for i := 0; i < 300 && !proofConsultedSince(before); i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// Waits that end within the delay never ask for the proof.
func TestProofNotConsultedForShortWaits(t *testing.T) {
	const name = "TestProofNotConsultedForShortWaits"
	if inReexec(name) {
		before := debugmutex.ProofConsultations()
		var mu debugmutex.Mutex
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 2000; i++ {
					mu.Lock()
					if i%500 == 0 {
						time.Sleep(20 * time.Millisecond) // waits of up to ~60ms
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		debugmutex.WatchdogNow()
		if n := debugmutex.ProofConsultations() - before; n != 0 {
			t.Errorf("%d consultations for waits shorter than the delay, want 0", n)
		}
		return
	}
	out, err := reexecTest(t, name)
	reexecLog(t, out)
	if err != nil {
		t.Fatalf("child failed (%v):\n%s", err, out)
	}
}

func runtimeStack(buf []byte) int { return runtime.Stack(buf, true) }
