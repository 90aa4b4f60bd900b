//go:build goexperiment.goroutineleakprofile || go1.27

package verdict

import (
	"bytes"
	"fmt"
	"runtime/pprof"

	"github.com/lockscope/lockscope/internal/rt"
)

// The goroutine leak profile: on by default from Go 1.27, behind
// GOEXPERIMENT=goroutineleakprofile in Go 1.26. Only these builds import
// runtime/pprof.
func init() {
	p := pprof.Lookup("goroutineleak")
	if p == nil {
		return
	}
	rt.LeakCount = func() (int, error) {
		// debug=1: the leak-detecting collection, then the leaked
		// goroutines' stacks, counted ("goroutineleak profile: total N");
		// its cost grows with the leaked goroutines only.
		var b bytes.Buffer
		if err := p.WriteTo(&b, 1); err != nil {
			return 0, err
		}
		var n int
		if _, err := fmt.Sscanf(b.String(), "goroutineleak profile: total %d", &n); err != nil {
			return 0, fmt.Errorf("goroutine leak profile: %v", err)
		}
		return n, nil
	}
}
