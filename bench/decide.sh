#!/usr/bin/env bash
# Decision API overhead (POST /v1/decide): in process (Gateway.DecideTool
# and CloseDecision) and over loopback HTTP against a no-op handler, each
# run printing p50/p99 and the p50 added over the no-op handler.
#
#   bench/decide.sh [RUNS]        (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
for i in $(seq "$runs"); do
	echo "== run $i"
	GOTOOLCHAIN=local go test ./bench/decide -run '^$' -bench 'BenchmarkDecide' -benchtime 3000x 2>&1 |
		grep -E '^BenchmarkDecide' | awk '{printf "%-36s", $1; for (i = 5; i < NF; i += 2) printf " %s=%s", $(i+1), $i; print ""}'
done
