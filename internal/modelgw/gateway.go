// Package modelgw is clawea's model gateway: an OpenAI- and
// Anthropic-compatible proxy that agents reach models through. For every
// call it checks the job's token (package token) and the job's pinned policy
// (v1 model rules or v2 model:invoke statements), keeps provider keys to
// itself, forwards the request (streaming without buffering), and signs a
// gateway receipt bound to the job's hash-chained event log, stored in the
// same transaction as the llm_call event that names it, before the
// response completes. Anything it cannot check, sign or store fails closed
// with a stable code.
//
// Routes: POST /v1/chat/completions, /v1/responses (OpenAI), /v1/messages
// (Anthropic), /v1/proxy/{provider} and /v1/proxy/{provider}/{api path},
// GET /v1/receipt/{nonce} (receipt recovery), GET /v1/models and
// /v1/proxy/{provider}/[v1/]models (the models the job's policy allows).
package modelgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/metrics"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
)

// Store is what the gateway keeps: budgets' usage counters, idempotency
// records, and jobs' budgets.
type Store interface {
	store.UsageCounters
	store.GatewayCalls
	GetJob(ctx context.Context, id string) (store.Job, error)
}

// Options configure a Gateway.
type Options struct {
	// Key signs receipts; its did:key is the receipts' gateway_id.
	Key signer.Signer
	// Tokens verifies job tokens (with job binding).
	Tokens *token.Verifier
	// Chain records llm_call events with their receipts.
	Chain *evidence.Chain
	// Store holds usage counters and idempotency records.
	Store Store
	// Policies fetches and verifies pinned policies.
	Policies PolicySource
	// Providers are the upstreams; at least one.
	Providers []Provider
	// DefaultOpenAI and DefaultAnthropic name the providers behind the
	// unprefixed OpenAI routes and /v1/messages (default "openai" and
	// "anthropic", or the only provider of the right kind).
	DefaultOpenAI, DefaultAnthropic string
	// AllowBYOK lets callers send their own provider key in
	// X-Provider-API-Key. Off by default: provider keys stay here.
	AllowBYOK bool
	// ResolveKey resolves "@kv:NAME" provider keys.
	ResolveKey KeyResolver
	// RedactRequest replaces secrets the job has seen in a JSON body about
	// to be forwarded, by its decoded strings (redact.Registry.JSON); it
	// returns the new body and the number of replacements, or an error
	// for a body it cannot scan, which is then refused
	// (REQUEST_NOT_SCANNABLE), never forwarded.
	RedactRequest func(jobID string, body []byte) ([]byte, int, error)
	// Evidence is the evidence gate (internal/evidence.Check over the
	// job's secrets) for what the gateway keeps besides the chain: an
	// answer kept for idempotent replay that holds a secret of the job is
	// not kept (its replay answers IDEMPOTENCY_REPLAY_UNAVAILABLE with the
	// receipt). Nil keeps every answer.
	Evidence func(jobID string, blobs ...[]byte) error
	// Limits. Zero means the default.
	MaxRequestBytes   int64         // 8 MiB
	MaxResponseBytes  int64         // 64 MiB (non-streaming)
	MaxStoredResponse int           // 4 MiB kept for idempotent replay
	HeaderTimeout     time.Duration // 5 min until the upstream's headers
	UpstreamTimeout   time.Duration // 10 min for a whole non-streaming call
	StreamIdleTimeout time.Duration // 5 min without a streamed byte
	MaxStreamDuration time.Duration // 10 min for a whole streamed call
	MaxStreamBytes    int64         // 64 MiB of a streamed answer
	// Transport overrides the upstream transport (tests, benchmarks).
	Transport http.RoundTripper
	// AdminToken, when set, may read any receipt by nonce.
	AdminToken string
	Metrics    *metrics.Registry
	Log        *slog.Logger
	Now        func() time.Time
}

// Gateway is a model gateway.
type Gateway struct {
	opt       Options
	providers map[string]*Provider
	keys      keys
	pols      policies
	client    *http.Client
	did       string

	budgetMu sync.Mutex
	budgets  map[string]store.Budget

	idHashes    sync.Map // receipt.ModelIdentity -> its hash; see identityHash
	idHashCount atomic.Int32

	mCalls    *metrics.CounterVec
	mLatency  *metrics.HistogramVec
	mReceipts *metrics.CounterVec
}

