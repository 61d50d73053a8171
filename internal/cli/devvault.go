package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/keystore"
)

func newDevVaultCmd(e *env) *cobra.Command {
	var dataDir, vault string
	var port int
	var seeds, faults []string
	cmd := &cobra.Command{
		Use:   "devvault",
		Short: "Run the built-in development Key Vault (TLS, the secrets REST subset the Azure SDK uses)",
		Long: `Run a local Key Vault for development and demos: an HTTPS server on 127.0.0.1
speaking the secrets API the official Azure SDK uses (set, get, versions, soft
delete, recover, purge, listings), with a self-signed certificate and one
static token. Secrets persist in <data-dir>/devvault/<vault>.json (mode 0600,
plain text: development only). A connection file for clawea serve is written
to <data-dir>/devvault/<vault>.conn.json; point the config file at it:

  {"tool_gateway": {"vaults": [{"name": "kv-dev", "devvault": "<data-dir>/devvault/kv-dev.conn.json"}]}}

Seed secrets with --seed PATH=VALUE (repeatable). For testing error handling,
--fault PATH=STATUS[:RETRY_AFTER_SECONDS] or PATH=hang (repeatable; PATH "*"
for every request) makes requests for a secret answer an Azure-shaped error
(e.g. 403, 429:5, 503) or never answer. Stops on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := filepath.Join(dataDir, "devvault")
			// A fresh data directory has no devvault folder yet.
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return withCode(ExitUsage, err)
			}
			srv, err := devvault.New(devvault.Options{Vault: vault, Port: port, PersistPath: filepath.Join(dir, vault+".json")})
			if err != nil {
				return withCode(ExitUsage, err)
			}
			for _, s := range seeds {
				path, value, ok := strings.Cut(s, "=")
				if !ok || path == "" {
					return withCode(ExitUsage, fmt.Errorf("--seed %q: want PATH=VALUE", s))
				}
				name, err := keyvaultName(path)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				if _, err := srv.Put(name, value, ""); err != nil {
					return withCode(ExitUsage, err)
				}
			}
			for _, f := range faults {
				path, spec, ok := strings.Cut(f, "=")
				if !ok || path == "" {
					return withCode(ExitUsage, fmt.Errorf("--fault %q: want PATH=STATUS[:RETRY_AFTER_SECONDS] or PATH=hang", f))
				}
				name := devvault.FaultAll
				if path != devvault.FaultAll {
					if name, err = keyvaultName(path); err != nil {
						return withCode(ExitUsage, err)
					}
				}
				fault, err := devvault.ParseFault(spec)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				if err := srv.SetFault(name, fault); err != nil {
					return withCode(ExitUsage, err)
				}
			}
			url, err := srv.Start()
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer srv.Close()
			conn := filepath.Join(dir, vault+".conn.json")
			if err := devvault.WriteConn(conn, srv.Conn()); err != nil {
				return withCode(ExitUsage, err)
			}
			fmt.Fprintf(e.out, "dev vault %s serving %s\nconnection file %s\n", srv.Vault(), url, conn)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			fmt.Fprintln(e.err, "devvault: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", string(keystore.Default()), "data directory")
	cmd.Flags().StringVar(&vault, "vault", "kv-dev", "vault name (as in kv://<vault>/...)")
	cmd.Flags().IntVar(&port, "port", 0, "port on 127.0.0.1 (0: a free one)")
	cmd.Flags().StringArrayVar(&seeds, "seed", nil, "put a secret PATH=VALUE at start (repeatable)")
	cmd.Flags().StringArrayVar(&faults, "fault", nil, "make requests for a secret fail: PATH=STATUS[:RETRY_AFTER_SECONDS] or PATH=hang (repeatable; testing only)")
	return cmd
}

// keyvaultName maps a secret path (agent/app/db) to its Key Vault name.
func keyvaultName(path string) (string, error) {
	name, err := keyvault.ToName(path)
	if err != nil {
		return "", errors.New("secret path " + path + ": segments of letters, digits and '-' separated by '/'")
	}
	return name, nil
}
