#!/bin/sh
# Regenerates docs/service-flamegraph.png: the flame graph of the service
# example's contention profile, as `go tool pprof -http` draws it, captured
# with headless Chromium (Debian: apt-get install chromium).
#
# Run it from anywhere in the repository:
#
#	sh examples/service/screenshot.sh
#
# It builds the service, puts a fixed load on it (-load), saves the
# contention profile it serves at /debug/locks/contention, opens that in
# pprof's web UI on a loopback port, and screenshots the flame graph.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/docs/service-flamegraph.png}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "screenshot.sh: chromium not found (apt-get install chromium)" >&2; exit 1; }

tmp=$(mktemp -d)
pprof_pid=
cleanup() {
	[ -z "$pprof_pid" ] || kill "$pprof_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

cd "$root"
go build -o "$tmp/service" ./examples/service
"$tmp/service" -load 3000 -profile "$tmp/contention.pb.gz"

# pprof's web UI on a loopback port (PPROF_PORT, default 8799).
url=http://127.0.0.1:${PPROF_PORT:-8799}
go tool pprof -http="${url#http://}" -no_browser -sample_index=delay "$tmp/contention.pb.gz" >"$tmp/pprof.log" 2>&1 &
pprof_pid=$!
up=
for _ in $(seq 1 300); do # wait for it to answer, at most ~30s
	if curl -fs -o /dev/null "$url/ui/flamegraph"; then
		up=1
		break
	fi
	kill -0 "$pprof_pid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$up" ] || { cat "$tmp/pprof.log" >&2; echo "screenshot.sh: pprof's web UI did not come up on $url" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
	--disable-component-update --disable-sync --no-first-run \
	--user-data-dir="$tmp/chromium" --hide-scrollbars --window-size=1400,260 \
	--virtual-time-budget=5000 --screenshot="$out" "$url/ui/flamegraph" 2>"$tmp/chromium.log" ||
	{ cat "$tmp/chromium.log" >&2; exit 1; }
[ -s "$out" ] || { echo "screenshot.sh: no screenshot written" >&2; exit 1; }
echo "wrote $out"
