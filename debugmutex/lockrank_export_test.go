package debugmutex

import (
	"github.com/lockscope/lockscope/internal/rt"
)

// LockrankOn tells the external tests that the lockscope_lockrank tag is
// set: lockscope's own mutexes then allocate for their rank checks.
const LockrankOn = rt.LockrankOn
