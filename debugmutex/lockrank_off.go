//go:build !lockscope_lockrank

package debugmutex

// lockrankOn: the lockscope_lockrank build tag is not set.
const lockrankOn = false

func rankAcquire(int) {}
func rankRelease(int) {}
