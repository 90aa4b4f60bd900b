package debugmutex

import (
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Hooks for the tests of the runtime's proof (leakproof.go).

// ProofAvailable reports whether the runtime's proof can be asked for.
func ProofAvailable() bool { return rt.ProofAvailable() }

// SetProofDisabled turns the proof off (true) or back on, to test the
// fallback under any toolchain.
func SetProofDisabled(off bool) { rt.ProofDisabled.Store(off) }

// ProofConsultations returns how many times the proof has been asked for.
func ProofConsultations() int64 { return verdict.ProofConsultations.Load() }

// ConsultProofNow asks for the proof at once, whatever the rate limit
// (with dump, as if new goroutines had leaked: the dump that names them is
// taken too), and returns how many goroutines the last dump showed leaked
// (-1: the proof is unavailable).
func ConsultProofNow(dump bool) int {
	if !rt.ProofAvailable() {
		return -1
	}
	verdict.WatchdogRunMu.Lock()
	defer verdict.WatchdogRunMu.Unlock()
	verdict.ProofLast = 0
	if dump {
		verdict.ProofDumped = -1
	}
	next := int64(0)
	verdict.ConsultProof(rt.Nanotime(), nil, true, &next)
	return verdict.ProofDumped
}
