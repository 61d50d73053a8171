// Package server assembles clawea's roles (policy registry, token issuer,
// jobs, model gateway; the tool gateway and Trust Pulse as they land) into
// one HTTP server over one store, with health and metrics endpoints and
// graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/clawea/clawea/internal/connector/localbus"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/issuer"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/metrics"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/policycache"
	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/store"
	_ "github.com/clawea/clawea/internal/store/postgres" // postgres:// DSNs
	_ "github.com/clawea/clawea/internal/store/sqlite"   // the embedded default
	"github.com/clawea/clawea/internal/tokenstate"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
	"github.com/clawea/clawea/verify"
)

// Roles a server can run. The jobs role mints tokens, so it runs with the
// issuer.
const (
	RoleRegistry     = "registry"
	RoleIssuer       = "issuer"
	RoleJobs         = "jobs"
	RoleModelGateway = "model-gateway"
	RoleToolGateway  = "tool-gateway"
)

// AllRoles lists every role. clawea serve runs all of them by default,
// except a gateway that has nothing configured (no provider; no vault and
// no namespace).
var AllRoles = []string{RoleRegistry, RoleIssuer, RoleJobs, RoleModelGateway, RoleToolGateway}

// Config is a node's configuration.
type Config struct {
	DataDir keystore.Dir
	Listen  string   // host:port; default 127.0.0.1:8420
	DB      string   // DSN; default sqlite:<data-dir>/clawea.db
	Roles   []string // default AllRoles
	Log     *slog.Logger
	// Trust lists extra gateway signers whose receipts finished bundles may
	// carry (the node's own gateways are trusted automatically).
	Trust verify.Config
	// SegmentEvents overrides the events per bundle (tests).
	SegmentEvents int
	// RegistrySigners are the policy registry signers a gateway accepts
	// when the registry role runs elsewhere (default: the data
	// directory's registry key, when present).
	RegistrySigners []string
	// ModelGateway configures the model gateway role (providers, limits).
	// Key, Tokens, Chain, Store, Policies, Metrics and Log are set here.
	ModelGateway modelgw.Options
	// ToolGateway configures the tool gateway role (vaults, namespaces,
	// approvers). Key, CommitSecret, Tokens, Chain, Store, Policies,
	// Secrets, Metrics, Log and AdminToken are set here.
	ToolGateway toolgw.Options
	// LocalBuses are Service Bus namespaces served from the store's local
	// queue.
	LocalBuses []string
	// HTTP bounds connections (zero fields take DefaultHTTPLimits').
	HTTP HTTPLimits
	// WrapStore, when set, wraps the opened store (tests inject failures).
	WrapStore func(store.Store) store.Store
	// Policy configures the policy lifecycle (operators, approval).
	Policy PolicyLifecycle
}

// PolicyLifecycle configures the policy lifecycle. The zero value (a
// library default, kept by tests) starts jobs on any published,
// unretired hash inside any freeze; clawea serve requires approval unless
// told otherwise (policy.require_approval).
type PolicyLifecycle struct {
	// RequireApproval refuses to start a job on a hash no operator
	// approved (POLICY_NOT_APPROVED).
	RequireApproval bool
	// Operators are the did:keys that may sign approve, retire, freeze
	// and unfreeze statements.
	Operators []string
}

// HTTPLimits bound the server's connections.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. It applies to streamed
	// model responses too, so it is off (0) by default: streams end when
	// the provider's stream does, and the gateways bound upstream calls.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// MaxConns caps open connections; further ones wait to be accepted.
	MaxConns int
}

// DefaultHTTPLimits are clawea serve's defaults.
var DefaultHTTPLimits = HTTPLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
	IdleTimeout: 120 * time.Second, MaxConns: 1024}

func (l HTTPLimits) withDefaults() HTTPLimits {
	d := DefaultHTTPLimits
	if l.ReadHeaderTimeout > 0 {
		d.ReadHeaderTimeout = l.ReadHeaderTimeout
	}
	if l.ReadTimeout > 0 {
		d.ReadTimeout = l.ReadTimeout
	}
	if l.WriteTimeout > 0 {
		d.WriteTimeout = l.WriteTimeout
	}
	if l.IdleTimeout > 0 {
		d.IdleTimeout = l.IdleTimeout
	}
	if l.MaxConns > 0 {
		d.MaxConns = l.MaxConns
	}
	return d
}

