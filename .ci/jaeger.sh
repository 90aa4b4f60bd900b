#!/usr/bin/env bash
# Build, start and stop a local Jaeger v2 for lockscope's end-to-end tests.
#
#   .ci/jaeger.sh build   build Jaeger once; the binary is cached under
#                         ${XDG_CACHE_HOME:-$HOME/.cache}/lockscope/jaeger-v1.76.0/
#   .ci/jaeger.sh start   start it in the background (config .ci/jaeger/config.yaml,
#                         127.0.0.1 only) and wait until it is healthy
#   .ci/jaeger.sh stop    stop the Jaeger that start started (by PID)
#   .ci/jaeger.sh env     print the environment for tests and programs
#
# Jaeger v2 is the module github.com/jaegertracing/jaeger, package cmd/jaeger.
# `go install ...@v1.76.0` refuses it because Jaeger's go.mod has a replace
# directive, so .ci/jaeger/ is a tiny module that requires Jaeger with the same
# replace and a go.sum seeded from Jaeger's own (without it, checksum-database
# lookups of some collector-contrib modules fail). The build takes 5-8 minutes
# on 2 cores, hence the cache.
set -euo pipefail

JAEGER_VERSION=v1.76.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/jaeger"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/lockscope/jaeger-$JAEGER_VERSION"
bin="$cache/jaeger"
run="${LOCKSCOPE_JAEGER_RUN_DIR:-$cache/run}"
pidfile="$run/jaeger.pid"
logfile="$run/jaeger.log"
health="http://127.0.0.1:13133/status"

build() {
	if [[ -x "$bin" ]]; then
		echo "jaeger: using cached $bin"
		return
	fi
	mkdir -p "$cache"
	echo "jaeger: building $JAEGER_VERSION into $bin (5-8 minutes)..."
	local tmp="$bin.tmp.$$"
	trap 'rm -f "$tmp"' RETURN
	# -mod=mod: the wrapper lists only Jaeger; the rest of the build list
	# comes from Jaeger's go.mod, checked against the seeded go.sum.
	(cd "$src" && go build -mod=mod -trimpath -ldflags='-s -w' -o "$tmp" \
		github.com/jaegertracing/jaeger/cmd/jaeger)
	mv -f "$tmp" "$bin" # atomic: never a half-written binary in the cache
	echo "jaeger: built $bin"
}

running() {
	[[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
	build
	mkdir -p "$run"
	if running; then
		echo "jaeger: already running (pid $(cat "$pidfile"))"
	else
		if curl -fsS -o /dev/null "$health" 2>/dev/null; then
			echo "jaeger: something else already answers on $health; not starting a second one" >&2
			exit 1
		fi
		"$bin" --config "$src/config.yaml" >"$logfile" 2>&1 &
		echo $! >"$pidfile"
		echo "jaeger: started pid $(cat "$pidfile"), log $logfile"
	fi
	local deadline=$((SECONDS + 60))
	until curl -fsS -o /dev/null "$health" 2>/dev/null; do
		if ! running; then
			echo "jaeger: exited during start-up; log:" >&2
			tail -n 50 "$logfile" >&2
			rm -f "$pidfile"
			exit 1
		fi
		if ((SECONDS > deadline)); then
			echo "jaeger: not healthy after 60s; log:" >&2
			tail -n 50 "$logfile" >&2
			stop
			exit 1
		fi
		sleep 0.2
	done
	echo "jaeger: healthy; UI and API at http://127.0.0.1:16686"
}

stop() {
	if [[ ! -f "$pidfile" ]]; then
		echo "jaeger: not running (no $pidfile)"
		return
	fi
	local pid
	pid="$(cat "$pidfile")"
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "jaeger: pid $pid did not stop in 5s; killing" >&2
			kill -9 "$pid" 2>/dev/null || true
		fi
		echo "jaeger: stopped pid $pid"
	else
		echo "jaeger: pid $pid was not running"
	fi
	rm -f "$pidfile"
}

env_() {
	cat <<EOT
export LOCKSCOPE_JAEGER_URL=http://127.0.0.1:16686
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317
export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
EOT
}

case "${1:-}" in
build) build ;;
start) start ;;
stop) stop ;;
env) env_ ;;
*)
	echo "usage: $0 build|start|stop|env" >&2
	exit 2
	;;
esac