// New checks the options and returns a gateway.
func New(opt Options) (*Gateway, error) {
	if opt.Key == nil || opt.Tokens == nil || opt.Chain == nil || opt.Store == nil || opt.Policies == nil {
		return nil, errors.New("modelgw: key, token verifier, chain, store and policy source are required")
	}
	if len(opt.Providers) == 0 {
		return nil, errors.New("modelgw: no providers configured (--provider NAME=BASEURL or the config file)")
	}
	if opt.MaxRequestBytes <= 0 {
		opt.MaxRequestBytes = 8 << 20
	}
	if opt.MaxResponseBytes <= 0 {
		opt.MaxResponseBytes = 64 << 20
	}
	if opt.MaxStoredResponse <= 0 {
		opt.MaxStoredResponse = 4 << 20
	}
	if opt.HeaderTimeout <= 0 {
		opt.HeaderTimeout = 5 * time.Minute
	}
	if opt.UpstreamTimeout <= 0 {
		opt.UpstreamTimeout = 10 * time.Minute
	}
	if opt.StreamIdleTimeout <= 0 {
		opt.StreamIdleTimeout = 5 * time.Minute
	}
	if opt.MaxStreamDuration <= 0 {
		opt.MaxStreamDuration = 10 * time.Minute
	}
	if opt.MaxStreamBytes <= 0 {
		opt.MaxStreamBytes = 64 << 20
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Metrics == nil {
		opt.Metrics = metrics.NewRegistry()
	}
	g := &Gateway{opt: opt, providers: map[string]*Provider{}, budgets: map[string]store.Budget{}, did: opt.Key.DID()}
	for _, p := range opt.Providers {
		p := p
		if err := p.normalize(); err != nil {
			return nil, fmt.Errorf("modelgw: %w", err)
		}
		if _, dup := g.providers[p.Name]; dup {
			return nil, fmt.Errorf("modelgw: provider %s is configured twice", p.Name)
		}
		g.providers[p.Name] = &p
	}
	pick := func(name, fallback string, kind func(*Provider) bool) string {
		if name != "" {
			return name
		}
		if _, ok := g.providers[fallback]; ok {
			return fallback
		}
		var only []string
		for n, p := range g.providers {
			if kind(p) {
				only = append(only, n)
			}
		}
		if len(only) == 1 {
			return only[0]
		}
		return fallback
	}
	g.opt.DefaultOpenAI = pick(opt.DefaultOpenAI, "openai", func(p *Provider) bool { return p.Kind != KindAnthropic })
	g.opt.DefaultAnthropic = pick(opt.DefaultAnthropic, "anthropic", func(p *Provider) bool { return p.Kind == KindAnthropic })
	g.keys = keys{resolve: opt.ResolveKey, ttl: 5 * time.Minute, cache: map[string]cachedKey{}}
	g.pols = newPolicies(opt.Policies)
	tr := opt.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          512,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: opt.HeaderTimeout,
			// Receipts hash the exact bytes the provider sent: ask for no
			// content encoding rather than have it undone silently.
			DisableCompression: true,
		}
	}
	g.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	m := opt.Metrics
	g.mCalls = m.Counter("clawea_model_calls_total", "Model gateway calls by provider and outcome code.", "provider", "code")
	g.mLatency = m.Histogram("clawea_model_call_seconds", "Model gateway call duration, upstream included.",
		[]float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120}, "provider", "stream")
	g.mReceipts = m.Counter("clawea_model_receipts_total", "Gateway receipts signed and stored.", "provider")
	return g, nil
}

// DID is the gateway's signer did:key.
func (g *Gateway) DID() string { return g.did }

// Providers lists the configured provider names.
func (g *Gateway) Providers() []string {
	out := make([]string, 0, len(g.providers))
	for n := range g.providers {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Register adds the gateway's routes to mux.
func (g *Gateway) Register(mux httpapi.Router) {
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, "", apiChat) })
	mux.HandleFunc("POST /v1/responses", func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, "", apiResponses) })
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, "", apiMessages) })
	mux.HandleFunc("POST /v1/proxy/{provider}", func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, r.PathValue("provider"), apiAuto)
	})
	mux.HandleFunc("POST /v1/proxy/{provider}/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := apiOfPath(r.PathValue("rest"))
		if !ok {
			writeError(w, r, false, errf(http.StatusNotFound, CodeUnknownRoute, "no model API at %s (chat/completions, responses or messages)", r.URL.Path), nil)
			return
		}
		g.serve(w, r, r.PathValue("provider"), a)
	})
	mux.HandleFunc("GET /v1/receipt/{nonce}", g.recoverReceipt)
	mux.HandleFunc("GET /v1/models", g.listModels)
	mux.HandleFunc("GET /v1/proxy/{provider}/{rest...}", g.listProviderModels)
}

type api int

const (
	apiAuto api = iota
	apiChat
	apiResponses
	apiMessages
)

func (a api) String() string {
	switch a {
	case apiChat:
		return "chat.completions"
	case apiResponses:
		return "responses"
	case apiMessages:
		return "messages"
	}
	return "auto"
}

func apiOfPath(rest string) (api, bool) {
	switch strings.TrimPrefix(strings.Trim(rest, "/"), "v1/") {
	case "chat/completions":
		return apiChat, true
	case "responses":
		return apiResponses, true
	case "messages":
		return apiMessages, true
	}
	return apiAuto, false
}

// tokenFrom finds the job token through the credential layer's model-SDK
// form (httpapi.SDKCredential): X-CST or X-Scoped-Token (the reference's
// headers), else the API key an official SDK sends (Authorization: Bearer
// or x-api-key) when it is a token. A provider key there is refused: keys
// live in the gateway.
func tokenFrom(r *http.Request) (string, *Error) { return httpapi.SDKCredential(r) }

// runJob reads X-Run-Id: a job id or a segment's run id (<job>.s<n>).
func runJob(runID string) string { return httpapi.RunJob(runID) }

// scopeAllows applies the reference gateway's scope rule for a provider.
func scopeAllows(scopes []string, provider string) bool {
	for _, s := range scopes {
		switch s {
		case "*", "proxy:*", "clawproxy:*", "control:*", "proxy:call", "clawproxy:call",
			"proxy:provider:" + provider, "proxy:call:" + provider, "clawproxy:provider:" + provider, "clawproxy:call:" + provider:
			return true
		}
	}
	return false
}

// budget returns a job's budget (cached; a budget never changes).
func (g *Gateway) budget(ctx context.Context, jobID string) (store.Budget, *Error) {
	g.budgetMu.Lock()
	b, ok := g.budgets[jobID]
	g.budgetMu.Unlock()
	if ok {
		return b, nil
	}
	j, err := g.opt.Store.GetJob(ctx, jobID)
	if err != nil {
		return b, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "cannot read job %s", jobID).Wrap(err)
	}
	b = store.ParseBudget(j.Budget)
	g.budgetMu.Lock()
	if len(g.budgets) >= 100000 {
		clear(g.budgets)
	}
	g.budgets[jobID] = b
	g.budgetMu.Unlock()
	return b, nil
}
