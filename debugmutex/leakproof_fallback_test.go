package debugmutex_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Where the runtime's proof is unavailable (Go 1.26 without
// GOEXPERIMENT=goroutineleakprofile; or turned off, as here, to test it
// under any toolchain), the thresholds and the recursive grace decide, as
// before issue 14, and lockscope says once, at the first decision, how to
// get the proof.
func TestFallbackWithoutProofUsesThresholdsAndHintsOnce(t *testing.T) {
	const name = "TestFallbackWithoutProofUsesThresholdsAndHintsOnce"
	if inReexec(name) {
		fallbackChild(t)
		return
	}
	// A wait threshold of 1s, so that the long wait is reported in a test's
	// time; the grace is the default.
	out, err := reexecTest(t, name, debugmutex.EnvWaitThreshold+"=1s", debugmutex.EnvRecursiveGrace+"=")
	reexecLog(t, out)
	if err != nil {
		t.Fatalf("child failed (%v):\n%s", err, out)
	}
	const hint = "lockscope: hangs are reported when thresholds run out"
	if n := strings.Count(out, hint); n != 1 {
		t.Errorf("the hint %q is printed %d times, want once:\n%s", hint, n, out)
	}
	if !strings.Contains(out, "GOEXPERIMENT=goroutineleakprofile") && !strings.Contains(out, "unset LOCKSCOPE_PROOF") {
		t.Errorf("the hint does not say how to get the proof:\n%s", out)
	}
}

func fallbackChild(t *testing.T) {
	debugmutex.SetProofDisabled(true)
	debugmutex.Configure(debugmutex.RecursiveGrace(time.Second)) // TestMain's is shorter
	got := make(chan debugmutex.Report, 16)
	defer debugmutex.OnReport(func(r debugmutex.Report) { got <- r })()
	await := func(what string, kind debugmutex.Kind, within time.Duration) (debugmutex.Report, time.Duration) {
		t.Helper()
		start := time.Now()
		for {
			select {
			case r := <-got:
				if r.Kind == kind {
					return r, time.Since(start)
				}
			case <-time.After(within):
				t.Fatalf("%s: no %s report within %v", what, kind, within)
			}
		}
	}

	// A lock held across a channel receive: a long wait, at the threshold.
	fallbackHeldAcrossReceive()
	r, after := await("held across receive", debugmutex.KindLongWait, 10*time.Second)
	t.Logf("held across a receive: %s after %v: %s", r.Kind, after.Round(time.Millisecond), r.Summary)
	if after < 900*time.Millisecond {
		t.Errorf("long wait reported after %v, before the 1s threshold", after)
	}
	if strings.Contains(r.Summary, "the runtime proves") {
		t.Errorf("summary claims a proof there is none of: %s", r.Summary)
	}

	// Recursive locking: a deadlock once the grace has passed.
	fallbackDoubleLock()
	r, after = await("double lock", debugmutex.KindDeadlock, 10*time.Second)
	t.Logf("double lock: %s after %v: %s", r.Kind, after.Round(time.Millisecond), r.Summary)
	if after < 900*time.Millisecond {
		t.Errorf("recursive lock reported after %v, within the 1s grace", after)
	}
	if !strings.Contains(r.Summary, "which it holds itself") || strings.Contains(r.Summary, "the runtime proves") {
		t.Errorf("summary: %s", r.Summary)
	}
	os.Stderr.Sync()
}

//go:noinline
func fallbackHeldAcrossReceive() {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "fallback.recv.mu")
	ch := make(chan int)
	locked := make(chan struct{})
	go func() {
		mu.Lock()
		close(locked)
		<-ch
		mu.Unlock()
	}()
	<-locked
	go func() {
		mu.Lock()
		ch <- 1
		mu.Unlock()
	}()
}

//go:noinline
func fallbackDoubleLock() {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "fallback.double.mu")
	go func() {
		mu.Lock()
		mu.Lock()
	}()
}
