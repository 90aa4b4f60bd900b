#!/usr/bin/env bash
# Verdicts the runtime proves (issue 14): the engine and the examples with
# Go's goroutine leak profile, on Go 1.26 with GOEXPERIMENT=goroutineleakprofile
# and on Go 1.27 (where it is on by default; the toolchain comes through the
# module proxy, cached in the module cache). The plain Go 1.26 run of .ci/run
# tests the fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '\n== %s\n' "verdicts the runtime proves: Go 1.26 with GOEXPERIMENT=goroutineleakprofile, and Go 1.27"

echo "-- Go 1.26, GOEXPERIMENT=goroutineleakprofile"
GOEXPERIMENT=goroutineleakprofile go version
GOEXPERIMENT=goroutineleakprofile go vet ./debugmutex/ ./examples/...
GOEXPERIMENT=goroutineleakprofile go test -count=1 ./debugmutex/ ./examples/...
GOEXPERIMENT=goroutineleakprofile go test -count=1 -run '^$' -bench Proof -benchtime 1x ./debugmutex/

echo "-- Go 1.27.3"
GOTOOLCHAIN=go1.27.3 go version
GOTOOLCHAIN=go1.27.3 go vet ./debugmutex/ ./examples/...
GOTOOLCHAIN=go1.27.3 go test -count=1 ./debugmutex/ ./examples/...
