// Package cli implements the clawea command line, one file per command
// group. Run is the only entry point; commands write to the streams they
// are given so tests can drive them in-process.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Version is the clawea version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Exit codes shared by every command.
const (
	ExitOK    = 0
	ExitFail  = 1 // a verification or check failed
	ExitUsage = 2 // bad input, usage or an internal error
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that Run exits with code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// silent exits with code without printing anything more.
func silent(code int) error { return &exitError{code: code} }

type env struct {
	in       io.Reader
	out, err io.Writer
}

// Run executes the clawea command line and returns the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{in: stdin, out: stdout, err: stderr}
	root := &cobra.Command{
		Use:   "clawea",
		Short: "Permissioned execution for enterprise AI agents",
		Long: `clawea lets AI agents act on production systems only through gateways that
enforce signed policy, with short-lived job-scoped tokens, and leaves signed
evidence of every model and tool call that anyone can verify offline.

Start with:
  clawea demo                      run a complete job on the built-in defaults
  clawea verify FILE               verify a proof bundle, receipt or export offline
  clawea verify conformance M      run a Clawsig conformance manifest

Exit codes: 0 success, 1 a check failed, 2 usage or input error.`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(ExitUsage, fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath()))
	})
	root.AddCommand(newVerifyCmd(e), newDemoCmd(e), newKeysCmd(e), newPolicyCmd(e), newServeCmd(e), newTokenCmd(e), newJobCmd(e), newAgentCmd(e),
		newApproveCmd(e), newLockdownCmd(e), newConnectorCmd(e), newMCPCmd(e), newDevVaultCmd(e), newOpenClawCmd(e), newSecretRefCmd(e))
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "clawea:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "clawea:", err)
	return ExitUsage
}

// printJSON writes v as one indented JSON document.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