// TuneGC sets the garbage collector for a serving process, or a one-shot
// verification: GOGC=400 unless the environment sets GOGC. The gateways
// allocate per call and keep a small live heap; collecting four times less
// often costs a few tens of megabytes and takes collection work off the
// request path. A verification of a large bundle allocates a few times its
// size; on two cores the collector's work competes with the receipt checks.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// Version is reported in bundles' harness metadata.
var Version = "dev"

// Node is a running server.
type Node struct {
	cfg     Config
	Store   store.Store
	Handler http.Handler
	DIDs    map[string]string // role -> signer did:key
	Created []string          // key and token files created at start
	Mirror  *tokenstate.Mirror
	Issuer  *issuer.Issuer
	Jobs    *jobs.Service
	Tokens  *token.Verifier
	Models  *modelgw.Gateway
	Tools   *toolgw.Gateway
	Metrics *metrics.Registry
	// Secrets is the redaction registry the gateways share.
	Secrets *redact.Registry
	// Routes lists every registered route pattern.
	Routes []string
	// lifeChain records policy lifecycle changes into running jobs.
	lifeChain *evidence.Chain
	listener  net.Listener
	srv       *http.Server
}

// Open prepares a node: it opens the store, loads or creates each role's
// key and the admin token, and builds the routes. Nothing listens yet.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = keystore.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8420"
	}
	if cfg.DB == "" {
		cfg.DB = "sqlite:" + string(cfg.DataDir) + "/clawea.db"
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = []string{RoleRegistry, RoleIssuer, RoleJobs}
		if len(cfg.ModelGateway.Providers) > 0 {
			cfg.Roles = append(cfg.Roles, RoleModelGateway)
		}
		if len(cfg.ToolGateway.Vaults)+len(cfg.ToolGateway.Buses)+len(cfg.LocalBuses)+len(cfg.ToolGateway.Upstreams) > 0 {
			cfg.Roles = append(cfg.Roles, RoleToolGateway)
		}
	}
	for _, r := range cfg.Roles {
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("server: unknown role %q (known: %s)", r, strings.Join(AllRoles, ", "))
		}
	}
	if slices.Contains(cfg.Roles, RoleJobs) && !slices.Contains(cfg.Roles, RoleIssuer) {
		return nil, errors.New("server: the jobs role mints job tokens and needs the issuer role in the same process")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	secrets := redact.New()
	// No secret a gateway fetched reaches a log line.
	cfg.Log = slog.New(secrets.Handler(cfg.Log.Handler()))
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if cfg.WrapStore != nil {
		st = cfg.WrapStore(st)
	}
	n := &Node{cfg: cfg, Store: st, DIDs: map[string]string{}, Metrics: metrics.NewRegistry(), Secrets: secrets}
	fail := func(err error) (*Node, error) {
		if n.Tools != nil {
			n.Tools.Close()
		}
		st.Close()
		return nil, err
	}
	mux := httpapi.NewMux()
	tok, created, err := cfg.DataDir.AdminToken()
	if err != nil {
		return fail(err)
	}
	if created {
		n.Created = append(n.Created, cfg.DataDir.TokenPath())
	}
	roleKey := func(role string) (*signer.Key, error) {
		key, created, err := cfg.DataDir.Key(role)
		if err != nil {
			return nil, err
		}
		if created {
			n.Created = append(n.Created, cfg.DataDir.KeyPath(role))
		}
		n.DIDs[role] = key.DID()
		return key, nil
	}
	if slices.Contains(cfg.Roles, RoleRegistry) {
		key, err := roleKey(RoleRegistry)
		if err != nil {
			return fail(err)
		}
		(&registry.Server{Store: st, Signer: key, Authorize: registry.AdminToken(tok), Log: cfg.Log,
			Lifecycle: &registry.Lifecycle{Store: st, Operators: cfg.Policy.Operators, RequireApproval: cfg.Policy.RequireApproval,
				OnChange: n.policyChanged}}).Register(mux)
	}
	gateway := slices.Contains(cfg.Roles, RoleModelGateway) || slices.Contains(cfg.Roles, RoleToolGateway)
	if slices.Contains(cfg.Roles, RoleIssuer) || gateway {
		// Token state (issuer keys, revocations, jobs) mirrored from the
		// store, for the issuer and for the gateways' verifier.
		if n.Mirror, err = tokenstate.New(ctx, st, tokenstate.Options{Log: cfg.Log}); err != nil {
			return fail(err)
		}
	}
	audiences := issuer.DefaultAudiences
	if slices.Contains(cfg.Roles, RoleIssuer) {
		if _, err := roleKey(RoleIssuer); err != nil {
			return fail(err)
		}
		if n.Issuer, err = issuer.New(ctx, st, issuer.Options{DataDir: cfg.DataDir, State: n.Mirror, Log: cfg.Log, OnRevoke: n.Mirror.NoteRevoked}); err != nil {
			return fail(err)
		}
		n.Issuer.Register(mux, tok)
		audiences = n.Issuer.Audiences()
	}
	if n.Mirror != nil {
		if err := n.Mirror.Sync(ctx); err != nil {
			return fail(err)
		}
		n.Tokens = token.NewVerifier(n.Mirror, token.Options{Audiences: audiences, RequireJob: true})
	}
	var chain *evidence.Chain
	var policies *registry.Local
	if gateway {
		signers := cfg.RegistrySigners
		if len(signers) == 0 {
			if did := n.DIDs[RoleRegistry]; did != "" {
				signers = []string{did}
			} else if k, err := signer.LoadFile(cfg.DataDir.KeyPath(RoleRegistry)); err == nil {
				signers = []string{k.DID()}
			} else {
				return fail(errors.New("server: a gateway needs the registry's signer: run the registry role here, share its data directory, or pass --registry-signer"))
			}
		}
		chain = evidence.NewChain(st, secrets, cfg.SegmentEvents, nil)
		policies = registry.NewLocal(st, policy.VerifyOptions{Signers: signers})
	}
	if slices.Contains(cfg.Roles, RoleModelGateway) {
		key, err := roleKey(RoleModelGateway)
		if err != nil {
			return fail(err)
		}
		g := cfg.ModelGateway
		g.Key, g.Tokens, g.Store, g.Metrics, g.Log = key, n.Tokens, st, n.Metrics, cfg.Log
		g.Chain, g.Policies, g.AdminToken = chain, policies, tok
		if g.Evidence == nil {
			g.Evidence = func(jobID string, blobs ...[]byte) error { return evidence.Check(secrets, jobID, blobs...) }
		}
		if g.RedactRequest == nil {
			g.RedactRequest = secrets.JSON
		}
		if n.Models, err = modelgw.New(g); err != nil {
			return fail(err)
		}
		n.Models.Register(mux)
		cfg.Trust.GatewayReceiptSigners = append(cfg.Trust.GatewayReceiptSigners, key.DID())
	}
	if slices.Contains(cfg.Roles, RoleToolGateway) {
		key, err := roleKey(RoleToolGateway)
		if err != nil {
			return fail(err)
		}
		commit, created, err := cfg.DataDir.Secret("tool-gateway-commitments")
		if err != nil {
			return fail(err)
		}
		if created {
			n.Created = append(n.Created, cfg.DataDir.SecretPath("tool-gateway-commitments"))
		}
		g := cfg.ToolGateway
		g.Key, g.CommitSecret, g.Tokens, g.Store, g.Metrics, g.Log = key, commit, n.Tokens, st, n.Metrics, cfg.Log
		g.Chain, g.Policies, g.Secrets, g.AdminToken = chain, policies, secrets, tok
		for _, ns := range cfg.LocalBuses {
			g.Buses = append(g.Buses, localbus.New(st, ns, localbus.Options{}))
		}
		if n.Tools, err = toolgw.New(g); err != nil {
			return fail(err)
		}
		n.Tools.Register(mux)
	}
	if slices.Contains(cfg.Roles, RoleJobs) {
		// Gateways sharing this data directory are trusted too, when they
		// run in other processes.
		for _, role := range []string{RoleModelGateway} {
			if k, err := signer.LoadFile(cfg.DataDir.KeyPath(role)); err == nil && !slices.Contains(cfg.Trust.GatewayReceiptSigners, k.DID()) {
				cfg.Trust.GatewayReceiptSigners = append(cfg.Trust.GatewayReceiptSigners, k.DID())
			}
		}
		key, err := roleKey(RoleJobs)
		if err != nil {
			return fail(err)
		}
		custody, err := jobs.OpenCustody(cfg.DataDir)
		if err != nil {
			return fail(err)
		}
		var jobPolicies policycache.Source
		if policies != nil { // the job:start decisions use the gateways' verified policies
			jobPolicies = policies
		}
		n.Jobs, err = jobs.New(st, jobs.Options{Issuer: n.Issuer, Key: key, Custody: custody, Log: cfg.Log, Trust: cfg.Trust, Policies: jobPolicies,
			AdmitPolicy: func(ctx context.Context, hash string) error {
				return n.Mirror.AdmitStart(ctx, hash, cfg.Policy.RequireApproval)
			},
			Version: Version, SegmentEvents: cfg.SegmentEvents, Secrets: secrets, OnChange: func(j store.Job) {
				n.Mirror.NoteJob(j)
				if j.Status == store.JobFinished {
					secrets.Forget(j.ID) // the job's secrets need no redaction any more
				}
			}})
		if err != nil {
			return fail(err)
		}
		(&jobs.API{Service: n.Jobs, Tokens: n.Tokens, AdminToken: tok}).Register(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"status": "ok", "roles": cfg.Roles}
		if n.Tools != nil {
			if ws := n.Tools.Warnings(); len(ws) > 0 {
				body["warnings"] = ws
			}
		}
		httpapi.WriteJSON(w, http.StatusOK, body)
	})
	mux.HandleFunc("GET /readyz", n.ready)
	mux.Handle("GET /metrics", n.Metrics.Handler())
	mux.HandleFunc("GET /v1/did", func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"roles": n.DIDs}
		if n.Issuer != nil {
			if info, err := n.Issuer.DIDInfo(r.Context()); err == nil {
				for k, v := range info {
					body[k] = v
				}
			}
		}
		httpapi.WriteJSON(w, http.StatusOK, body)
	})
	n.lifeChain = chain
	if n.lifeChain == nil {
		n.lifeChain = evidence.NewChain(st, secrets, cfg.SegmentEvents, nil)
	}
	n.Routes = mux.Routes()
	n.Handler = httpapi.Middleware(mux, cfg.Log)
	return n, nil
}

