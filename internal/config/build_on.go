//go:build !nolockscope

package config

// compiledOut: the nolockscope build tag is not set.
const compiledOut = false
