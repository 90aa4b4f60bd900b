//go:build !lockscope_slowgoid

package debugmutex

// slowGoidForced: see goid_slowtag.go.
const slowGoidForced = false
