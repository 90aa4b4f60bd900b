#!/usr/bin/env bash
# Build, start and stop a local Jaeger v2 for lockscope's end-to-end tests.
#
#   .ci/jaeger.sh build   build Jaeger once (about 10 minutes on 2 cores; the
#                         binary is cached under
#                         ${XDG_CACHE_HOME:-$HOME/.cache}/lockscope/jaeger-v1.76.0/)
#                         and unpack its web UI next to it
#   .ci/jaeger.sh start   start it in the background (config .ci/jaeger/config.yaml,
#                         127.0.0.1 only), wait until it is healthy and check
#                         that it serves the real UI, not the placeholder
#   .ci/jaeger.sh stop    stop the Jaeger that start started (by PID)
#   .ci/jaeger.sh env     print the environment for tests and programs
#
# Jaeger v2 is the module github.com/jaegertracing/jaeger, package cmd/jaeger.
# `go install ...@v1.76.0` refuses it because Jaeger's go.mod has a replace
# directive, so .ci/jaeger/ is a tiny module that requires Jaeger with the same
# replace and a go.sum seeded from Jaeger's own (without it, checksum-database
# lookups of some collector-contrib modules fail). The build takes about 10
# minutes on 2 cores, hence the cache.
#
# The Jaeger module embeds only a placeholder page where the UI goes ("This
# is not the Jaeger UI you are looking for"). The real UI, v1.76.0 prebuilt,
# is ../shared/jaeger-ui/jaeger-ui-v1.76.0.tar.gz beside the repository
# (LOCKSCOPE_JAEGER_UI_TARBALL overrides that path); it is unpacked into the
# cache and served with jaeger_query.ui.assets_path.
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
ui_url="http://127.0.0.1:16686"
root="$(cd "$here/.." && pwd)"
ui_tarball_name="jaeger-ui-$JAEGER_VERSION.tar.gz"
ui_dir="$cache/ui-$JAEGER_VERSION/build"

# ui_tarball prints the path of the Jaeger UI tarball: the override, or
# shared/jaeger-ui/ beside the repository's root (../shared from it), else
# the workplace's /work/shared/jaeger-ui/ (a clone elsewhere, as CI's may be).
ui_tarball() {
	local c
	for c in "${LOCKSCOPE_JAEGER_UI_TARBALL:-}" \
		"$root/../shared/jaeger-ui/$ui_tarball_name" \
		"$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)/../shared/jaeger-ui/$ui_tarball_name" \
		"/work/shared/jaeger-ui/$ui_tarball_name"; do
		if [[ -n "$c" && -f "$c" ]]; then
			echo "$c"
			return
		fi
	done
	echo "jaeger: Jaeger UI not found: looked for ${LOCKSCOPE_JAEGER_UI_TARBALL:+$LOCKSCOPE_JAEGER_UI_TARBALL and }$root/../shared/jaeger-ui/$ui_tarball_name" >&2
	echo "jaeger: (set LOCKSCOPE_JAEGER_UI_TARBALL to the tarball's path)" >&2
	return 1
}

# ui unpacks the UI into the cache once (again when the tarball changes).
ui() {
	local tarball sum
	tarball="$(ui_tarball)"
	sum="$(sha256sum "$tarball" | cut -d' ' -f1)"
	if [[ -f "$ui_dir/index.html" && "$(cat "$ui_dir/../sha256" 2>/dev/null)" == "$sum" ]]; then
		return
	fi
	local tmp="$cache/ui-$JAEGER_VERSION.tmp.$$"
	rm -rf "$tmp" && mkdir -p "$tmp"
	tar -xzf "$tarball" -C "$tmp"
	[[ -f "$tmp/build/index.html" ]] || {
		echo "jaeger: $tarball has no build/index.html" >&2
		rm -rf "$tmp"
		return 1
	}
	echo "$sum" >"$tmp/sha256"
	rm -rf "$cache/ui-$JAEGER_VERSION"
	mv "$tmp" "$cache/ui-$JAEGER_VERSION"
	echo "jaeger: unpacked the UI from $tarball into $ui_dir"
}

build() {
	mkdir -p "$cache"
	ui
	if [[ -x "$bin" ]]; then
		echo "jaeger: using cached $bin"
		return
	fi
	echo "jaeger: building $JAEGER_VERSION into $bin (about 10 minutes)..."
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
		LOCKSCOPE_JAEGER_UI_DIR="$ui_dir" "$bin" --config "$src/config.yaml" >"$logfile" 2>&1 &
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
	# The real UI's index.html loads its bundle from static/; the placeholder
	# says what it is.
	local page
	page="$(curl -fsS "$ui_url/search" || true)"
	if [[ "$page" != *"static/index-"* || "$page" == *"not the Jaeger UI"* ]]; then
		echo "jaeger: $ui_url does not serve the Jaeger UI (assets_path $ui_dir); it answered:" >&2
		echo "$page" | head -c 600 >&2
		stop
		exit 1
	fi
	echo "jaeger: healthy; UI and API at $ui_url"
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
