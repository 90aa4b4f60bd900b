//go:build !lockscope_slowgoid

package rt

// slowGoidForced: see goid_slowtag.go.
const SlowGoidForced = false
