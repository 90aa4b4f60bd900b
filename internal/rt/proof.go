package rt

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/lockscope/lockscope/internal/config"
)

// StaticAddr reports whether p is in the program's static data: a package
// variable, or what a package variable's initializer had the linker
// allocate. The garbage collector always reaches such memory, so the
// runtime's proof never decides a wait for a lock there, and a goroutine
// waiting for such a lock it holds itself is reported when the recursive
// grace ends, as without the proof. runtime.AddCleanup is the public
// question that tells: a no-op Cleanup for static data, a real one
// (stopped at once) for a heap object, a panic for anything else (a
// goroutine's stack). p must be live: the lock of a goroutine blocked in
// Lock.
func StaticAddr(p unsafe.Pointer) (static bool) {
	defer func() {
		if recover() != nil {
			static = false
		}
	}()
	c := runtime.AddCleanup((*byte)(p), func(struct{}) {}, struct{}{})
	if c == (runtime.Cleanup{}) {
		return true
	}
	c.Stop()
	return false
}

const (
	// ProofDelay is how long a wait lasts before the proof is asked for.
	ProofDelay = 250 * time.Millisecond
	// SelfWaitProofDelay is the same for a goroutine waiting for a lock it
	// holds: time for it to park on the lock.
	SelfWaitProofDelay = 20 * time.Millisecond
	// ProofMinInterval and proofMaxInterval bound the time between
	// consultations; proofCostFactor scales the last one's cost into the
	// least time to the next.
	ProofMinInterval = time.Second
	ProofMaxInterval = 4 * time.Second
	ProofCostFactor  = 20
)

// LeakCount, where the toolchain has the goroutine leak profile
// (leakproof_on.go), runs the leak-detecting collection and returns how many
// goroutines are leaked: blocked forever. The runtime marks them, until its
// next leak-detecting collection, and a goroutine dump (runtime.Stack)
// shows them "(leaked)": the ids that map the proof onto lockscope's
// records. A leaked goroutine stays leaked: the count only grows.
var LeakCount func() (int, error)

// ProofDisabled turns the proof off (LOCKSCOPE_PROOF=off; tests of the
// fallback).
var ProofDisabled atomic.Bool

// ProofAvailable reports whether the runtime's proof can be asked for.
func ProofAvailable() bool { return LeakCount != nil && !ProofDisabled.Load() }

func init() { ProofDisabled.Store(config.SwitchedOff(os.Getenv(config.EnvProof))) }
