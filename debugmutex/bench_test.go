package debugmutex_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lockscope/lockscope/debugmutex"
)

func BenchmarkUncontended(b *testing.B) {
	b.Run("sync", func(b *testing.B) {
		var mu sync.Mutex
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lockscope", func(b *testing.B) {
		var mu debugmutex.Mutex
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
}

// BenchmarkRLock: RLock+RUnlock by one goroutine, direct calls.
func BenchmarkRLock(b *testing.B) {
	b.Run("sync", func(b *testing.B) {
		var rw sync.RWMutex
		for b.Loop() {
			rw.RLock()
			rw.RUnlock()
		}
	})
	b.Run("lockscope", func(b *testing.B) {
		var rw debugmutex.RWMutex
		for b.Loop() {
			rw.RLock()
			rw.RUnlock()
		}
	})
}

// BenchmarkFirstUse: Lock+Unlock of a Mutex never locked before (as a
// service does with a lock in each new request or cache entry). The locks
// are allocated while the timer is stopped: allocs/op are the lock's own.
func BenchmarkFirstUse(b *testing.B) {
	b.Run("sync", func(b *testing.B) { firstUse[sync.Mutex](b) })
	b.Run("lockscope", func(b *testing.B) { firstUse[debugmutex.Mutex](b) })
}

func firstUse[T any, P interface {
	*T
	Lock()
	Unlock()
}](b *testing.B) {
	const batch = 4096
	fresh := make([]T, batch)
	next := batch
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if next == batch {
			b.StopTimer()
			fresh, next = make([]T, batch), 0
			b.StartTimer()
		}
		mu := P(&fresh[next])
		next++
		mu.Lock()
		mu.Unlock()
	}
}

// BenchmarkReadHeavy: a map under an RWMutex used by 4 goroutines, 80%
// gets under RLock, 20% sets under Lock (as bench's BenchmarkScaleReadHeavy,
// with direct calls).
func BenchmarkReadHeavy(b *testing.B) {
	b.Run("sync", func(b *testing.B) { readHeavy[sync.RWMutex](b) })
	b.Run("lockscope", func(b *testing.B) { readHeavy[debugmutex.RWMutex](b) })
}

func readHeavy[T any, P interface {
	*T
	Lock()
	Unlock()
	RLock()
	RUnlock()
}](b *testing.B) {
	const goroutines, keys = 4, 1024
	rw := P(new(T))
	cache := make(map[int]int, keys)
	for k := range keys {
		cache[k] = k
	}
	var sink atomic.Int64
	b.SetParallelism(goroutines / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		x, sum, i := uint64(sink.Add(1))*0x9E3779B97F4A7C15|1, 0, 0
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			k := int(x % keys)
			if i++; i%5 == 0 {
				rw.Lock()
				cache[k] = i
				rw.Unlock()
			} else {
				rw.RLock()
				sum += cache[k]
				rw.RUnlock()
			}
		}
		sink.Add(int64(sum))
	})
}
