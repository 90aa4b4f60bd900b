#!/usr/bin/env bash
# Benchmarks sync, lockscope and go-deadlock side by side in one run and
# prints benchstat tables with lockscope's and go-deadlock's ratios to sync.
#
#   ./run.sh                 COUNT=6 BENCHTIME=200ms by default
#   COUNT=10 ./run.sh        more runs, tighter intervals
#
# Raw results are kept in $OUT (default: a temp dir) for later comparison.
set -euo pipefail
cd "$(dirname "$0")"
count=${COUNT:-6}
benchtime=${BENCHTIME:-200ms}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
export PATH="$PATH:$(go env GOPATH)/bin"
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(go version)"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"

# Recording on: every implementation, every benchmark.
go test -run '^$' -bench . -count "$count" -benchtime "$benchtime" . >"$out/on.txt"
# Runtime switch off (LOCKSCOPE=off is read at start, so a run of its own).
LOCKSCOPE=off BENCH_IMPLS=sync,lockscope go test -run '^$' -bench 'Uncontended$|RLock$|TryLockFail$' \
	-count "$count" -benchtime "$benchtime" . | sed 's/impl=lockscope/impl=lockscope-off/' >"$out/off.txt"

echo
echo "## recording on: time per operation, and ratio to sync"
benchstat -col /impl "$out/on.txt"
echo
echo "## LOCKSCOPE=off"
benchstat -col /impl "$out/off.txt"
echo
echo "## profiler writing files / exporter at default thresholds, lockscope alone"
grep -E '^Benchmark(UncontendedWith|Uncontended/impl=lockscope)' "$out/on.txt" | benchstat /dev/stdin | grep -v '^$' || true
echo
echo "# raw results: $out"
