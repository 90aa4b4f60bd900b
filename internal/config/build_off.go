//go:build nolockscope

package config

// compiledOut: the nolockscope build tag is set.
const compiledOut = true
