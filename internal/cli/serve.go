package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/internal/config"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
)

func newServeCmd(e *env) *cobra.Command {
	var cfg server.Config
	var dataDir, roles, logFormat, configPath string
	var acceptLoss bool
	var providers, registrySigners, trustGateways, approvers, localBuses, devVaults []string
	var byok, requireApproval bool
	var policyOperators []string
	var maxStreamDuration time.Duration
	var maxStreamBytes int64
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run clawea's services (registry, issuer, jobs, model gateway) in one process",
		Long: `Run clawea's roles in one process over one store. --roles picks a subset
(comma-separated) so that roles can scale separately: ` + strings.Join(server.AllRoles, ", ") + `.

State lives in --db: by default an embedded SQLite file in the data directory;
a postgres:// DSN shares state between instances. Each role's Ed25519 key and
the admin token are created on first start in the data directory (mode 0600):
  <data-dir>/keys/<role>.key.json   <data-dir>/admin.token

Routes (admin = Authorization: Bearer <admin token>):
  registry  POST /v1/wpc (admin), GET /v1/wpc/{hash}, GET /v1/wpc,
            POST /v1/policy-lifecycle (operator-signed), GET /v1/policy-lifecycle[/{hash}]
  issuer    POST /v1/tokens/issue|revoke (admin), POST /v1/tokens/introspect,
            GET /v1/jwks, GET /v1/revocations/events|stream (admin)
  jobs      POST /v1/jobs (admin), GET /v1/jobs, GET /v1/jobs/{id},
            GET|POST /v1/jobs/{id}/events, POST /v1/jobs/{id}/finish,
            GET /v1/jobs/{id}/bundles|export (admin), POST|GET /v1/agents (admin)
  model-gateway
            POST /v1/chat/completions, /v1/responses (OpenAI), /v1/messages
            (Anthropic), /v1/proxy/{provider}[/v1/...], GET /v1/receipt/{nonce}
  tool-gateway
            /mcp (MCP streamable HTTP), GET /v1/tools, POST /v1/tools/call,
            GET /v1/approvals (admin), GET /v1/approvals/{id},
            POST /v1/approvals/{id}/decision (signed), GET|POST /v1/lockdown (admin)
  all       GET /v1/did, /healthz, /readyz, /metrics
Job routes also accept the job's own token; model routes take it as the API
key (Authorization: Bearer, x-api-key) or in X-CST. A credential may come in
X-CST, X-Scoped-Token or Authorization; headers that carry different
credentials are refused (STRICT_AUTH_HEADERS), as is an X-Run-Id naming
another job (TOKEN_JOB_MISMATCH) or an X-Policy-Hash other than the token's
pin (POLICY_HASH_MISMATCH). Every error is {"error":{"code","message"}};
every response carries X-Request-Id (the caller's, when well formed).

Connections are bounded: --read-header-timeout, --read-timeout (whole
request), --idle-timeout, --max-conns; --write-timeout is off by default so
that streamed model answers are not cut.

The model gateway runs when a provider is configured: --provider NAME=BASEURL
(repeatable; the key comes from CLAWEA_PROVIDER_<NAME>_API_KEY, or for openai,
anthropic, openrouter and azure-openai from OPENAI_API_KEY, ANTHROPIC_API_KEY,
OPENROUTER_API_KEY, AZURE_OPENAI_API_KEY), or the config file's model_gateway
section (see docs/model-gateway.md); a streamed answer is cut after
--max-stream-duration or --max-stream-bytes. The tool gateway runs when a
vault or a Service Bus namespace is configured: --devvault FILE, --local-bus
NAMESPACE, or the config file's tool_gateway section (see
docs/tool-gateway.md); approvers with --approver DID.

Policy lifecycle (docs/policy.md): a job starts only on a policy hash a
policy operator approved (clawea policy approve) unless
--require-policy-approval=false; operators are --policy-operator DID or the
config file's policy.operators. Stops gracefully on SIGINT or SIGTERM.`,
		Example: `  clawea serve
  clawea serve --provider openai=https://api.openai.com/v1
  clawea serve --config clawea.json --listen 0.0.0.0:8420 --db postgres://clawea@db/clawea`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.DataDir = keystore.Dir(dataDir)
			if configPath != "" {
				f, err := config.Load(configPath)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				f.ModelGateway.Apply(&cfg.ModelGateway)
				local, err := f.ToolGateway.Apply(&cfg.ToolGateway)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				cfg.LocalBuses = append(cfg.LocalBuses, local...)
				cfg.RegistrySigners = append(cfg.RegistrySigners, f.RegistrySigners...)
				cfg.Trust.GatewayReceiptSigners = append(cfg.Trust.GatewayReceiptSigners, f.TrustGateways...)
				if f.Policy != nil {
					cfg.Policy.Operators = append(cfg.Policy.Operators, f.Policy.Operators...)
					if f.Policy.RequireApproval != nil && !cmd.Flags().Changed("require-policy-approval") {
						requireApproval = *f.Policy.RequireApproval
					}
				}
			}
			cfg.Policy.RequireApproval = requireApproval
			cfg.Policy.Operators = append(cfg.Policy.Operators, policyOperators...)
			for _, op := range cfg.Policy.Operators {
				if _, err := didkey.PublicKey(op); err != nil {
					return withCode(ExitUsage, fmt.Errorf("policy operator %q (--policy-operator or policy.operators) is not an Ed25519 did:key", op))
				}
			}
			for _, p := range providers {
				pr, err := modelgw.ParseProviderFlag(p)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				cfg.ModelGateway.Providers = append(cfg.ModelGateway.Providers, pr)
			}
			cfg.ModelGateway.AllowBYOK = cfg.ModelGateway.AllowBYOK || byok
			if cmd.Flags().Changed("max-stream-duration") {
				cfg.ModelGateway.MaxStreamDuration = maxStreamDuration
			}
			if cmd.Flags().Changed("max-stream-bytes") {
				cfg.ModelGateway.MaxStreamBytes = maxStreamBytes
			}
			cfg.RegistrySigners = append(cfg.RegistrySigners, registrySigners...)
			cfg.Trust.GatewayReceiptSigners = append(cfg.Trust.GatewayReceiptSigners, trustGateways...)
			cfg.ToolGateway.Approvers = append(cfg.ToolGateway.Approvers, approvers...)
			cfg.LocalBuses = append(cfg.LocalBuses, localBuses...)
			for _, path := range devVaults {
				conn, err := devvault.ReadConn(path)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				c, err := conn.Client()
				if err != nil {
					return withCode(ExitUsage, err)
				}
				cfg.ToolGateway.Vaults = append(cfg.ToolGateway.Vaults, c)
			}
			if roles != "" {
				cfg.Roles = strings.Split(roles, ",")
			}
			if acceptLoss {
				switch {
				case cfg.DB == "":
					cfg.DB = "sqlite:" + filepath.Join(dataDir, "clawea.db") + "?accept_journal_loss=true"
				case strings.HasPrefix(cfg.DB, "sqlite:") && strings.Contains(cfg.DB, "?"):
					cfg.DB += "&accept_journal_loss=true"
				case strings.HasPrefix(cfg.DB, "sqlite:"):
					cfg.DB += "?accept_journal_loss=true"
				default:
					return withCode(ExitUsage, fmt.Errorf("--accept-journal-loss applies to the embedded SQLite store only"))
				}
			}
			switch logFormat {
			case "json":
				cfg.Log = slog.New(slog.NewJSONHandler(e.err, nil))
			case "text":
				cfg.Log = slog.New(slog.NewTextHandler(e.err, nil))
			default:
				return withCode(ExitUsage, fmt.Errorf("--log-format must be text or json"))
			}
			// The store reports journal damage through the default logger.
			slog.SetDefault(cfg.Log)
			server.TuneGC()
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
	fl.BoolVar(&acceptLoss, "accept-journal-loss", false, "open an SQLite store whose event journal lost records that may have been acknowledged (damaged last record, emptied journal), logging what was lost; without it the server refuses to start on such damage")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&configPath, "config", "", "configuration file (JSON; see docs/model-gateway.md)")
	fl.StringArrayVar(&providers, "provider", nil, "model provider NAME=BASEURL (repeatable)")
	fl.BoolVar(&byok, "byok", false, "let callers send their own provider key in X-Provider-API-Key")
	fl.DurationVar(&maxStreamDuration, "max-stream-duration", 10*time.Minute, "model gateway: cut a streamed answer after this long (STREAM_LIMIT_EXCEEDED)")
	fl.Int64Var(&maxStreamBytes, "max-stream-bytes", 64<<20, "model gateway: cut a streamed answer after this many bytes (STREAM_LIMIT_EXCEEDED)")
	fl.BoolVar(&requireApproval, "require-policy-approval", true, "start jobs only on policy hashes an operator approved (clawea policy approve); config policy.require_approval")
	fl.StringArrayVar(&policyOperators, "policy-operator", nil, "operator did:key whose signed policy approve/retire/freeze/unfreeze statements count (repeatable); config policy.operators")
	fl.StringArrayVar(&approvers, "approver", nil, "approver did:key whose signed decisions count (repeatable)")
	fl.StringArrayVar(&localBuses, "local-bus", nil, "serve this Service Bus namespace from the store's local queue (repeatable)")
	fl.StringArrayVar(&devVaults, "devvault", nil, "a dev vault's connection file (clawea devvault) to serve as a Key Vault (repeatable)")
	fl.StringArrayVar(&trustGateways, "trust-gateway", nil, "gateway signer did:key whose receipts finished bundles may carry (repeatable; gateways of this data directory are trusted)")
	d := server.DefaultHTTPLimits
	fl.DurationVar(&cfg.HTTP.ReadHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout, "time allowed to read a request's headers")
	fl.DurationVar(&cfg.HTTP.ReadTimeout, "read-timeout", d.ReadTimeout, "time allowed to read a whole request, body included")
	fl.DurationVar(&cfg.HTTP.WriteTimeout, "write-timeout", 0, "time allowed to write a response, streamed model answers included (0: none)")
	fl.DurationVar(&cfg.HTTP.IdleTimeout, "idle-timeout", d.IdleTimeout, "close keep-alive connections idle this long")
	fl.IntVar(&cfg.HTTP.MaxConns, "max-conns", d.MaxConns, "open connections at most; further clients wait to be accepted")
	fl.StringArrayVar(&registrySigners, "registry-signer", nil, "policy registry signer did:key a gateway trusts (repeatable; default: this data directory's registry)")
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
		fmt.Fprintf(e.err, "  %-13s signer %s\n", role, did)
	}
	if node.Models != nil {
		fmt.Fprintf(e.err, "  model providers: %s\n", strings.Join(node.Models.Providers(), ", "))
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
