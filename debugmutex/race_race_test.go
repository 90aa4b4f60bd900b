//go:build race

package debugmutex_test

// race says whether the tests run under the race detector.
const race = true
