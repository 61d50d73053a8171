#!/usr/bin/env bash
# Tool gateway overhead: a Key Vault get (dev vault, real azsecrets client)
# and a local queue send, made directly on the connector and through the
# gateway's JSON API and MCP endpoint, each party in its own process; then
# the in-process cost of Gateway.Call (token, policy, redaction, receipt)
# around a local connector. Prints each run's table and the hypervisor
# steal time seen during the runs.
#
#   bench/toolgw.sh [RUNS]        (default 3)
#   BENCH_N=2000 BENCH_CLIENTS=16 BENCH_TOTAL=6000 bench/toolgw.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
steal() { awk '/^cpu /{print $9}' /proc/stat; }
s0=$(steal)
for i in $(seq "$runs"); do
	echo "== run $i"
	GOTOOLCHAIN=local go test ./bench/toolgw -run '^$' -bench ToolGateway -benchtime 1x 2>&1 |
		grep -E '^(call|Key|queue|throughput)'
	GOTOOLCHAIN=local go test ./bench/toolgw -run '^$' -bench 'BenchmarkCall' -benchtime 3000x 2>&1 |
		grep -E '^BenchmarkCall' | awk '{printf "in process %-28s", $1; for (i = 5; i < NF; i += 2) printf " %s=%s", $(i+1), $i; print ""}'
done
s1=$(steal)
echo "steal during runs: $(( (s1 - s0) * 10 )) ms of CPU time taken by the hypervisor"
