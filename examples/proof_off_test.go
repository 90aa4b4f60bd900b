//go:build !(goexperiment.goroutineleakprofile || go1.27)

package examples_test

// proofBuilt: the tests, and so the examples built with the same
// environment, have no goroutine leak profile.
const proofBuilt = false
