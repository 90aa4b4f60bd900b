#!/usr/bin/env bash
# Benchmarks sync, lockscope and go-deadlock side by side in one run and
# prints benchstat tables with lockscope's and go-deadlock's ratios to sync;
# then the service-scale benchmarks (BenchmarkScale*, issue 11: sync,
# lockscope and LOCKSCOPE=off) and their floors as PASS/FAIL lines. It exits
# with status 1 when a floor is missed.
#
#   ./run.sh                 COUNT=6 BENCHTIME=200ms by default
#   COUNT=10 ./run.sh        more runs, tighter intervals
#   SCALE_ONLY=1 ./run.sh    only the service-scale benchmarks and floors
#   SCALE=0 ./run.sh         without them
#   WATCHDOG_COUNT=3 WATCHDOG_BENCHTIME=2s   the leaked-lock runs (long, so
#                            the watchdog lives with the leak for seconds)
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

if [ "${SCALE_ONLY:-0}" != 1 ]; then
# Recording on: every implementation, every benchmark but the service-scale ones.
go test -run '^$' -bench . -skip '^BenchmarkScale' -count "$count" -benchtime "$benchtime" . >"$out/on.txt"
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
fi

status=0
if [ "${SCALE:-1}" != 0 ]; then
# Service scale (issue 11): sync and lockscope in one process, lockscope with
# LOCKSCOPE=off in another, each benchmark in processes of its own (what one
# leaves in lockscope's tables must not change the next one's numbers); the
# leaked-lock watchdog runs with a 100ms hold threshold and longer runs.
# Reports go to $out/reports.jsonl, not the output.
wcount=${WATCHDOG_COUNT:-3}
wbenchtime=${WATCHDOG_BENCHTIME:-2s}
bin="$out/bench.test"
go test -c -o "$bin" .
export LOCKSCOPE_REPORT_FILE="$out/reports.jsonl" LOCKSCOPE_QUIET=1
: >"$out/scale-on.txt"
: >"$out/scale-off.txt"
for b in ScaleManyWaiters ScaleReadWaiters ScaleFirstUse ScaleReadHeavy RLock ScaleWatchdog; do
	c=$count t=$benchtime extra=
	if [ "$b" = ScaleWatchdog ]; then c=$wcount t=$wbenchtime extra=LOCKSCOPE_HOLD_THRESHOLD=100ms; fi
	env $extra BENCH_IMPLS=sync,lockscope "$bin" -test.run '^$' -test.bench "^Benchmark$b\$" \
		-test.count "$c" -test.benchtime "$t" >>"$out/scale-on.txt"
	env $extra LOCKSCOPE=off BENCH_IMPLS=lockscope "$bin" -test.run '^$' -test.bench "^Benchmark$b\$" \
		-test.count "$c" -test.benchtime "$t" | sed 's/impl=lockscope/impl=lockscope-off/' >>"$out/scale-off.txt"
done
unset LOCKSCOPE_REPORT_FILE LOCKSCOPE_QUIET

echo
echo "## service scale: sync, lockscope, LOCKSCOPE=off (ratios to sync)"
cat "$out/scale-on.txt" "$out/scale-off.txt" | benchstat -col /impl /dev/stdin
echo
echo "## service-scale floors (issue 11), from medians"
go run ./floors "$out/scale-on.txt" "$out/scale-off.txt" || status=$?
fi
echo
echo "# raw results: $out"
exit "$status"
