// Package modelgwbench measures the model gateway against calling the
// upstream directly and against a plain httputil.ReverseProxy, on loopback
// with 1 KiB responses: latency at light load, streaming time to first
// byte, and throughput at saturation. Run bench/modelgw.sh.
//
// To look inside the gateway's process during a run, set
// MODELGW_BENCH_CPUPROFILE=FILE (a CPU profile, for go tool pprof) or
// MODELGW_BENCH_TRACE=FILE (an execution trace, for go tool trace); BENCH_N,
// BENCH_CLIENTS and BENCH_TOTAL shrink the phases you do not need.
package modelgwbench
