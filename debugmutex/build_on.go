//go:build !nolockscope

package debugmutex

// compiledOut: the nolockscope build tag is not set.
const compiledOut = false
