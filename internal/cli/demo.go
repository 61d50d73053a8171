package cli

import (
	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/demo"
)

func newDemoCmd(e *env) *cobra.Command {
	var dataDir, realProvider string
	var asJSON, interactive bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a complete job on the built-in defaults and verify its evidence",
		Long: `Run clawea's demonstration job on the embedded defaults, with nothing to set up.
In this process it starts a clawea node (registry, issuer, jobs, model gateway
and tool gateway; SQLite; keys created in the data directory; loopback only), a
local test model (an OpenAI-compatible server that counts words; not a language
model), the built-in dev vault (TLS; the real Azure SDK client talks to it) and
a local Service Bus queue, then runs the job an agent would:

  model call          through the model gateway, the job's token as the API key
  secret read         keyvault_get_secret over MCP: allowed, the value comes back redacted
  denied read         a secret under prod/: refused with the deciding statement
  careless prompt     a prompt carrying the secret reaches the provider redacted
  approval-gated write  keyvault_set_secret waits; the demo's approver signs "allow"
                      (a printed notice; --interactive asks you), the retry runs
  Service Bus sends   allowed to orders-staging; refused to orders-prod and when oversize
  refused model       a model the policy does not allow

then finishes the job (the bundle is signed with the custodial agent key,
checked in strict mode, stored, and the token revoked), shows the token refused
afterwards, exports the evidence and verifies it offline in strict mode.

With --real-provider openai (or anthropic) the demo also makes one call to that
provider with the key in OPENAI_API_KEY (ANTHROPIC_API_KEY); the key stays in
the gateway and the call gets its receipt like any other.

The files stay in --data-dir (default: a new temporary folder) so you can verify
them again with the printed command. Exit 0 when the bundle verifies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := demo.Options{DataDir: dataDir, Log: e.out, RealProvider: realProvider, Interactive: interactive, In: e.in}
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
	cmd.Flags().BoolVar(&interactive, "interactive", false, "ask before the approval-gated write instead of approving as the demo's approver")
	cmd.Flags().StringVar(&realProvider, "real-provider", "", "also call a real provider: openai or anthropic (key from OPENAI_API_KEY / ANTHROPIC_API_KEY)")
	return cmd
}
