//go:build lockscope_slowgoid

package rt

// SlowGoidForced: the lockscope_slowgoid build tag makes every goroutine id
// come from goidSlow, so that `go test -tags lockscope_slowgoid` runs the
// package on the fallback it takes when github.com/petermattis/goid does
// not match the running Go release.
const SlowGoidForced = true
