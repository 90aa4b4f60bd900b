#!/usr/bin/env bash
# Browser tests: what lockscope shows a person, in a real browser (Debian's
# chromium driven by puppeteer-core, with node's test runner):
#   - Jaeger's UI (v1.76.0, served by .ci/jaeger.sh) with a request trace of
#     examples/service in which the request waited for cache.mu;
#   - the /debug/locks/ page of examples/service -deadlock.
#
#   .ci/browser.sh                    run the tests
#   .ci/browser.sh --screenshots DIR  also save the screenshots into DIR
#                                     (docs/ for the README: see
#                                     examples/service/jaeger-screenshot.sh)
#
# It installs what it needs: chromium with apt-get when missing, and
# puppeteer-core (pinned) with npm into
# ${XDG_CACHE_HOME:-$HOME/.cache}/lockscope/browser/, once. It uses the Jaeger
# that answers on 127.0.0.1 if there is one, else starts one and stops it at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '\n== %s\n' "browser: Jaeger's UI and /debug/locks/ in chromium"

PUPPETEER_VERSION=24.43.1 # the last release that runs on Debian 12's node 20
cache="${XDG_CACHE_HOME:-$HOME/.cache}/lockscope/browser"
shots=""
if [[ "${1:-}" == "--screenshots" ]]; then
	shots="$(mkdir -p "$2" && cd "$2" && pwd)"
fi

if ! command -v chromium >/dev/null 2>&1; then
	echo "browser: installing chromium (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
chromium --version 2>/dev/null || true
if ! command -v node >/dev/null 2>&1; then
	echo "browser: installing nodejs and npm (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [[ "$(cat "$cache/node_modules/puppeteer-core/package.json" 2>/dev/null | grep -o '"version": *"[^"]*"' | head -1)" != *"\"$PUPPETEER_VERSION\""* ]]; then
	echo "browser: installing puppeteer-core@$PUPPETEER_VERSION into $cache (npm)"
	mkdir -p "$cache"
	(cd "$cache" && npm install --no-audit --no-fund --loglevel=error "puppeteer-core@$PUPPETEER_VERSION" >/dev/null)
fi

tmp="$(mktemp -d)"
svc_pid=""
started_jaeger=""
cleanup() {
	if [[ -n "$svc_pid" ]]; then kill "$svc_pid" 2>/dev/null || true; fi
	if [[ -n "$started_jaeger" ]]; then .ci/jaeger.sh stop; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

if curl -fsS -o /dev/null http://127.0.0.1:13133/status 2>/dev/null; then
	echo "browser: using the Jaeger already running"
else
	.ci/jaeger.sh start
	started_jaeger=1
fi
eval "$(.ci/jaeger.sh env)"

go build -o "$tmp/service" ./examples/service

# Request traces: a run of the service under load, exporting to Jaeger.
service="lockscope-browser-$$"
echo "browser: examples/service -load, as $service"
OTEL_SERVICE_NAME="$service" "$tmp/service" -load 800 -clients 16 >"$tmp/load.log" 2>&1 ||
	{ cat "$tmp/load.log" >&2; echo "browser: the service's load run failed" >&2; exit 1; }
grep '^spans:' "$tmp/load.log"

# The page during a deadlock: the service, serving, with two goroutines
# deadlocked (no OTLP: this one is looked at, not traced).
env -u OTEL_EXPORTER_OTLP_ENDPOINT "$tmp/service" -deadlock -addr 127.0.0.1:0 >"$tmp/serve.log" 2>"$tmp/serve.err" &
svc_pid=$!
locks=""
for _ in $(seq 1 100); do
	locks="$(sed -n 's|^  locks: *||p' "$tmp/serve.log")"
	[[ -n "$locks" ]] && break
	kill -0 "$svc_pid" 2>/dev/null || break
	sleep 0.1
done
[[ -n "$locks" ]] || { cat "$tmp/serve.log" "$tmp/serve.err" >&2; echo "browser: the service did not start" >&2; exit 1; }

JAEGER_URL="$LOCKSCOPE_JAEGER_URL" SERVICE="$service" LOCKS_URL="$locks" SCREENSHOT_DIR="$shots" \
	NODE_PATH="$cache/node_modules" node --test --test-reporter=spec .ci/browser/
[[ -z "$shots" ]] || ls -l "$shots"
