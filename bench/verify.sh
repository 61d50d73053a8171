#!/usr/bin/env bash
# Verifier throughput: a proof bundle with 1,000 bound gateway receipts,
# verified end to end (parse, schema, hashes, 1,001 signatures, chain), on
# one core and on two. Repeats the Go benchmark and prints the best and the
# median of each, plus the hypervisor steal time seen during the run, since
# shared virtual machines make single runs noisy.
#
# Runs are interleaved (one core, then two, COUNT times) so that the speed
# of the machine drifting during the run affects both alike, and each pair
# gives a speed-up. The bundle is measured twice: with Go's default
# collector setting, and with GOGC=400 as `clawea verify` runs. Each pair
# is followed by a pair of plain signature checks, which share nothing
# between cores: their speed-up is what this machine gives two cores at
# that moment (below 2x when the two vCPUs share a physical core or the
# host takes time away), and the ratio shows how much of it the verifier
# keeps. With GOGC=400, each round also verifies the bundle in two
# one-core processes at once: the gain they reach together is what two
# cores give this very work when nothing is shared between them.
#
#   bench/verify.sh [COUNT]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10}"
steal() { awk '/^cpu /{print $9}' /proc/stat; }
bin=$(mktemp -d)/verify.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
GOTOOLCHAIN=local go test -c -o "$bin" ./verify
cd verify
s0=$(steal)
for gc in 100 400; do
	for _ in $(seq "$count"); do
		for cpu in 1 2; do
			GOGC=$gc "$bin" -test.run '^$' -test.bench 'VerifyBundle1000$' -test.cpu "$cpu" -test.benchtime 40x |
				awk -v gc="$gc" '/^Benchmark/ { print "gc" gc, $1, $3 }'
		done
		# The machine's own speed-up in the same moment: signature checks
		# alone, which share nothing between cores.
		for cpu in 1 2; do
			"$bin" -test.run '^$' -test.bench 'Ed25519VerifyParallel/stdlib' -test.cpu "$cpu" -test.benchtime 3000x |
				awk -v gc="$gc" '/^Benchmark/ { print "ref" gc, $1, $3 }'
		done
		# And the same bundle in two one-core processes at once: what the
		# machine gives this very work on two cores when nothing is shared.
		if [ "$gc" = 400 ]; then
			for side in a b; do
				GOGC=$gc "$bin" -test.run '^$' -test.bench 'VerifyBundle1000$' -test.cpu 1 -test.benchtime 40x |
					awk '/^Benchmark/ { print "side", $1, $3 }' >"$bin.$side" &
			done
			wait
			cat "$bin.a" "$bin.b"
		fi
	done
done >"$bin.bundle"
"$bin" -test.run '^$' -test.bench 'Ed25519VerifyParallel' -test.cpu 1,2 -test.benchtime 300ms -test.count "$count" >"$bin.sig"
s1=$(steal)
grep '^cpu:' "$bin.sig" | head -1
awk '
function sort(v, m,   i, j, t) { for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (v[j]+0 < v[i]+0) { t=v[i]; v[i]=v[j]; v[j]=t } }
$1 == "side" { side[++nside] = $3; next }
{
	key = $1 " " $2; n[key]++; ns[key, n[key]] = $3
	if ($2 ~ /-2$/) { one = $1 " " substr($2, 1, length($2)-2); sp[$1, ++ns2[$1]] = ns[one, n[one]] / $3 }
}
END {
	for (k in n) {
		m = n[k]; for (i=1;i<=m;i++) v[i] = ns[k, i]; sort(v, m)
		split(k, kk, " "); if (kk[1] ~ /^ref/) continue
		label = kk[1] == "gc100" ? "default GC" : "GOGC=400 (clawea verify)"
		printf "%-26s %-30s best %5.1f ms (%5.0f receipts/s)  median %5.1f ms (%5.0f receipts/s)\n", label, kk[2], v[1]/1e6, 1000/(v[1]/1e9), v[int((m+1)/2)]/1e6, 1000/(v[int((m+1)/2)]/1e9)
	}
	for (g in ns2) {
		if (g !~ /^gc/) continue
		r = "ref" substr(g, 3)
		m = ns2[g]; for (i=1;i<=m;i++) { v[i] = sp[g, i]; w[i] = sp[r, i]; e[i] = sp[g, i] / sp[r, i] }
		sort(v, m); sort(w, m); sort(e, m)
		label = g == "gc100" ? "default GC" : "GOGC=400 (clawea verify)"
		printf "%-26s speed-up on 2 cores, pair by pair: median %.2fx (range %.2f-%.2fx)\n", label, v[int((m+1)/2)], v[1], v[m]
		printf "%-26s signatures alone, same moments: median %.2fx (range %.2f-%.2fx); bundle / signatures: median %.2f (range %.2f-%.2f)\n", label, w[int((m+1)/2)], w[1], w[m], e[int((m+1)/2)], e[1], e[m]
		if (g == "gc400" && nside >= 2*m) {
			# Two one-core processes side by side, after the same round:
			# together they verify solo/a + solo/b times as fast.
			for (i=1;i<=m;i++) { solo = ns["gc400 BenchmarkVerifyBundle1000", i]; x[i] = solo/side[2*i-1] + solo/side[2*i]; y[i] = sp[g, i] / x[i] }
			sort(x, m); sort(y, m)
			printf "%-26s two one-core processes side by side: median %.2fx (range %.2f-%.2fx); one process / two: median %.2f (range %.2f-%.2f)\n", label, x[int((m+1)/2)], x[1], x[m], y[int((m+1)/2)], y[1], y[m]
		}
	}
}' "$bin.bundle" | sort
awk '/^Benchmark/ { name=$1; a[name]=a[name] " " $3 }
END {
	for (n in a) {
		m = split(substr(a[n],2), v, " ")
		for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (v[j]+0 < v[i]+0) { t=v[i]; v[i]=v[j]; v[j]=t }
		printf "%-42s best %5.1f us/signature  median %5.1f us\n", n, v[1]/1e3, v[int((m+1)/2)]/1e3
	}
}' "$bin.sig" | sort
echo "steal during run: $(( (s1 - s0) * 10 )) ms of CPU time taken by the hypervisor"
