#!/usr/bin/env bash
# Interleaved A/B of the verifier's benchmark between two builds of the
# verify package: BenchmarkVerifyBundle1000 (or BENCH) with GOGC=400 as
# `clawea verify` runs, on CPUS cores, alternating A and B for ROUNDS rounds
# so that the host's drift affects both alike. Prints each binary's median
# and range in ms per check, the paired B/A ratios, the hypervisor steal
# time during the run and the load average before and after (other work on
# the machine slows two-core runs most).
#
#   bench/verify-ab.sh REV_A REV_B [ROUNDS]      (git revisions; default 8)
#   A=a.test B=b.test bench/verify-ab.sh - - [ROUNDS]   (prebuilt binaries,
#                                  from go test -c -o a.test ./verify)
#
# Environment: CPUS (default 2), BENCH (default 'VerifyBundle1000$'),
# BENCHTIME (default 40x), ARGS_A / ARGS_B (extra test flags for one side).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${3:-8}"
cpus="${CPUS:-2}"
bench="${BENCH:-VerifyBundle1000\$}"
benchtime="${BENCHTIME:-40x}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build() { # rev out
	rm -rf "$tmp/src" && mkdir "$tmp/src"
	git archive "$1" | tar -x -C "$tmp/src"
	(cd "$tmp/src" && GOTOOLCHAIN=local go test -c -o "$2" ./verify)
}
a="${A:-}" b="${B:-}"
if [ "$1" != - ]; then build "$1" "$tmp/a.test"; a="$tmp/a.test"; fi
if [ "$2" != - ]; then build "$2" "$tmp/b.test"; b="$tmp/b.test"; fi
steal() { awk '/^cpu /{print $9}' /proc/stat; }
l0=$(cut -d' ' -f1-3 /proc/loadavg)
s0=$(steal)
for _ in $(seq "$rounds"); do
	for side in A B; do
		bin=$a args=${ARGS_A:-}
		[ "$side" = B ] && bin=$b args=${ARGS_B:-}
		(cd verify && GOGC=400 "$bin" -test.run '^$' -test.bench "$bench" -test.cpu "$cpus" -test.benchtime "$benchtime" $args) |
			awk -v s="$side" '/^Benchmark/ { print s, $3 }'
	done
done >"$tmp/out"
s1=$(steal)
awk '
function sort(v, m,   i, j, t) { for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (v[j]+0 < v[i]+0) { t=v[i]; v[i]=v[j]; v[j]=t } }
function med(v, m) { return m % 2 ? v[(m+1)/2] : (v[m/2] + v[m/2+1]) / 2 }
$1 == "A" { a[++na] = $2 } $1 == "B" { b[++nb] = $2 }
END {
	m = na < nb ? na : nb
	for (i=1;i<=m;i++) { r[i] = b[i] / a[i]; if (b[i] < a[i]) faster++ }
	sort(a, na); sort(b, nb); sort(r, m)
	printf "A: median %.2f ms (range %.2f-%.2f, %d runs)\n", med(a, na)/1e6, a[1]/1e6, a[na]/1e6, na
	printf "B: median %.2f ms (range %.2f-%.2f, %d runs)\n", med(b, nb)/1e6, b[1]/1e6, b[nb]/1e6, nb
	printf "B/A pair by pair: median %.3f (range %.3f-%.3f); B faster in %d of %d pairs\n", med(r, m), r[1], r[m], faster, m
}' "$tmp/out"
echo "steal during run: $(( (s1 - s0) * 10 )) ms; load average before: $l0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
