package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
)

func newServeCmd(e *env) *cobra.Command {
	var cfg server.Config
	var dataDir, roles, logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run clawea's services (policy registry, ...) in one process",
		Long: `Run clawea's roles in one process over one store. --roles picks a subset
(comma-separated) so that roles can scale separately: ` + strings.Join(server.AllRoles, ", ") + `.

State lives in --db: by default an embedded SQLite file in the data directory;
a postgres:// DSN shares state between instances. Each role's Ed25519 key and
the admin token are created on first start in the data directory (mode 0600):
  <data-dir>/keys/<role>.key.json   <data-dir>/admin.token

Routes (admin = Authorization: Bearer <admin token>):
  registry  POST /v1/wpc (admin), GET /v1/wpc/{hash}, GET /v1/wpc
  issuer    POST /v1/tokens/issue|revoke (admin), POST /v1/tokens/introspect,
            GET /v1/jwks, GET /v1/revocations/events|stream (admin)
  jobs      POST /v1/jobs (admin), GET /v1/jobs, GET /v1/jobs/{id},
            GET|POST /v1/jobs/{id}/events, POST /v1/jobs/{id}/finish,
            GET /v1/jobs/{id}/bundles|export (admin), POST|GET /v1/agents (admin)
  all       GET /v1/did, /healthz, /readyz
Job routes also accept the job's own token. Stops gracefully on SIGINT or SIGTERM.`,
		Example: `  clawea serve
  clawea serve --listen 0.0.0.0:8420 --db postgres://clawea@db/clawea`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.DataDir = keystore.Dir(dataDir)
			if roles != "" {
				cfg.Roles = strings.Split(roles, ",")
			}
			switch logFormat {
			case "json":
				cfg.Log = slog.New(slog.NewJSONHandler(e.err, nil))
			case "text":
				cfg.Log = slog.New(slog.NewTextHandler(e.err, nil))
			default:
				return withCode(ExitUsage, fmt.Errorf("--log-format must be text or json"))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serve(ctx, e, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data-dir", string(keystore.Default()), "data directory (keys, admin token, SQLite file); env CLAWEA_DATA_DIR")
	fl.StringVar(&cfg.Listen, "listen", "127.0.0.1:8420", "address to listen on")
	fl.StringVar(&cfg.DB, "db", "", "store DSN: sqlite:PATH or postgres://... (default: SQLite in the data directory)")
	fl.StringVar(&roles, "roles", "", "comma-separated roles to run (default: all)")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func serve(ctx context.Context, e *env, cfg server.Config) error {
	node, err := server.Open(ctx, cfg)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	defer node.Close()
	url, err := node.Listen()
	if err != nil {
		return withCode(ExitUsage, err)
	}
	fmt.Fprintf(e.err, "clawea %s serving %s on %s (store: %s)\n", Version, strings.Join(rolesOf(node), ", "), url, node.Store.Backend())
	for role, did := range node.DIDs {
		fmt.Fprintf(e.err, "  %-9s signer %s\n", role, did)
	}
	for _, f := range node.Created {
		fmt.Fprintf(e.err, "  created %s (mode 0600)\n", f)
	}
	if err := node.Serve(ctx); err != nil {
		return withCode(ExitFail, err)
	}
	fmt.Fprintln(e.err, "clawea: stopped")
	return nil
}

func rolesOf(n *server.Node) []string {
	var out []string
	for r := range n.DIDs {
		out = append(out, r)
	}
	return out
}
