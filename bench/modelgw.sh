#!/usr/bin/env bash
# Model gateway against calling the upstream directly and against a plain
# httputil.ReverseProxy, on loopback with 1 KiB responses; each party in its
# own process, load from a fourth. Prints each run's table (latency at light
# load, streaming time to first byte, throughput at saturation) and the
# hypervisor steal time seen during the runs.
#
#   bench/modelgw.sh [RUNS]        (default 3)
#   BENCH_N=2000 BENCH_CLIENTS=32 BENCH_TOTAL=8000 BENCH_ROUNDS=4 bench/modelgw.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
steal() { awk '/^cpu /{print $9}' /proc/stat; }
s0=$(steal)
for i in $(seq "$runs"); do
	echo "== run $i"
	GOTOOLCHAIN=local go test ./bench/modelgw -run '^$' -bench ModelGateway -benchtime 1x 2>&1 |
		grep -E '^(target|upstream|httputil|clawea|gateway|throughput)'
done
s1=$(steal)
echo "steal during runs: $(( (s1 - s0) * 10 )) ms of CPU time taken by the hypervisor"
