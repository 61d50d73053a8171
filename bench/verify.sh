#!/usr/bin/env bash
# Verifier throughput: a proof bundle with 1,000 bound gateway receipts,
# verified end to end (parse, schema, hashes, 1,001 signatures, chain), on
# one core and on two. Repeats the Go benchmark and prints the best and the
# median of each, plus the hypervisor steal time seen during the run, since
# shared virtual machines make single runs noisy.
#
#   bench/verify.sh [COUNT]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10}"
steal() { awk '/^cpu /{print $9}' /proc/stat; }
s0=$(steal)
out=$(GOTOOLCHAIN=local go test ./verify -run '^$' -bench 'VerifyBundle1000$' -cpu 1,2 -benchtime 30x -count "$count"
	GOTOOLCHAIN=local go test ./verify -run '^$' -bench 'Ed25519VerifyParallel' -cpu 1,2 -benchtime 300ms -count "$count")
s1=$(steal)
echo "$out" | grep '^cpu:' | head -1
echo "$out" | awk '/^Benchmark/ {
	name=$1; ns=$3; a[name]=a[name] " " ns }
END {
	for (n in a) {
		split(substr(a[n],2), v, " "); m=length(v)
		for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (v[j]+0 < v[i]+0) { t=v[i]; v[i]=v[j]; v[j]=t }
		med = v[int((m+1)/2)]
		if (n ~ /Bundle/) printf "%-34s best %6.1f ms (%5.0f receipts/s)  median %6.1f ms (%5.0f receipts/s)\n", n, v[1]/1e6, 1000/(v[1]/1e9), med/1e6, 1000/(med/1e9)
		else printf "%-34s best %6.1f us/signature  median %6.1f us\n", n, v[1]/1e3, med/1e3
	}
}' | sort
echo "steal during run: $(( (s1 - s0) * 10 )) ms of CPU time taken by the hypervisor"
