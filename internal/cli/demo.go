package cli

import (
	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/demo"
)

func newDemoCmd(e *env) *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a complete job on the built-in defaults and verify its evidence",
		Long: `Run clawea's demonstration job on the embedded defaults, with nothing to set up.
It starts a node in this process (registry, issuer and jobs roles, SQLite,
keys created in the data directory, loopback only) and drives it through its
HTTP APIs as an operator and an agent would: publishes the example policy
demo-job, creates a custodial agent, opens a job (the issuer mints a token
pinned to the policy and bound to the job), appends the job's events with that
token, finishes the job (the bundle is signed with the agent key, checked in
strict mode, stored, and the token revoked), shows that the token is refused
afterwards, exports the evidence and verifies it offline in strict mode.

The files stay in --data-dir (default: a new temporary folder) so you can
verify them again with the printed command. Exit 0 when the bundle verifies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := demo.Options{DataDir: dataDir, Log: e.out}
			if asJSON {
				opt.Log = e.err
			}
			s, err := demo.Run(cmd.Context(), opt)
			if asJSON && s != nil {
				_ = printJSON(e.out, s)
			}
			if err != nil {
				return withCode(ExitFail, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "folder for keys and evidence (default: a new temporary folder)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON summary (narration goes to stderr)")
	return cmd
}
