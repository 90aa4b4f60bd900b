//go:build goexperiment.goroutineleakprofile || go1.27

package debugmutex

import (
	"bytes"
	"runtime/pprof"
)

// The goroutine leak profile: on by default from Go 1.27, behind
// GOEXPERIMENT=goroutineleakprofile in Go 1.26. Only these builds import
// runtime/pprof.
func init() {
	if p := pprof.Lookup("goroutineleak"); p != nil {
		leakDump = func(w *bytes.Buffer) error {
			// debug=2: the leak-detecting collection, then every
			// goroutine's stack, leaked ones marked "(leaked)": the ids
			// that map the proof onto lockscope's records.
			return p.WriteTo(w, 2)
		}
	}
}
