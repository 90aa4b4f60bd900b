#!/bin/sh
# Regenerates the README's browser screenshots from the browser tests
# (.ci/browser.sh), which drive Debian's chromium with puppeteer-core:
#
#	docs/jaeger-trace.png    Jaeger's UI: a GET /item/{key} request of the
#	                         service, with its wait for cache.mu under it
#	docs/locks-deadlock.png  /debug/locks/ while two goroutines deadlock
#
# Run it from anywhere in the repository (it starts a Jaeger with
# .ci/jaeger.sh unless one is running: the first build takes about 10
# minutes):
#
#	sh examples/service/jaeger-screenshot.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
exec "$root/.ci/browser.sh" --screenshots "${1:-$root/docs}"
