package cli

import (
	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/demo"
)

func newDemoCmd(e *env) *cobra.Command {
	var dataDir, realProvider string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a complete job on the built-in defaults and verify its evidence",
		Long: `Run clawea's demonstration job on the embedded defaults, with nothing to set up.
It starts a node in this process (registry, issuer, jobs and model gateway
roles, SQLite, keys created in the data directory, loopback only) and a local
test model (an OpenAI-compatible server that counts words; not a language
model), then drives the node through its HTTP APIs as an operator and an agent
would: publishes the example policy demo-job, creates a custodial agent, opens
a job (the issuer mints a token pinned to the policy and bound to the job),
makes model calls through the gateway with that token (one plain, one
streamed, one the policy refuses), appends the job's other events, finishes
the job (the bundle is signed with the agent key, checked in strict mode,
stored, and the token revoked), shows that the token is refused afterwards,
exports the evidence and verifies it offline in strict mode.

With --real-provider openai (or anthropic) the demo also makes one call to that
provider with the key in OPENAI_API_KEY (ANTHROPIC_API_KEY); the key stays in
the gateway and the call gets its receipt like any other.

The files stay in --data-dir (default: a new temporary folder) so you can
verify them again with the printed command. Exit 0 when the bundle verifies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := demo.Options{DataDir: dataDir, Log: e.out, RealProvider: realProvider}
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
	cmd.Flags().StringVar(&realProvider, "real-provider", "", "also call a real provider: openai or anthropic (key from OPENAI_API_KEY / ANTHROPIC_API_KEY)")
	return cmd
}
