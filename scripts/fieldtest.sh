#!/usr/bin/env bash
# fieldtest.sh: the field test of issue 12: run real modules' tests with plain
# `go test` and with `lockscope test`, side by side, and print a table: both
# results, the time ratio, the reports by kind. Every report must then be
# judged true or false by reading the module's code. Not for CI: it downloads
# modules and runs for a long time. (It replaces scripts/realmodules.sh.)
#
# Usage:
#   scripts/fieldtest.sh [-runs N] [-deps] [-keep-going] [SPEC...]
#
# A SPEC is "module@version|package|go test flags", e.g.
#   "go.etcd.io/bbolt@v1.5.0|.|-short"
# Without SPECs, the 15 modules of issue 12 (below) are run. Both runs of a
# module get the same flags, plus -count=1 (a cached result would run no test
# and make no report); both are built first (-run '^$'), so that the times
# and their ratio are those of the test runs (linking included). A module without a go.mod (an +incompatible one) gets
# "module PATH" and "go 1.18". -runs N runs `lockscope test` N times (the
# reports depend on scheduling).
#
# Nothing outside /tmp is modified. Everything goes under $FIELDTEST_DIR
# (default /tmp/fieldtest):
#   gomodcache/, gocache/, tmp/, xdg/  private Go module cache, build cache,
#                          temporary files and telemetry directory (the user's
#                          module cache is only read, as the first GOPROXY)
#   lockscope-<commit>/    the lockscope source tested: `git archive HEAD` of
#                          this checkout, so uncommitted edits are not tested;
#                          LOCKSCOPE_SRC=dir tests a working tree instead
#   lockscope              the CLI built from it
#   <module>/src           a writable copy of the module from the module proxy
#   <module>/<flags>/plain.log, lockscope-<i>.log, reports-<i>.jsonl, report-<i>.txt
#                          one directory per line of flags (flags-race, noflags)
set -uo pipefail

