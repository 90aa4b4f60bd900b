package debugmutex

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal"
)

// The walk of a contended Lock through the layers. The engine's packages
// import downward only (internal's test); this checks that the calls do
// too, on the real stacks of contended acquisitions: in every CPU profile
// sample, lockscope's frames, read from the lock method down, are in the
// face (this package), then the engine's layers in decreasing order, each
// entered once. A call back up (a callback from a lower layer into a higher
// one) or a return to a layer already left would break it.

// houseLayer returns the layer of a function: the face above the engine's
// layers, report at the bottom, -2 for code not lockscope's (or tests).
func houseLayer(fn, file string) int {
	const module = "github.com/lockscope/lockscope/"
	if strings.HasSuffix(file, "_test.go") {
		return -2
	}
	switch {
	case strings.HasPrefix(fn, module+"debugmutex."):
		return len(internal.Layers)
	case strings.HasPrefix(fn, module+"report."):
		return -1
	case strings.HasPrefix(fn, module+"internal/"):
		rest := strings.TrimPrefix(fn, module+"internal/")
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			return slices.Index(internal.Layers, rest[:i])
		}
	}
	return -2
}

// lockMethods prefixes the lock methods' frames.
const lockMethods = "github.com/lockscope/lockscope/debugmutex.(*Mutex)."

func TestContendedLockWalksDownTheLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("a CPU profile of a contended workload for a second")
	}
	walks, layersSeen := 0, map[int]bool{}
	for round := 0; round < 8 && walks < 30; round++ {
		p := contendedProfile(t)
		for _, s := range p.Sample {
			var frames []string // outermost first, from the lock method in
			var layers []int
			inLock := false
			for i := len(s.Location) - 1; i >= 0; i-- {
				loc := s.Location[i]
				for j := len(loc.Line) - 1; j >= 0; j-- {
					ln := loc.Line[j]
					// Only the walk of a lock call: other samples (the
					// watchdog's timer, which walks the records with a
					// callback of its own) are not this test's.
					inLock = inLock || strings.HasPrefix(ln.Function.Name, lockMethods)
					if !inLock {
						continue
					}
					if l := houseLayer(ln.Function.Name, ln.Function.Filename); l != -2 {
						frames = append(frames, fmt.Sprintf("%s (layer %d)", ln.Function.Name, l))
						layers = append(layers, l)
					}
				}
			}
			if len(layers) < 2 {
				continue
			}
			walks++
			for i := 1; i < len(layers); i++ {
				layersSeen[layers[i]] = true
				if layers[i] > layers[i-1] {
					t.Errorf("a call goes back up the layers:\n\t%s", strings.Join(frames, "\n\t"))
					break
				}
			}
		}
	}
	// Under -race and load, few samples land inside lockscope: the check
	// needs some to mean anything, not many.
	if walks < 5 {
		t.Fatalf("only %d samples inside a lock call in 8 rounds; want at least 5", walks)
	}
	t.Logf("%d samples inside lockscope; layers below the face seen: %v", walks, layersSeen)
}

// contendedProfile is a CPU profile of a second of four goroutines that each
// hold a lock of their own while they contend for a shared one (so the wait
// checks the lock order and searches the wait-for graph).
func contendedProfile(t *testing.T) *profile.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("CPU profiling unavailable: %v", err) // another profile is running (go test -cpuprofile)
	}
	var shared Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var own Mutex
			for {
				select {
				case <-stop:
					return
				default:
				}
				own.Lock()
				shared.Lock()
				shared.Unlock()
				own.Unlock()
			}
		})
	}
	time.Sleep(time.Second) // the length of the profile, not synchronisation
	close(stop)
	wg.Wait()
	pprof.StopCPUProfile()
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
