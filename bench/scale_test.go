package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Service-scale benchmarks (issue 11): the debug layer with many waiters, on
// a lock's first use, for readers, and with the watchdog busy. They compare
// sync and lockscope only (go-deadlock is left out: at these sizes it would
// take minutes and is not what the floors are about); run.sh runs them once
// more in a process of its own with LOCKSCOPE=off, where impl=lockscope
// becomes impl=lockscope-off, and prints the floors as PASS/FAIL
// lines (go run ./floors). They are acceptance checks for the engine's
// rewrite: most of them fail on the first version, by design.
//
// Names start with BenchmarkScale so that run.sh can run them apart from the
// per-operation benchmarks (-bench/-skip '^BenchmarkScale').

// scaleForEach is forEach without go-deadlock.
func scaleForEach(b *testing.B, run func(b *testing.B, im impl)) {
	for _, im := range impls {
		if im.name == "go-deadlock" {
			continue
		}
		if filter := os.Getenv("BENCH_IMPLS"); filter != "" && !contains(filter, im.name) {
			continue
		}
		b.Run("impl="+im.name, func(b *testing.B) { run(b, im) })
	}
}

var scaleSink atomic.Int64

// spin is the critical section's own work: ~100 ns of arithmetic.
//
//go:noinline
func spin(x int64) int64 {
	for i := int64(0); i < 40; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// BenchmarkScaleManyWaiters: 10 locks shared by 100, 1,000 or 10,000
// goroutines, each doing Lock / work / Unlock on its lock until b.N
// operations have been done in all. The work yields (runtime.Gosched) while
// holding the lock, as a critical section that blocks or is preempted does, so
// that nearly every goroutine is waiting for a lock at any moment: this is
// the cost of a contended Lock as the number of waiters on *other* locks
// grows. ns/op and ops/s are per operation of all goroutines together.
//
// The goroutines are started once and reused by every run of the same
// sub-benchmark (see waiterPool): a fresh 10,000 per run would fill the first
// version's 64K goroutine table within a few runs, and later runs would
// measure goroutines it no longer tracks.
//
// Floor (issue 11): lockscope >= 0.5x the throughput of LOCKSCOPE=off at
// 1,000 and 10,000 goroutines.
func BenchmarkScaleManyWaiters(b *testing.B) {
	defer stopWaiterPool()
	for _, g := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("g=%d", g), func(b *testing.B) {
			scaleForEach(b, func(b *testing.B, im impl) {
				p := waiterPoolFor(im, g)
				r := &round{n: int64(b.N), start: make(chan struct{})}
				r.done.Add(g)
				for i := 0; i < g; i++ {
					p.rounds <- r
				}
				b.ResetTimer()
				close(r.start)
				r.done.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		})
	}
}

// waiterPool is BenchmarkScaleManyWaiters' goroutines for one
// implementation and size: they take each round from rounds.
type waiterPool struct {
	key     string
	rounds  chan *round
	exited  sync.WaitGroup
	guarded [10]int64
}

// round is one run's work: n operations in all.
type round struct {
	n     int64
	next  atomic.Int64
	start chan struct{}
	done  sync.WaitGroup
}

// curWaiterPool is the one pool alive: runs of one sub-benchmark (and its
// -count repetitions) follow each other, so it is replaced only when the
// sub-benchmark changes.
var curWaiterPool *waiterPool

func waiterPoolFor(im impl, g int) *waiterPool {
	key := fmt.Sprintf("%s/%d", im.name, g)
	if curWaiterPool != nil && curWaiterPool.key == key {
		return curWaiterPool
	}
	stopWaiterPool()
	p := &waiterPool{key: key, rounds: make(chan *round)}
	var locks [10]locker
	for i := range locks {
		locks[i] = im.newMu()
	}
	p.exited.Add(g)
	for i := 0; i < g; i++ {
		go func(k int) {
			defer p.exited.Done()
			mu := locks[k]
			for r := range p.rounds {
				<-r.start
				for r.next.Add(1) <= r.n {
					mu.Lock()
					p.guarded[k] = spin(p.guarded[k])
					runtime.Gosched()
					mu.Unlock()
				}
				r.done.Done()
			}
		}(i % len(locks))
	}
	curWaiterPool = p
	return p
}

func stopWaiterPool() {
	if p := curWaiterPool; p != nil {
		close(p.rounds)
		p.exited.Wait()
		scaleSink.Add(p.guarded[0])
		curWaiterPool = nil
	}
}

// BenchmarkScaleReadWaiters: 1,000 goroutines on one RWMutex, one operation
// in ten a write, each holding the lock across a runtime.Gosched, so that
// hundreds of readers are queued behind each writer. A reader's contended
// RLock asks whether a deadlock through it is possible, which once meant
// scanning every waiter of the lock under its waiter mutex: the cost of a
// read wait grew with the number of waiters. ns/op and ops/s are per
// operation of all goroutines together.
func BenchmarkScaleReadWaiters(b *testing.B) {
	const goroutines = 1000
	scaleForEach(b, func(b *testing.B, im impl) {
		rw := im.newRW()
		w := rw.(interface {
			Lock()
			Unlock()
		})
		var next atomic.Int64
		var guarded int64
		start := make(chan struct{})
		var ready, done sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				<-start
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					if i%10 == 0 {
						w.Lock()
						guarded = spin(guarded)
						runtime.Gosched()
						w.Unlock()
					} else {
						rw.RLock()
						_ = spin(i)
						runtime.Gosched()
						rw.RUnlock()
					}
				}
			}()
		}
		ready.Wait()
		b.ResetTimer()
		close(start)
		done.Wait()
		b.StopTimer()
		scaleSink.Add(guarded)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// BenchmarkScaleFirstUse: Lock+Unlock of a Mutex never locked before, one
// per iteration (as a service does with a lock in each new request or cache
// entry). The locks are allocated, one object each, while the timer is
// stopped, so allocs/op and B/op are the lock implementation's own.
//
// Floor (issue 11): lockscope <= 5x sync, and 0 allocs/op.
func BenchmarkScaleFirstUse(b *testing.B) {
	scaleForEach(b, func(b *testing.B, im impl) {
		switch im.name {
		case "sync":
			firstUse[sync.Mutex](b)
		case "lockscope":
			firstUse[debugmutex.Mutex](b)
		default:
			b.Fatalf("no first-use loop for %s", im.name)
		}
	})
}

func firstUse[T any, P interface {
	*T
	Lock()
	Unlock()
}](b *testing.B) {
	const batch = 4096
	fresh := make([]*T, 0, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(fresh) == 0 {
			b.StopTimer()
			fresh = fresh[:batch]
			for j := range fresh {
				fresh[j] = new(T)
			}
			b.StartTimer()
		}
		mu := P(fresh[len(fresh)-1])
		fresh[len(fresh)-1] = nil
		fresh = fresh[:len(fresh)-1]
		mu.Lock()
		mu.Unlock()
	}
}

// BenchmarkScaleReadHeavy: a cache (a map under an RWMutex) used by 4
// goroutines, 80% gets under RLock, 20% sets under Lock. ns/op and ops/s are
// per operation of all four together.
//
// Floor (issue 11): lockscope >= 0.8x sync's throughput. (RLock+RUnlock by
// one goroutine is BenchmarkRLock: floor <= 2.5x sync.)
func BenchmarkScaleReadHeavy(b *testing.B) {
	const goroutines = 4
	const keys = 1024
	scaleForEach(b, func(b *testing.B, im impl) {
		rw := im.newRW()
		w := rw.(interface {
			Lock()
			Unlock()
		})
		cache := make(map[int]int, keys)
		for k := 0; k < keys; k++ {
			cache[k] = k
		}
		start := make(chan struct{})
		var ready, done sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			ops := b.N / goroutines
			if g == 0 {
				ops += b.N % goroutines
			}
			ready.Add(1)
			done.Add(1)
			go func(seed uint64, ops int) {
				defer done.Done()
				x, sum := seed|1, 0
				ready.Done()
				<-start
				for i := 0; i < ops; i++ {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					k := int(x % keys)
					if i%5 == 4 {
						w.Lock()
						cache[k] = i
						w.Unlock()
					} else {
						rw.RLock()
						sum += cache[k]
						rw.RUnlock()
					}
				}
				scaleSink.Add(int64(sum))
			}(uint64(g)*0x9E3779B97F4A7C15, ops)
		}
		ready.Wait()
		b.ResetTimer()
		close(start)
		done.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// BenchmarkScaleWatchdog: an uncontended Lock+Unlock loop in a process with
// 10,000 parked goroutines (each has locked and unlocked a lock of its own
// once, as a service's idle connections have; started on first use and kept
// for the life of the process), without and with one lock
// held forever by a goroutine that has exited (a leaked lock, the first
// problem the watchdog reports). The hold threshold is 100ms
// (LOCKSCOPE_HOLD_THRESHOLD if set, else set here and restored after), so
// the watchdog finds the leak within the run; run.sh runs it with a long
// -benchtime so that it has to live with it for seconds.
//
// stw is the number of stop-the-world pauses other than the GC's
// (runtime/metrics /sched/pauses/total/other:seconds; runtime.Stack of all
// goroutines is one) during the timed loop; stw/s the same per second.
//
// Floors (issue 11): leaked=yes within 5% of leaked=no (ns/op); at most one
// goroutine dump per new problem, so stw <= 1 with the leaked lock (the run's
// only problem) and 0 without. Reports go nowhere while it runs (SetOutput);
// their number is logged.
func BenchmarkScaleWatchdog(b *testing.B) {
	restore := scaleHoldThreshold(100 * time.Millisecond)
	defer restore()
	// The leak's report would land in the middle of the benchmark's output
	// line; count reports instead.
	inspect.SetOutput(io.Discard)
	defer inspect.SetOutput(nil)
	var reports atomic.Int64
	defer inspect.OnReport(func(report.Report) { reports.Add(1) })()
	defer func() { b.Logf("reports made: %d", reports.Load()) }()
	for _, leaked := range []bool{false, true} {
		name := "leaked=no"
		if leaked {
			name = "leaked=yes"
		}
		b.Run(name, func(b *testing.B) {
			scaleForEach(b, func(b *testing.B, im impl) {
				parkGoroutines(10000)
				var leak locker
				if leaked {
					leak = im.newMu()
					exited := make(chan struct{})
					go func() {
						defer close(exited)
						leak.Lock() // and never Unlock: the goroutine exits holding it
					}()
					<-exited
				}
				mu := im.newMu()
				b.ReportAllocs()
				b.ResetTimer()
				before := otherPauses()
				for i := 0; i < b.N; i++ {
					mu.Lock()
					mu.Unlock()
				}
				pauses := otherPauses() - before
				b.StopTimer()
				b.ReportMetric(float64(pauses), "stw")
				b.ReportMetric(float64(pauses)/b.Elapsed().Seconds(), "stw/s")
				if leaked {
					leak.Unlock() // Go allows another goroutine to unlock it; the next run starts clean
				}
			})
		})
	}
}

// parkedOnce starts BenchmarkScaleWatchdog's parked goroutines, once per
// process: each locks and unlocks a lock of every implementation once and
// then waits for good (on a channel nobody closes), as a service's idle
// connections do. Starting them per run would churn through the first
// version's goroutine table and measure that instead.
var (
	parkedOnce sync.Once
	parkedWait = make(chan struct{})
)

func parkGoroutines(n int) {
	parkedOnce.Do(func() {
		var ready sync.WaitGroup
		ready.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				for _, im := range impls {
					if im.name == "go-deadlock" {
						continue
					}
					mu := im.newMu()
					mu.Lock()
					mu.Unlock()
				}
				ready.Done()
				<-parkedWait
			}()
		}
		ready.Wait()
	})
}

// otherPauses counts the stop-the-world pauses other than the GC's so far.
func otherPauses() uint64 {
	s := []metrics.Sample{{Name: "/sched/pauses/total/other:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return n
}

// scaleHoldThreshold sets the hold threshold to d unless
// LOCKSCOPE_HOLD_THRESHOLD is set, and returns a function that restores the
// default (30s).
func scaleHoldThreshold(d time.Duration) (restore func()) {
	if os.Getenv(inspect.EnvHoldThreshold) != "" {
		return func() {}
	}
	debugmutex.Configure(debugmutex.HoldThreshold(d))
	return func() { debugmutex.Configure(debugmutex.HoldThreshold(30 * time.Second)) }
}