// policyChanged runs after the registry logs a lifecycle change: this
// instance's mirror catches up at once (others within their poll), and the
// change is appended to the chain of every running job it refuses.
func (n *Node) policyChanged(ctx context.Context, c store.PolicyChange) (int, error) {
	if n.Mirror != nil {
		if err := n.Mirror.SyncPolicies(ctx); err != nil {
			n.cfg.Log.WarnContext(ctx, "policy lifecycle refresh failed", slog.String("error", err.Error()))
		}
	}
	return registry.RecordInJobs(ctx, n.Store, n.lifeChain, c)
}

func (n *Node) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := n.Store.ListWPCs(ctx, "", 1); err != nil {
		n.cfg.Log.WarnContext(ctx, "not ready: store unavailable", "request_id", httpapi.RequestID(r.Context()), "err", err.Error())
		httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": n.Store.Backend(),
			"error": map[string]string{"code": httpapi.CodeStoreUnavailable, "message": "the store is unavailable"}})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": n.Store.Backend()})
}

// Listen binds the configured address and returns the base URL.
func (n *Node) Listen() (string, error) {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("server: listen %s: %w", n.cfg.Listen, err)
	}
	n.listener = limitListener(ln, n.cfg.HTTP.withDefaults().MaxConns)
	return "http://" + ln.Addr().String(), nil
}

// Serve serves until ctx ends, then shuts down gracefully (10 s).
func (n *Node) Serve(ctx context.Context) error {
	if n.listener == nil {
		if _, err := n.Listen(); err != nil {
			return err
		}
	}
	if n.Mirror != nil {
		go n.Mirror.Run(ctx)
	}
	if n.Tools != nil {
		go func() {
			t := time.NewTicker(15 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					n.Tools.Sweep(ctx) // expire undecided approvals
				}
			}
		}()
	}
	lim := n.cfg.HTTP.withDefaults()
	n.srv = &http.Server{Handler: n.Handler, ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(n.cfg.Log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- n.srv.Serve(n.listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.srv.Shutdown(sctx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Close releases the store.
func (n *Node) Close() error {
	if n.Tools != nil {
		n.Tools.Close() // stops the upstream MCP servers
	}
	return n.Store.Close()
}
