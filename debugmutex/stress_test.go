package debugmutex_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// The engine under load, in correct code: many goroutines over many locks,
// Mutex and RWMutex, Lock, RLock, TryLock, Cond and hand-offs, always in a
// consistent order (by index). Nothing may be reported, mutual exclusion
// must hold (checked by counters the locks protect), and the heap must stay
// flat.
//
// Sizes: LOCKSCOPE_STRESS="goroutines,locks,duration" (e.g. "10000,1000,60s";
// .ci/run runs that and a 1000,100 version under -race). Without it, a
// shorter run of the same code.
func TestStressConsistentOrderIsSilentAndExclusive(t *testing.T) {
	gs, ls, dur := 2000, 200, 3*time.Second
	if race {
		gs, ls, dur = 500, 50, 2*time.Second
	}
	if v := os.Getenv("LOCKSCOPE_STRESS"); v != "" {
		f := strings.Split(v, ",")
		if len(f) != 3 {
			t.Fatalf("LOCKSCOPE_STRESS=%q: want goroutines,locks,duration", v)
		}
		var err1, err2, err3 error
		gs, err1 = strconv.Atoi(f[0])
		ls, err2 = strconv.Atoi(f[1])
		dur, err3 = time.ParseDuration(f[2])
		if err1 != nil || err2 != nil || err3 != nil || gs < 2 || ls < 4 {
			t.Fatalf("LOCKSCOPE_STRESS=%q: want goroutines,locks,duration", v)
		}
	}
	t.Logf("%d goroutines x %d locks for %v", gs, ls, dur)
	w := watchReports(t)

	type guarded struct {
		mu    debugmutex.Mutex
		rw    debugmutex.RWMutex
		owner atomic.Int64 // who holds mu, checked inside
		rw1   atomic.Int64 // who holds rw for writing
		rd    atomic.Int32 // readers of rw inside
		n     int64        // protected by mu / rw (writers)
	}
	locks := make([]*guarded, ls)
	for i := range locks {
		locks[i] = new(guarded)
	}
	var violations atomic.Int64
	enterW := func(l *guarded, me int64) {
		if !l.owner.CompareAndSwap(0, me) {
			violations.Add(1)
		}
		l.n++
	}
	exitW := func(l *guarded, me int64) {
		if !l.owner.CompareAndSwap(me, 0) {
			violations.Add(1)
		}
	}
	enterR := func(l *guarded) {
		l.rd.Add(1)
		if l.rw1.Load() != 0 {
			violations.Add(1)
		}
	}
	exitR := func(l *guarded) { l.rd.Add(-1) }

	// Hand-offs: a goroutine locks and a helper unlocks.
	handoff := make(chan func(), 64)
	var helpers sync.WaitGroup
	for i := 0; i < 4; i++ {
		helpers.Add(1)
		go func() {
			defer helpers.Done()
			for f := range handoff {
				f()
			}
		}()
	}
	// A Cond over lock 0's Mutex: waiters are woken by a broadcaster.
	cond := debugmutex.NewCond(&locks[0].mu)
	stop := make(chan struct{})
	var condDone sync.WaitGroup
	condDone.Add(1)
	go func() {
		defer condDone.Done()
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				cond.L.Lock()
				cond.Broadcast()
				cond.L.Unlock()
				return
			case <-tk.C:
				cond.L.Lock()
				cond.Broadcast()
				cond.L.Unlock()
			}
		}
	}()

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var ops atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(dur)
	var stopped atomic.Bool
	for g := 0; g < gs; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			me := int64(seed) + 1
			x := seed*0x9E3779B97F4A7C15 + 1
			rnd := func(n int) int {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				return int(x % uint64(n))
			}
			for !stopped.Load() {
				// Nearby pairs, in index order: many goroutines share each
				// lock-order edge, as in a program (random pairs of 1,000
				// locks would make half a million edges: a test of the
				// graph's bound, not of the engine under load).
				i := rnd(ls)
				j := min(i+rnd(8), ls-1)
				a, b := locks[i], locks[j]
				switch op := rnd(10); {
				case op < 4: // nested writes, in index order
					a.mu.Lock()
					enterW(a, me)
					if i != j {
						b.mu.Lock()
						enterW(b, me)
						exitW(b, me)
						b.mu.Unlock()
					}
					exitW(a, me)
					a.mu.Unlock()
				case op < 6: // reads under a write, in index order
					a.mu.Lock()
					enterW(a, me)
					b.rw.RLock()
					enterR(b)
					exitR(b)
					b.rw.RUnlock()
					exitW(a, me)
					a.mu.Unlock()
				case op < 7: // RWMutex write
					a.rw.Lock()
					if !a.rw1.CompareAndSwap(0, me) || a.rd.Load() != 0 {
						violations.Add(1)
					}
					a.rw1.Store(0)
					a.rw.Unlock()
				case op < 8: // TryLock in the reverse order: backs off, cannot deadlock
					b.mu.Lock()
					enterW(b, me)
					if i != j && a.mu.TryLock() {
						enterW(a, me)
						exitW(a, me)
						a.mu.Unlock()
					}
					exitW(b, me)
					b.mu.Unlock()
				case op < 9: // hand-off: locked here, unlocked by a helper
					a.mu.Lock()
					enterW(a, me)
					exitW(a, me)
					done := make(chan struct{})
					handoff <- func() { a.mu.Unlock(); close(done) }
					<-done
				default: // Cond wait on lock 0, or a read hold handed off
					if rnd(8) == 0 {
						l := locks[0]
						l.mu.Lock()
						enterW(l, me)
						exitW(l, me)
						if !stopped.Load() {
							cond.Wait()
						}
						enterW(l, me)
						exitW(l, me)
						l.mu.Unlock()
					} else {
						a.rw.RLock()
						enterR(a)
						exitR(a)
						done := make(chan struct{})
						handoff <- func() { a.rw.RUnlock(); close(done) }
						<-done
					}
				}
				ops.Add(1)
			}
		}(uint64(g))
	}
	time.Sleep(dur / 4) // workload: let the heap reach its working size
	h1 := heap()
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // workload: the run lasts dur
	}
	h2 := heap()
	stopped.Store(true)
	wg.Wait() // the broadcaster keeps waking Cond waiters meanwhile
	close(stop)
	condDone.Wait()
	close(handoff)
	helpers.Wait()

	t.Logf("%d operations; heap %d KiB at a quarter, %d KiB at the end", ops.Load(), h1>>10, h2>>10)
	if v := violations.Load(); v != 0 {
		t.Errorf("%d mutual-exclusion violations", v)
	}
	if ops.Load() < int64(gs) {
		t.Errorf("only %d operations by %d goroutines", ops.Load(), gs)
	}
	// Flat: the heap at the end is within 16 MiB plus 10% of its working size.
	if h2 > h1+16<<20+h1/10 {
		t.Errorf("heap grew from %d KiB to %d KiB", h1>>10, h2>>10)
	}
	var total int64
	for _, l := range locks {
		total += l.n
	}
	if total == 0 {
		t.Error("no protected counter moved")
	}
	if got := w.unexpected(); len(got) != 0 {
		for _, r := range got[:min(3, len(got))] {
			t.Errorf("report in correct code:\n%s", r.String())
		}
		t.Fatalf("%d reports", len(got))
	}
}
