package testkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"
	"time"
)

// Roles runs one test binary as several processes (an upstream, a proxy,
// a gateway, ...), so that benchmarks measure process hops as deployed and
// not Go's scheduler sharing cores inside one process. The environment
// variable Prefix+"_ROLE" names the role a child plays; a child prints one
// line (its URL) when ready and serves until its stdin closes.
type Roles struct{ Prefix string }

// Role is the role this process plays ("" for the parent).
func (r Roles) Role() string { return os.Getenv(r.Prefix + "_ROLE") }

// Spawn starts this binary in a role and returns the line it prints, and
// a function that stops it (closing its stdin, killing it after 5 s).
func (r Roles) Spawn(tb testing.TB, role string, env ...string) (string, func()) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), r.Prefix+"_ROLE="+role), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		tb.Fatalf("%s did not start: %v", role, err)
	}
	return strings.TrimSpace(line), func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	}
}

// Serve is the end of a child's TestMain: it serves until the parent
// closes stdin (or dies), then exits. In the role profiled, a CPU profile
// is written to Prefix+"_CPUPROFILE" when that is set, and an execution
// trace (go tool trace) to Prefix+"_TRACE".
func (r Roles) Serve(profiled string) {
	if path := os.Getenv(r.Prefix + "_CPUPROFILE"); path != "" && r.Role() == profiled {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	if path := os.Getenv(r.Prefix + "_TRACE"); path != "" && r.Role() == profiled {
		if f, err := os.Create(path); err == nil {
			trace.Start(f)
			defer f.Close()
		}
	}
	io.Copy(io.Discard, os.Stdin)
	pprof.StopCPUProfile()
	trace.Stop()
	os.Exit(0)
}

// IntEnv returns the positive integer in the environment variable name,
// or def.
func IntEnv(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}
