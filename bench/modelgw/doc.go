// Package modelgwbench measures the model gateway against calling the
// upstream directly and against a plain httputil.ReverseProxy, on loopback
// with 1 KiB responses: latency at light load, streaming time to first
// byte, and throughput at saturation. Run bench/modelgw.sh.
package modelgwbench
