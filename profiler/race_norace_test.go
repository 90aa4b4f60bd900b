//go:build !race

package profiler

// raceOn says whether the tests run under the race detector.
const raceOn = false
