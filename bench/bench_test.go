package bench

import (
	"io"
	"os"
	"runtime"
	"sync"
	"testing"

	deadlock "github.com/sasha-s/go-deadlock"

	"github.com/lockscope/lockscope/inspect"
)

// The benchmarks call Lock and Unlock on concrete types (no interface
// dispatch on the measured path) through these per-implementation loops.

func TestMain(m *testing.M) {
	// go-deadlock prints and exits on a lock held 30s by default; none is.
	deadlock.Opts.DeadlockTimeout = 0
	// Its TryLock-of-a-held-lock check would otherwise print and exit.
	deadlock.Opts.OnPotentialDeadlock = func() {}
	deadlock.Opts.LogBuf = io.Discard
	os.Exit(m.Run())
}

func forEach(b *testing.B, run func(b *testing.B, im impl)) {
	for _, im := range impls {
		if filter := os.Getenv("BENCH_IMPLS"); filter != "" && !contains(filter, im.name) {
			continue
		}
		b.Run("impl="+im.name, func(b *testing.B) { run(b, im) })
	}
}

func contains(list, name string) bool {
	for len(list) > 0 {
		i := 0
		for i < len(list) && list[i] != ',' {
			i++
		}
		if list[:i] == name {
			return true
		}
		if i == len(list) {
			break
		}
		list = list[i+1:]
	}
	return false
}

// BenchmarkUncontended: Lock+Unlock by one goroutine.
func BenchmarkUncontended(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		mu := im.newMu()
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
}

// BenchmarkDeepStack: the same, 40 frames deep.
func BenchmarkDeepStack(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		mu := im.newMu()
		b.ReportAllocs()
		deep(40, func() {
			for b.Loop() {
				mu.Lock()
				mu.Unlock()
			}
		})
	})
}

//go:noinline
func deep(n int, f func()) {
	if n == 0 {
		f()
		return
	}
	deep(n-1, f)
}

// BenchmarkHeldElsewhere: the same while other goroutines hold 1000 locks.
func BenchmarkHeldElsewhere(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		release := make(chan struct{})
		var ready, done sync.WaitGroup
		for g := 0; g < 10; g++ {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				var held []locker
				for i := 0; i < 100; i++ {
					l := im.newMu()
					l.Lock()
					held = append(held, l)
				}
				ready.Done()
				<-release
				for i := len(held) - 1; i >= 0; i-- {
					held[i].Unlock()
				}
			}()
		}
		ready.Wait()
		mu := im.newMu()
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
		b.StopTimer()
		close(release)
		done.Wait()
	})
}

// BenchmarkParallelDistinct: every goroutine locks its own mutex; a global
// lock inside the implementation shows up here as lost scaling.
func BenchmarkParallelDistinct(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		b.RunParallel(func(pb *testing.PB) {
			mu := im.newMu()
			for pb.Next() {
				mu.Lock()
				mu.Unlock()
			}
		})
	})
}

// BenchmarkContended: all goroutines on one mutex.
func BenchmarkContended(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		mu := im.newMu()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				mu.Unlock()
			}
		})
	})
}

// BenchmarkTryLockFail: TryLock of a held mutex.
func BenchmarkTryLockFail(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		mu := im.newMu()
		mu.Lock()
		b.ReportAllocs()
		for b.Loop() {
			if mu.TryLock() {
				b.Fatal("TryLock of a held lock succeeded")
			}
		}
		mu.Unlock()
	})
}

// BenchmarkRLock: RLock+RUnlock by one goroutine.
func BenchmarkRLock(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		rw := im.newRW()
		b.ReportAllocs()
		for b.Loop() {
			rw.RLock()
			rw.RUnlock()
		}
	})
}

// BenchmarkNested16: lock 16 mutexes in order, unlock them; ns/op is per
// lock (Lock+Unlock), so it compares with Uncontended.
func BenchmarkNested16(b *testing.B) {
	forEach(b, func(b *testing.B, im impl) {
		var mus [16]locker
		for i := range mus {
			mus[i] = im.newMu()
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, m := range mus {
				m.Lock()
			}
			for i := len(mus) - 1; i >= 0; i-- {
				mus[i].Unlock()
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/16, "ns/lock")
	})
}

// Keep the imports honest if impls change.
var (
	_ = runtime.NumCPU
	_ = inspect.Enabled
)
