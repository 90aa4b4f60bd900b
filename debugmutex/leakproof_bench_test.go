//go:build goexperiment.goroutineleakprofile || go1.27

package debugmutex_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/lockscope/lockscope/debugmutex"
)

// The runtime's proof costs nothing on paths that never wait long: a
// contended lock whose waits end within the delay is as fast with the
// proof available as with it off, and no consultation is made.
//
//	GOEXPERIMENT=goroutineleakprofile go test -run '^$' -bench 'Proof' ./debugmutex
func BenchmarkProofContendedShortWaits(b *testing.B) {
	for _, mode := range []struct {
		name string
		off  bool
	}{{"proof=on", false}, {"proof=off", true}} {
		b.Run(mode.name, func(b *testing.B) {
			debugmutex.SetProofDisabled(mode.off)
			defer debugmutex.SetProofDisabled(false)
			var mu debugmutex.Mutex
			n := 0
			before := debugmutex.ProofConsultations()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
			debugmutex.WatchdogNow()
			b.ReportMetric(float64(debugmutex.ProofConsultations()-before), "consultations")
		})
	}
}

// One consultation with 10,000 goroutines alive, parked on a channel,
// holding nothing: the leak-detecting collection alone (no new leak: the
// common case of a slow wait), and with the goroutine dump that names the
// leaked goroutines (taken when the runtime finds new ones).
func BenchmarkProofConsultation10kGoroutines(b *testing.B) {
	const n = 10_000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-stop
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	alive := runtime.NumGoroutine()
	for _, dump := range []bool{false, true} {
		name := "collection"
		if dump {
			name = "collection+dump"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if debugmutex.ConsultProofNow(dump) < 0 {
					b.Fatal("no proof in this build")
				}
			}
			b.ReportMetric(float64(alive), "goroutines")
		})
	}
}
