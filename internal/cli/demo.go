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
		Long: `Run clawea's demonstration job on the embedded defaults, with nothing to set up:
it creates an agent key and a gateway key, makes two model calls through the
gateway (against a local test model) and one tool call, each leaving a signed
receipt bound to the job's hash-chained event log, signs the job's proof
bundle with the agent key, writes the bundle, its URM and a trust config,
and verifies the bundle offline in strict mode.

The files stay in --data-dir (default: a new temporary folder) so you can
verify them again with the printed command. Exit 0 when the bundle verifies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := demo.Options{DataDir: dataDir, Log: e.out}
			if asJSON {
				opt.Log = e.err
			}
			s, err := demo.Run(opt)
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
