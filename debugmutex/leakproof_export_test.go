package debugmutex

// Hooks for the tests of the runtime's proof (leakproof.go).

// ProofAvailable reports whether the runtime's proof can be asked for.
func ProofAvailable() bool { return proofAvailable() }

// SetProofDisabled turns the proof off (true) or back on, to test the
// fallback under any toolchain.
func SetProofDisabled(off bool) { proofDisabled.Store(off) }

// ProofConsultations returns how many times the proof has been asked for.
func ProofConsultations() int64 { return proofConsultations.Load() }

// ConsultProofNow asks for the proof at once, whatever the rate limit, and
// returns how many goroutines it proved blocked forever (-1: unavailable).
func ConsultProofNow() int {
	if !proofAvailable() {
		return -1
	}
	watchdogRunMu.Lock()
	defer watchdogRunMu.Unlock()
	proofLast = 0
	next := int64(0)
	d, _ := consultProof(nanotime(), false, true, &next)
	n := 0
	for _, b := range d {
		if b.leaked {
			n++
		}
	}
	return n
}
