//go:build race

package profiler

// raceOn says whether the tests run under the race detector, which makes
// lockscope's own work inside Lock and Unlock tens of microseconds.
const raceOn = true
