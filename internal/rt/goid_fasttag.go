//go:build !lockscope_slowgoid

package rt

// SlowGoidForced: see goid_slowtag.go.
const SlowGoidForced = false
