package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/signer"
)

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and inspect Ed25519 signing keys",
		Long: `Ed25519 keys identify agents, gateways, approvers and registries as did:key.
Key files are OKP JSON Web Keys (with the private part) written with mode 0600;
clawea refuses to read a key file that group or others can read.`,
	}
	var out string
	var force, asJSON bool
	newCmd := &cobra.Command{
		Use:   "new [--out FILE]",
		Short: "Write a new Ed25519 key file (0600) and print its did:key",
		Example: `  clawea keys new --out agent.key.json
  clawea keys new --out gw.key.json --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := signer.Generate()
			if err != nil {
				return withCode(ExitUsage, err)
			}
			if err := signer.WriteFile(out, k, force); err != nil {
				if errors.Is(err, signer.ErrExist) {
					err = fmt.Errorf("%w (use --force to replace it)", err)
				}
				return withCode(ExitUsage, err)
			}
			return printKey(e, k, out, asJSON)
		},
	}
	newCmd.Flags().StringVar(&out, "out", "clawea.key.json", "key file to write")
	newCmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	newCmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")

	var showJSON bool
	showCmd := &cobra.Command{
		Use:   "show FILE",
		Short: "Print the did:key of a key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := signer.LoadFile(args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			return printKey(e, k, args[0], showJSON)
		},
	}
	showCmd.Flags().BoolVar(&showJSON, "json", false, "print a JSON object")
	cmd.AddCommand(newCmd, showCmd, newKeysRotateCmd(e), newKeysRevokeCmd(e))
	return cmd
}

func printKey(e *env, k *signer.Key, path string, asJSON bool) error {
	if asJSON {
		return printJSON(e.out, map[string]string{
			"did": k.DID(), "kid": signer.KID(k.Public()), "public_key_b64u": b64u.Encode(k.Public()), "path": path,
		})
	}
	fmt.Fprintln(e.out, k.DID())
	fmt.Fprintf(e.err, "key file: %s (mode 0600), kid %s\n", path, signer.KID(k.Public()))
	return nil
}
