//go:build nolockscope

package debugmutex

// compiledOut: the nolockscope build tag is set.
const compiledOut = true
