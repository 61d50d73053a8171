// Package policybench compares clawea's WPC evaluator with cedar-go on
// equivalent policies. It holds benchmarks only: run
//
//	go test ./bench/policy -run '^$' -bench . -benchmem
package policybench
