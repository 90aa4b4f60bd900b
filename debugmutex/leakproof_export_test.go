package debugmutex

// Hooks for the tests of the runtime's proof (leakproof.go).

// ProofAvailable reports whether the runtime's proof can be asked for.
func ProofAvailable() bool { return proofAvailable() }

// SetProofDisabled turns the proof off (true) or back on, to test the
// fallback under any toolchain.
func SetProofDisabled(off bool) { proofDisabled.Store(off) }

// ProofConsultations returns how many times the proof has been asked for.
func ProofConsultations() int64 { return proofConsultations.Load() }

// ConsultProofNow asks for the proof at once, whatever the rate limit
// (with dump, as if new goroutines had leaked: the dump that names them is
// taken too), and returns how many goroutines the last dump showed leaked
// (-1: the proof is unavailable).
func ConsultProofNow(dump bool) int {
	if !proofAvailable() {
		return -1
	}
	watchdogRunMu.Lock()
	defer watchdogRunMu.Unlock()
	proofLast = 0
	if dump {
		proofDumped = -1
	}
	next := int64(0)
	consultProof(nanotime(), nil, true, &next)
	return proofDumped
}