root=${FIELDTEST_DIR:-/tmp/fieldtest}
case "$root" in
/tmp/*) ;;
*) echo "fieldtest: FIELDTEST_DIR must be under /tmp" >&2; exit 2 ;;
esac

runs=1
keepgoing=0
deps=0
while [ $# -gt 0 ]; do
	case "$1" in
	-runs) runs=$2; shift 2 ;;
	-keep-going) keepgoing=1; shift ;;
	-deps) deps=1; shift ;;
	-h|-help|--help) sed -n '2,35p' "$0"; exit 0 ;;
	-*) echo "fieldtest: unknown flag $1" >&2; exit 2 ;;
	*) break ;;
	esac
done

if [ $# -eq 0 ]; then
	set -- \
		"github.com/hashicorp/golang-lru/v2@v2.0.7|./...|" \
		"github.com/patrickmn/go-cache@v2.1.0+incompatible|./...|" \
		"github.com/golang/groupcache@v0.0.0-20241129210726-2c02b8208cf8|./...|" \
		"go.etcd.io/bbolt@v1.5.0|.|-short" \
		"github.com/dgraph-io/ristretto/v2@v2.4.2|./...|" \
		"github.com/allegro/bigcache/v3@v3.1.0|./...|" \
		"golang.org/x/sync@v0.25.0|./...|" \
		"github.com/panjf2000/ants/v2@v2.12.1|./...|" \
		"github.com/jackc/puddle/v2@v2.2.4|./...|" \
		"github.com/jackc/puddle/v2@v2.2.4|./...|-race" \
		"go.uber.org/zap@v1.28.0|./...|-short" \
		"github.com/hashicorp/memberlist@v0.7.0|./...|-short" \
		"github.com/hashicorp/raft@v1.8.0|./...|-short" \
		"github.com/nats-io/nats.go@v1.55.0|./...|-modfile=go_test.mod -short" \
		"github.com/prometheus/client_golang@v1.25.0|./...|-short" \
		"github.com/prometheus/client_golang@v1.25.0|./...|-short -race" \
		"github.com/sasha-s/go-deadlock@v0.3.9|./...|"
fi
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root"/{gomodcache,gocache,tmp,xdg}

# The go command's environment: private caches under $root; the user's module
# cache as a read-only file proxy in front of the usual proxy. The go command
# writes telemetry counters under the user's config directory, so that moves
# first (before any go command runs); the user's go env file is still read.
export GOENV=${GOENV:-${XDG_CONFIG_HOME:-$HOME/.config}/go/env}
export XDG_CONFIG_HOME="$root/xdg"
usercache=$(go env GOMODCACHE)
userproxy=$(go env GOPROXY)
export GOMODCACHE="$root/gomodcache" GOCACHE="$root/gocache" TMPDIR="$root/tmp"
export GOPROXY="file://$usercache/cache/download,$userproxy"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw" GOWORK=off
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
unset LOCKSCOPE_REPORT_FILE LOCKSCOPE_MODULE_DIR

# The lockscope source and CLI.
if [ -n "${LOCKSCOPE_SRC:-}" ]; then
	src=$(cd "$LOCKSCOPE_SRC" && pwd)
	what="working tree $src"
else
	commit=$(git -C "$here" rev-parse HEAD) || exit 2
	src="$root/lockscope-$commit"
	if [ ! -f "$src/go.mod" ]; then
		rm -rf "$src.part" && mkdir -p "$src.part" &&
			git -C "$here" archive HEAD | tar -x -C "$src.part" && mv "$src.part" "$src" || exit 2
	fi
	what="commit $commit (git archive HEAD of $here)"
fi
echo "fieldtest: lockscope from $what"
(cd "$src" && nice go build -o "$root/lockscope" ./cmd/lockscope) || { echo "fieldtest: cannot build lockscope" >&2; exit 2; }
ls="$root/lockscope"

# kinds FILE: "3 lock-order, 1 recursive-read" (or "none") from a JSON-lines file.
kinds() {
	# Class-edge lines ({"class_edge":...}) are no reports.
	if ! grep -q '^{"kind":' "$1" 2>/dev/null; then echo none; return; fi
	grep '^{"kind":' "$1" | grep -v '"repeat":true' | grep -o '^{"kind":"[^"]*"' | sed 's/{"kind":"//; s/"$//' | sort | uniq -c |
		awk '{printf "%s%d %s", (NR>1 ? ", " : ""), $1, $2} END {print ""}'
}

# now: seconds since the epoch, with milliseconds.
now() { date +%s.%N | cut -c1-14; }
# elapsed T0: seconds since T0, one decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# result LOG STATUS SECONDS: "ok (12s)" or "FAIL exit 1 (12s): first FAIL line".
result() {
	if [ "$2" -eq 0 ]; then
		echo "ok ($3s)"
	else
		echo "FAIL exit $2 ($3s): $(grep -m1 -E '^(FAIL|--- FAIL|panic:|fatal error:|#)' "$1" || tail -n1 "$1")"
	fi
}

summary=()
ratios=()
failed=0
for spec in "$@"; do
	IFS='|' read -r modver pkg flags <<<"$spec"
	[ -n "$pkg" ] || pkg=./...
	read -r -a flagv <<<"$flags"
	slug=$(echo "$modver" | tr '/@' '__')
	# One directory per module and flags: two lines of one module (with and
	# without -race) must not overwrite each other's logs and reports. The
	# source copy is shared.
	fslug=$(echo "${flags:+flags$flags}" | tr -c 'A-Za-z0-9=.\n-' '_' | cut -c1-60)
	[ -n "$fslug" ] || fslug=noflags
	dir="$root/$slug/$fslug"
	srcdir="$root/$slug/src"
	echo
	echo "== $modver  package $pkg  flags: ${flags:-(none)}"
	mkdir -p "$dir"
	# The module, from the proxy, copied so that it is writable.
	if [ ! -f "$srcdir/go.mod" ]; then
		moddir=$(cd "$root/tmp" && go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		if [ -z "$moddir" ] || [ ! -d "$moddir" ]; then
			echo "fieldtest: cannot download $modver" >&2
			failed=1; [ $keepgoing -eq 1 ] && continue || exit 1
		fi
		rm -rf "$srcdir" && cp -r "$moddir" "$srcdir" && chmod -R u+w "$srcdir" || exit 1
		if [ ! -f "$srcdir/go.mod" ]; then
			printf 'module %s\n\ngo 1.18\n' "${modver%@*}" >"$srcdir/go.mod"
			(cd "$srcdir" && go mod tidy) >"$root/$slug/tidy.log" 2>&1
		fi
	fi

	# Builds first, for both, running no test: the times compare the runs
	# of the tests, not a cold build cache against a warm one.
	(cd "$srcdir" && nice go test -count=1 -run '^$' "${flagv[@]}" "$pkg") >"$dir/plain-build.log" 2>&1
	(cd "$srcdir" && nice "$ls" -lockscope-dir "$src" test -count=1 -run '^$' "${flagv[@]}" "$pkg") >"$dir/lockscope-build.log" 2>&1
	t0=$(now)
	(cd "$srcdir" && nice go test -count=1 "${flagv[@]}" "$pkg") >"$dir/plain.log" 2>&1
	st=$?
	tplain=$(elapsed "$t0")
	plain=$(result "$dir/plain.log" $st "$tplain")
	echo "plain go test:  $plain"

	variants=("")
	if [ $deps -eq 1 ]; then
		variants+=("-deps=all")
		t0=$(now)
		(cd "$srcdir" && LOCKSCOPE_DEPS_CACHE="$root/depscache" nice "$ls" -lockscope-dir "$src" test -deps=all -count=1 -run '^$' "${flagv[@]}" "$pkg") >"$dir/lockscope-deps-build.log" 2>&1
		echo "lockscope -deps=all build (cold copies): $(elapsed "$t0")s; $(grep -m1 'replaces sync in' "$dir/lockscope-deps-build.log" | sed 's/^lockscope: //')"
		grep 'does not build with debugmutex' "$dir/lockscope-deps-build.log"
	fi
	for variant in "${variants[@]}"; do
	vslug=${variant:+-deps}
	for i in $(seq 1 "$runs"); do
		rep="$dir/reports$vslug-$i.jsonl"
		rm -f "$rep"
		t0=$(now)
		(cd "$srcdir" && LOCKSCOPE_DEPS_CACHE="$root/depscache" LOCKSCOPE_REPORT_FILE="$rep" nice "$ls" -lockscope-dir "$src" test $variant -count=1 "${flagv[@]}" "$pkg") \
			>"$dir/lockscope$vslug-$i.log" 2>&1
		st=$?
		tls=$(elapsed "$t0")
		lsr=$(result "$dir/lockscope$vslug-$i.log" $st "$tls")
		ratio=$(awk -v a="$tls" -v b="$tplain" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
		ratios+=("$ratio")
		"$ls" report "$rep" >"$dir/report$vslug-$i.txt" 2>&1
		k=$(kinds "$rep")
		echo "lockscope test $variant: $lsr"
		echo "reports:        $k   (run $i; $dir/report$vslug-$i.txt)"
		if [ -s "$rep" ]; then
			# One line per report: kind and summary, lock names shortened.
			grep -v '"repeat":true' "$rep" | sed -n 's/^{"kind":"\([^"]*\)","summary":"\([^"]*\)".*/    \1: \2/p' |
				sed "s#$(echo "${modver%@*}" | sed 's/[.]/[.]/g')/\{0,1\}[a-z0-9_/]*[.]##g" | sed 's/\\u003e/>/g; s/\\u003c/</g; s/\\u0026/\&/g' | cut -c1-220
		fi
		summary+=("$(printf '| %s | %s | %s (%ss) | %s%s (%ss) | %s | %s |' "$modver" "${flags:-}" "${plain%% *}" "$tplain" "${variant:+$variant }" "${lsr%% *}" "$tls" "$ratio" "$k")")
	done
	done
done

echo
echo "== summary"
echo "| module@version | flags | plain | lockscope | time ratio | reports by kind |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
printf '%s\n' "${ratios[@]}" | grep -v -- - | sort -n |
	awk '{a[NR] = $1} END {if (NR) printf "median time ratio: %.2f over %d runs\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), NR}'
exit $failed
