#!/usr/bin/env bash
# realmodules.sh: the modules of issue 10 (false reports on locks handed from
# one goroutine to another), through scripts/fieldtest.sh, which it was
# folded into. Flags and SPECs as for fieldtest.sh.
args=()
specs=0
for a in "$@"; do case "$a" in *@*) specs=1 ;; esac; args+=("$a"); done
if [ $specs -eq 0 ]; then
	args+=("github.com/prometheus/client_golang@v1.25.0|./prometheus|-short" "go.etcd.io/bbolt@v1.5.0|.|-short")
fi
exec "$(dirname "$0")/fieldtest.sh" "${args[@]}"
