package debugmutex_test

import (
	"sync"
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
