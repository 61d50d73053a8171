// Package amqpstub runs sbstub.py, a small AMQP 1.0 broker that speaks just
// enough of the Azure Service Bus dialect for the azservicebus SDK, so that
// the Service Bus connector can be contract-tested without Azure or Docker.
//
// The broker is a Python program (python3 with the qpid-proton bindings;
// on Debian: apt-get install python3-qpid-proton). Tests call Start, which
// skips the test when no such interpreter is found, unless the environment
// variable CLAWEA_REQUIRE_AMQP=1 is set, in which case the test fails.
// CLAWEA_PYTHON names the interpreter to use; otherwise "python3" on PATH
// and then /usr/bin/python3 are tried.
//
// The stub is a test double, not an emulator: see the doc comment at the top
// of sbstub.py for what it does and does not emulate.
package amqpstub

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed sbstub.py
var script []byte

// RequireEnv is the environment variable that turns a missing python3 or
// proton module from a skip into a failure.
const RequireEnv = "CLAWEA_REQUIRE_AMQP"

// PythonEnv is the environment variable that names the Python interpreter.
const PythonEnv = "CLAWEA_PYTHON"

// DebianPackages are the Debian packages that provide what the stub needs.
const DebianPackages = "python3 python3-qpid-proton"

const (
	startTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
	startTries   = 3
)

// Stub is a running stub broker.
type Stub struct {
	// Host and Port are where the broker listens.
	Host string
	Port int

	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *syncBuffer
	done chan struct{}
	err  error // set before done is closed
}

// Addr is host:port of the broker.
func (s *Stub) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// ConnectionString is an azservicebus connection string for the broker (plain
// AMQP, SASL ANONYMOUS; the key is a dummy).
func (s *Stub) ConnectionString() string {
	return "Endpoint=sb://" + s.Addr() + ";SharedAccessKeyName=x;SharedAccessKey=dGVzdA==;UseDevelopmentEmulator=true"
}

// Output returns what the broker has written to stdout and stderr so far.
func (s *Stub) Output() string { return s.out.String() }

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  error
)

// Python returns an interpreter that can import proton, or an error saying
// what was tried.
func Python() (string, error) {
	pythonOnce.Do(func() { pythonPath, pythonErr = findPython() })
	return pythonPath, pythonErr
}

func findPython() (string, error) {
	var candidates []string
	if p := os.Getenv(PythonEnv); p != "" {
		candidates = append(candidates, p)
	} else {
		if p, err := exec.LookPath("python3"); err == nil {
			candidates = append(candidates, p)
		}
		candidates = append(candidates, "/usr/bin/python3")
	}
	var problems []string
	seen := map[string]bool{}
	for _, c := range candidates {
		if seen[c] {
			continue
		}
		seen[c] = true
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, c, "-c", "import proton").CombinedOutput()
		cancel()
		if err == nil {
			return c, nil
		}
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:] // the last line of a traceback names the problem
		}
		problems = append(problems, fmt.Sprintf("%s: %s", c, msg))
	}
	if len(problems) == 0 {
		return "", errors.New("no python3 interpreter found")
	}
	return "", fmt.Errorf("no python3 with the proton module (%v)", problems)
}

// Start starts a stub broker on a free loopback port and stops it when the
// test ends. Extra arguments are passed to sbstub.py (for example
// "--lock-seconds", "2", "--absent", "missing-queue", "--deny", "secret").
// It skips the test when python3 or proton is missing, unless
// CLAWEA_REQUIRE_AMQP=1.
func Start(t testing.TB, args ...string) *Stub {
	t.Helper()
	py, err := Python()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("amqpstub: %v; install the Debian packages %q (%s=1 makes this a failure)", err, DebianPackages, RequireEnv)
		}
		t.Skipf("amqpstub: %v; install the Debian packages %q or set %s to run the Service Bus contract tests", err, DebianPackages, PythonEnv)
	}
	path := filepath.Join(t.TempDir(), "sbstub.py")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatalf("amqpstub: writing the stub: %v", err)
	}
	var lastErr error
	for range startTries {
		s, err := launch(py, path, args)
		if err == nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Errorf("amqpstub: %v", err)
				}
				if t.Failed() || testing.Verbose() {
					t.Logf("amqpstub output:\n%s", s.Output())
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("amqpstub: %v", lastErr)
	return nil
}

func launch(py, path string, args []string) (*Stub, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Stub{Host: "127.0.0.1", Port: port, out: &syncBuffer{}, done: make(chan struct{})}
	argv := append([]string{path, "--host", s.Host, "--port", strconv.Itoa(port), "--exit-on-stdin-eof"}, args...)
	s.cmd = exec.Command(py, argv...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.in, err = s.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", py, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("stub exited before listening (%v):\n%s", s.err, s.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("stub did not accept connections on %s within %s:\n%s", s.Addr(), startTimeout, s.Output())
		}
	}
}

// stop ends the broker: closing stdin makes it exit; it is killed if it has
// not exited within a few seconds.
func (s *Stub) stop() error {
	_ = s.in.Close()
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("stub (pid %d) did not exit", s.cmd.Process.Pid)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const limit = 1 << 20
	if b.buf.Len() > limit {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
