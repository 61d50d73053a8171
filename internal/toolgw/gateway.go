// Package toolgw is clawea's tool gateway: agents reach Azure Key Vault and
// Service Bus only through it, over MCP (streamable HTTP at /mcp, or stdio
// through clawea mcp) or a plain JSON API. Every call is checked against
// the job's token and pinned policy (the P2 evaluator, with the actions,
// resources and context keys of docs/policy.md); a denial is refused with
// its code and deciding statements and recorded as a signed receipt; a call
// that needs a human waits for a signed approval bound to the job, the
// tool, the arguments and the policy; an allowed call runs with the
// gateway's own identity, comes back with every secret the job has seen
// redacted, and leaves a signed tool receipt (v2, salted commitments) bound
// to the job's event chain, with a side-effect record for writes. A global
// lockdown refuses every mutating tool at once.
package toolgw

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/mcpproxy"
	"github.com/clawea/clawea/internal/metrics"
	"github.com/clawea/clawea/internal/policycache"
	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
)

// Store is what the tool gateway keeps.
type Store interface {
	store.Approvals
	store.Settings
	store.ConnectorSwitches
	store.Counters
}

// Options configure a Gateway.
type Options struct {
	// Key signs tool receipts and approval records.
	Key signer.Signer
	// CommitSecret keys the salts of receipt commitments and the hashes
	// that bind approvals to arguments (at least 16 bytes, kept secret).
	CommitSecret []byte
	Tokens       *token.Verifier
	Chain        *evidence.Chain
	Store        Store
	Policies     policycache.Source
	Vaults       []keyvault.Client
	Buses        []servicebus.Bus
	// Secrets is the redaction registry shared with the model gateway.
	Secrets *redact.Registry
	// Approvers are the did:keys whose signed decisions count.
	Approvers []string
	// ApprovalTTL is how long a request waits for a decision (default 15m).
	ApprovalTTL time.Duration
	// CallTimeout bounds a connector call (default 30 s).
	CallTimeout time.Duration
	// DecisionTTL is how long an allowed runtime decision may be closed
	// with its result (POST /v1/decide/{id}/result; default 30 min).
	DecisionTTL time.Duration
	// Upstreams are the MCP servers whose tools the gateway proxies
	// (docs/mcp-proxy.md); New lists their tools, Close stops them.
	Upstreams []*mcpproxy.Upstream
	// Connectors are further connectors (internal/connector); their tools
	// follow the Key Vault, Service Bus and upstream MCP tools, and Close
	// calls their Close() error method if they have one.
	Connectors []connector.Connector
	// AdminToken authorises the approval list and the lockdown switch.
	AdminToken string
	Metrics    *metrics.Registry
	Log        *slog.Logger
	Now        func() time.Time
}

// Gateway is a tool gateway.
type Gateway struct {
	opt    Options
	tools  []*tool
	byName map[string]*tool
	conns  []connector.Connector
	// warnings are standing configuration warnings (Warnings).
	warnings []string
	pols     *policycache.Cache
	did      string

	mCalls *metrics.CounterVec
	dec    *decisions // runtime decisions waiting for their result (decide.go)

	lockMu  sync.Mutex
	lockAt  time.Time
	lockOn  bool
	lockTTL time.Duration

	// The denied connectors (connectors.go), cached for lockTTL.
	denyMu sync.Mutex
	denyAt time.Time
	denied map[string]store.ConnectorSwitch
}

// New checks the options and returns a gateway.
func New(opt Options) (*Gateway, error) {
	if opt.Key == nil || opt.Tokens == nil || opt.Chain == nil || opt.Store == nil || opt.Policies == nil {
		return nil, errors.New("toolgw: key, token verifier, chain, store and policy source are required")
	}
	if len(opt.CommitSecret) < 16 {
		return nil, errors.New("toolgw: the commitment secret must have at least 16 bytes")
	}
	if opt.Secrets == nil {
		opt.Secrets = redact.New()
	}
	if opt.ApprovalTTL <= 0 {
		opt.ApprovalTTL = 15 * time.Minute
	}
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = 30 * time.Second
	}
	if opt.DecisionTTL <= 0 {
		opt.DecisionTTL = 30 * time.Minute
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
	g := &Gateway{opt: opt, byName: map[string]*tool{}, pols: policycache.New(opt.Policies), did: opt.Key.DID(), lockTTL: 250 * time.Millisecond}
	// The connectors, in the order tools/list shows their tools. Vaults
	// and namespaces are known by their canonical names (two spellings of
	// one name are one Azure object, so configuring both is an error).
	kv, err := keyvault.NewTools(opt.Vaults)
	if err != nil {
		return nil, fmt.Errorf("toolgw: %w", err)
	}
	sb, err := servicebus.NewTools(opt.Buses)
	if err != nil {
		return nil, fmt.Errorf("toolgw: %w", err)
	}
	up, err := mcpproxy.NewTools(opt.Upstreams, opt.CallTimeout, opt.Log)
	if err != nil {
		return nil, fmt.Errorf("toolgw: %w", err)
	}
	for _, ns := range sb.NamespaceSAS() {
		opt.Log.Warn("a Service Bus namespace authenticates with a namespace-level shared access key or signature (allowed by allow_namespace_sas)", "namespace", ns, "code", "NAMESPACE_SAS")
		g.warnings = append(g.warnings, "NAMESPACE_SAS: Service Bus namespace "+ns+" authenticates with a namespace-level shared access key or signature")
	}
	g.conns = append([]connector.Connector{kv, sb, up}, opt.Connectors...)
	for _, c := range g.conns {
		for _, d := range c.Tools() {
			if d == nil || d.Name == "" || d.Action == "" || d.Prepare == nil {
				g.Close()
				return nil, errors.New("toolgw: a connector defines a tool without a name, an action or a prepare step")
			}
			if g.byName[d.Name] != nil {
				g.Close()
				return nil, fmt.Errorf("toolgw: tool %s is defined twice", d.Name)
			}
			t := toolOf(d)
			g.tools = append(g.tools, t)
			g.byName[t.name] = t
		}
	}
	g.mCalls = opt.Metrics.Counter("clawea_tool_calls_total", "Tool gateway calls by tool and outcome code.", "tool", "code")
	g.dec = newDecisions(opt.Metrics)
	return g, nil
}

// Warnings are the configuration's standing warnings (a namespace-level
// Service Bus SAS), shown by GET /healthz.
func (g *Gateway) Warnings() []string { return slices.Clone(g.warnings) }

// DID is the gateway's signer did:key.
func (g *Gateway) DID() string { return g.did }

// connectorNames are the names of what the connectors reach (vaults,
// namespaces).
func (g *Gateway) connectorNames() []string {
	var out []string
	for _, c := range g.conns {
		out = append(out, c.Names()...)
	}
	return out
}

// Secrets returns the redaction registry.
func (g *Gateway) Secrets() *redact.Registry { return g.opt.Secrets }

// Job is a verified caller: the job's token and its pinned policy.
type Job struct {
	Token  *token.Verified
	Policy *policycache.Entry
}

// Authorize checks a job token for tool calls and loads the job's policy.
func (g *Gateway) Authorize(ctx context.Context, tok string) (*Job, *Error) {
	if tok == "" {
		return nil, errf(http.StatusUnauthorized, token.CodeRequired, "a job token is required")
	}
	ver, err := g.opt.Tokens.Verify(ctx, tok, token.Request{})
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) {
			return nil, httpapi.FromToken(te)
		}
		return nil, errf(http.StatusServiceUnavailable, token.CodeStateUnavailable, "token verification is unavailable").Wrap(err)
	}
	if !slices.Contains(ver.Claims.Scope, "tool:call") && !slices.Contains(ver.Claims.Scope, "tool:*") {
		return nil, errf(http.StatusForbidden, token.CodeInsufficientScope, "the token's scopes do not include tool:call")
	}
	if ver.Claims.PolicyHash == "" {
		return nil, errf(http.StatusForbidden, CodePolicyRequired, "the token pins no policy")
	}
	ent, pe := g.pols.Get(ctx, ver.Claims.PolicyHash)
	if pe != nil {
		return nil, pe
	}
	return &Job{Token: ver, Policy: ent}, nil
}

// ToolInfo describes a tool for tools/list.
type ToolInfo struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Action      string         `json:"action"`
	Mutating    bool           `json:"mutating"`
	InputSchema map[string]any `json:"inputSchema"`
}

// Tools lists the tools the job's policy could ever allow.
func (g *Gateway) Tools(j *Job) []ToolInfo {
	var out []ToolInfo
	for _, t := range g.tools {
		if j != nil && !t.couldAllow(j.Policy.Policy) {
			continue
		}
		out = append(out, ToolInfo{Name: t.name, Description: t.def.Description, Action: t.action, Mutating: t.mutating, InputSchema: t.def.InputSchema()})
	}
	return out
}

// couldAllow reports whether the policy could ever allow the tool: its
// action, and for a tool with a fixed resource (a proxied tool) that
// resource too.
func (t *tool) couldAllow(p *policy.Policy) bool {
	if t.def.Resource != "" {
		return p.CouldAllowOn(t.action, t.def.Resource)
	}
	return p.CouldAllow(t.action)
}

// Result is an allowed call's outcome.
type Result struct {
	Tool       string          `json:"tool"`
	Output     json.RawMessage `json:"output"`
	ReceiptID  string          `json:"receipt_id"`
	ApprovalID string          `json:"approval_id,omitempty"`
	Redactions int             `json:"redactions,omitempty"`
	// Proxied: Output is an upstream MCP server's CallToolResult.
	Proxied bool `json:"proxied,omitempty"`
}

// Call runs one tool call for a verified job.
func (g *Gateway) Call(ctx context.Context, j *Job, name string, rawArgs []byte) (res *Result, e *Error) {
	start := g.opt.Now()
	defer func() {
		code := "OK"
		if e != nil {
			code = e.Code
			// A message may quote an argument; none may carry a secret.
			if j != nil && j.Token != nil {
				e.Msg, _ = g.opt.Secrets.String(j.Token.JobID, e.Msg)
			}
		}
		label := name
		if g.byName[name] == nil {
			label = "unknown" // metric labels never carry what an agent typed
		}
		g.mCalls.Inc(label, code)
	}()
	t := g.byName[name]
	if t == nil {
		return nil, errf(http.StatusNotFound, CodeUnknownTool, "no tool %q here", name)
	}
	if len(rawArgs) > 2<<20 {
		return nil, badArg("arguments exceed 2 MiB")
	}
	a := connector.NewArgs(canon.Value{Kind: canon.Object})
	if len(strings.TrimSpace(string(rawArgs))) > 0 && string(rawArgs) != "null" {
		v, err := canon.Parse(rawArgs)
		if err != nil || !v.IsObject() {
			return nil, badArg("arguments must be a JSON object")
		}
		a.V = v
	}
	// The connector checks and canonicalises the arguments (a.V) and
	// names the resource and context keys.
	c, pe := t.prepare(a)
	if pe != nil {
		return nil, pe
	}
	mutating := t.mutating || c.conn.Mutating
	job := j.Token
	c.ctx["Agent:DID"], c.ctx["Job:ID"], c.ctx["Tool:Name"] = job.Claims.Sub, job.JobID, t.name
	c.ctx["Context:Hour"] = strconv.Itoa(start.UTC().Hour())
	for k, v := range job.Labels() {
		c.ctx[policy.LabelKeyPrefix+k] = v
	}
	argsRec := g.recordedArgs(job.JobID, t, &a.V)
	// Read and write paths apart: a mutating call needs a token with the
	// write scope, whatever the policy says (checked before the policy).
	if mutating && !job.Claims.CanWrite() {
		return nil, g.deny(ctx, j, c, argsRec, errf(http.StatusForbidden, token.CodeWriteScopeRequired,
			"%s is a mutating tool and the token has no %s scope: obtain a write token (clawea token issue --job JOB --scope write)", t.name, token.ScopeWrite))
	}
	argsKey := g.argsKey(t.name, &a.V)

	// A write must not store a redaction marker as a secret value.
	if pe := placeholder(t, &a.V); pe != nil {
		return nil, g.deny(ctx, j, c, argsRec, pe)
	}
	// The egress guard: arguments that would carry a secret the job has
	// seen out through the connector are refused unless the policy allows
	// exactly that (KeyCarriesSecret).
	c.ctx[KeyCarriesSecret] = "false"
	if label, carries := g.egressSecret(job.JobID, t, c, &a.V); carries {
		c.ctx[KeyCarriesSecret] = "true"
		req := policy.Request{Action: t.action, Resource: c.resource, Context: policy.MapContext(c.ctx)}
		if !egressAllowed(j, req, c.ctx) {
			g.opt.Log.WarnContext(ctx, "egress of a secret refused", "job_id", job.JobID, "tool", t.name, "secret", label)
			return nil, g.deny(ctx, j, c, argsRec, errf(http.StatusForbidden, CodeEgressSecret,
				"the arguments of %s carry secret %s, read earlier in this job, out through the connector; the policy does not allow it (%s)", t.name, label, KeyCarriesSecret))
		}
	}

	// A connector an operator denied refuses every call of its tools,
	// reads included, before anything is counted or decided.
	if sw, err := g.connectorDenied(ctx, t); err != nil {
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the connector switches are unavailable").Wrap(err)
	} else if sw != nil {
		return nil, g.deny(ctx, j, c, argsRec, errf(http.StatusForbidden, CodeConnectorDenied, "connector %s is denied by an operator (%s, at %s): every call of its tools is refused", sw.Name, sw.Reason, sw.At.UTC().Format(time.RFC3339)))
	}

	// Calls counted per job (the messages a job sent, received or
	// peeked, in all and per window, Tool.Counts): counted before the
	// decision, so that concurrent calls each see their own count; a call
	// that does not go out gives its count back, one that used less than
	// it asked for gives back the rest. Only policies that test a count
	// pay for counting it.
	type counted struct {
		name  string
		delta int64
	}
	var counts []counted
	sendCounted := false
	countDelta, perCall := int64(1), c.conn != nil && c.conn.CountDelta > 0
	if perCall {
		countDelta = c.conn.CountDelta
	}
	for _, cnt := range t.def.Counts {
		if !j.Policy.Policy.References(cnt.Key) {
			continue
		}
		name := cnt.StoreName(g.opt.Now())
		n, err := g.opt.Store.AddCounter(ctx, job.JobID, name, countDelta)
		if err != nil {
			for _, cd := range counts {
				g.opt.Store.AddCounter(context.WithoutCancel(ctx), job.JobID, cd.name, -cd.delta)
			}
			return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the message counter is unavailable").Wrap(err)
		}
		counts = append(counts, counted{name, countDelta})
		sendCounted = true
		c.ctx[cnt.Key] = strconv.FormatInt(n-countDelta, 10)
	}
	if len(counts) > 0 {
		defer func() {
			back := int64(0)
			if e != nil && sendCounted {
				back = countDelta
			} else if perCall && c.conn.CountDelta >= 0 && c.conn.CountDelta < countDelta {
				back = countDelta - c.conn.CountDelta
			}
			if back > 0 {
				for _, cd := range counts {
					g.opt.Store.AddCounter(context.WithoutCancel(ctx), job.JobID, cd.name, -back)
				}
			}
		}()
	}

	if mutating {
		if on, err := g.lockdown(ctx); err != nil {
			return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the lockdown state is unavailable").Wrap(err)
		} else if on {
			return nil, g.deny(ctx, j, c, argsRec, errf(http.StatusForbidden, CodeLockdown, "a lockdown is in force: every mutating tool is refused"))
		}
	}

	req := policy.Request{Action: t.action, Resource: c.resource, Context: policy.MapContext(c.ctx)}
	var d policy.Decision
	j.Policy.Policy.Evaluate(&req, &d)
	approvalID := ""
	switch d.Effect {
	case policy.Deny:
		e := errf(http.StatusForbidden, CodePolicyDenied, "the job's policy denies %s on %s (%s)", t.action, c.resource, d.Reason)
		e.Statements = slices.Clone(d.Statements())
		return nil, g.deny(ctx, j, c, argsRec, e)
	case policy.NeedsApproval:
		ap, ae := g.approval(ctx, j, c, argsRec, argsKey, d.Statements())
		if ae != nil {
			return nil, ae
		}
		c.ctx[policy.ApprovalKey] = "true"
		j.Policy.Policy.Evaluate(&req, &d)
		if d.Effect != policy.Allow {
			e := errf(http.StatusForbidden, CodePolicyDenied, "the job's policy denies %s on %s even with approval (%s)", t.action, c.resource, d.Reason)
			e.Statements = slices.Clone(d.Statements())
			return nil, g.deny(ctx, j, c, argsRec, e)
		}
		approvalID = ap.ID
	}

	// Run the connector with the gateway's identity. A write is not
	// cancelled by its caller going away: once sent it may take effect,
	// and the record must say what happened, not what the caller chose to
	// wait for (CallTimeout still bounds it). A read may be cancelled.
	runCtx := ctx
	if mutating {
		runCtx = context.WithoutCancel(ctx)
	}
	rctx, cancel := context.WithTimeout(runCtx, g.opt.CallTimeout)
	out, err := c.run(rctx)
	// Read before cancel: after it, rctx.Err() is never nil.
	deadlinePassed := errors.Is(rctx.Err(), context.DeadlineExceeded)
	cancel()
	g.register(j, c)
	if err == nil {
		// The call went out: its count stays even if recording fails.
		sendCounted = false
	}
	if err != nil {
		ce := connectorError(t, err, deadlinePassed, runCtx.Err())
		if writeOutcomeUnknown(ce.Code) {
			// The service may have acted on it (sent, received, deleted):
			// the count stays (red team: giving it back let a job that
			// timed out on purpose go past its cap).
			sendCounted = false
		}
		detail, _ := g.opt.Secrets.String(job.JobID, err.Error())
		g.opt.Log.WarnContext(ctx, "connector call failed", "job_id", job.JobID, "tool", t.name, "code", ce.Code, "err", detail)
		// A write that failed without the service refusing it (timeout,
		// unreachable, an unclassified error) may still have taken
		// effect: it is recorded as a possible side effect.
		errRec := map[string]any{"code": ce.Code}
		maybeWrote := mutating && writeOutcomeUnknown(ce.Code)
		if maybeWrote {
			errRec["write"] = "unknown"
		}
		id, rerr := g.recordCall(ctx, j, c, argsRec, map[string]any{"error": errRec}, statusOf(ce), approvalID, maybeWrote, start)
		if rerr != nil {
			return nil, rerr
		}
		ce.ReceiptID = id
		return nil, ce
	}
	output, n, oe := g.render(job.JobID, c, out)
	if oe != nil {
		return nil, oe
	}
	recorded := output
	if c.reveal {
		// The recorded result never holds the value in clear.
		recorded, _, _ = g.renderRedacted(job.JobID, out)
	}
	outVal, err := canon.Parse(recorded)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, CodeConnectorError, "the connector's answer cannot be recorded").Wrap(err)
	}
	// Strings the byte-level redaction missed (a secret escaped as \uXXXX).
	outVal, _ = evidence.RedactValue(g.opt.Secrets, job.JobID, &outVal)
	status := receipt.StatusSuccess
	if c.upstreamError() {
		status = receipt.StatusError
	}
	id, rerr := g.recordCall(ctx, j, c, argsRec, outVal, status, approvalID, mutating && !c.upstreamError(), start)
	if rerr != nil {
		return nil, rerr
	}
	sendCounted = false
	return &Result{Tool: t.name, Output: output, ReceiptID: id, ApprovalID: approvalID, Redactions: n, Proxied: t.def.MCPResult}, nil
}

// maxDisclosed bounds an argument value a tool receipt discloses.
const maxDisclosed = 4096

func statusOf(e *Error) string {
	if e.Code == CodeConnectorTimeout {
		return receipt.StatusTimeout
	}
	return receipt.StatusError
}

// recordedArgs is the argument object as receipts commit to it and
// disclose it: secret parameters are replaced by [SECRET], and every
// secret the job has seen, in any string or key, by its redaction marker.
func (g *Gateway) recordedArgs(jobID string, t *tool, v *canon.Value) canon.Value {
	out, _ := evidence.RedactValue(g.opt.Secrets, jobID, v)
	for _, p := range t.params() {
		if p.Secret && out.Get(p.Name) != nil {
			out.Set(p.Name, canon.NewString("[SECRET]"))
		}
	}
	return out
}

// recordedResource is the call's resource as evidence names it: a secret
// the job has seen (in a queue or secret name) is replaced by its marker.
func (g *Gateway) recordedResource(jobID string, c *call) string {
	r, _ := g.opt.Secrets.String(jobID, c.resource)
	return r
}

// argsKey binds approvals to arguments: an HMAC of the tool and the JCS
// form of its arguments under the commitment secret (a plain hash of a
// secret argument could be guessed).
func (g *Gateway) argsKey(tool string, v *canon.Value) string {
	mac := hmac.New(sha256.New, g.opt.CommitSecret)
	mac.Write([]byte("clawea tool arguments\x00" + tool + "\x00"))
	mac.Write(canon.AppendJCS(nil, v))
	return b64u.Encode(mac.Sum(nil))
}

// render turns a connector's output into the JSON the agent gets: every
// secret the job has seen is redacted, except the value a reveal returns.
func (g *Gateway) render(jobID string, c *call, out any) ([]byte, int, *Error) {
	if !c.reveal {
		return g.renderRedacted(jobID, out)
	}
	m, ok := out.(map[string]any)
	if !ok {
		return g.renderRedacted(jobID, out)
	}
	value := m["value"]
	var nonce [12]byte
	rand.Read(nonce[:])
	placeholder := "clawea-reveal-" + hex.EncodeToString(nonce[:])
	m["value"] = placeholder
	raw, n, e := g.renderRedacted(jobID, m)
	if e != nil {
		return nil, 0, e
	}
	vj, _ := json.Marshal(value)
	m["value"] = value
	return []byte(strings.Replace(string(raw), `"`+placeholder+`"`, string(vj), 1)), n, nil
}

func (g *Gateway) renderRedacted(jobID string, out any) ([]byte, int, *Error) {
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, 0, errf(http.StatusInternalServerError, CodeConnectorError, "the connector's answer cannot be encoded").Wrap(err)
	}
	// Redaction works on the decoded strings of the JSON, whatever their
	// escapes; json.Marshal writes valid UTF-8 JSON, so a failure here is
	// unexpected and the answer is withheld.
	red, n, err := g.opt.Secrets.JSON(jobID, raw)
	if err != nil {
		return nil, 0, errf(http.StatusInternalServerError, CodeConnectorError, "the connector's answer cannot be scanned for secrets").Wrap(err)
	}
	return red, n, nil
}

// writeOutcomeUnknown says whether a failed write's code leaves open that
// the service applied it. A timeout, an unreachable service (the request
// may have been sent), a caller gone and an unclassified error do; an
// answer of the service refusing the call (not found, conflict, forbidden,
// invalid, throttled, a connector's own class) does not.
func writeOutcomeUnknown(code string) bool {
	switch code {
	case CodeConnectorTimeout, CodeConnectorUnreachable, CodeConnectorError, CodeClientCancelled:
		return true
	}
	return false
}

// connectorError maps a connector failure to a code by its class
// (connector.Err*, or a *connector.Coded class of the connector's own;
// the Key Vault and Service Bus sentinels are of these classes). A class
// the service answered with (not found, forbidden, conflict, throttled...)
// is kept even if a deadline passed meanwhile. Only a deadline of the
// call's own (deadlinePassed, or a timeout the connector reports) is
// CONNECTOR_TIMEOUT; a caller that went away (callerErr, its context's
// error) is CLIENT_CANCELLED. Messages are class-level: the connector's
// error text (hosts, service messages) stays out of the answer.
func connectorError(t *tool, err error, deadlinePassed bool, callerErr error) *Error {
	var coded *connector.Coded
	switch {
	case errors.Is(err, connector.ErrNotFound):
		return errf(http.StatusNotFound, CodeNotFound, "%s: the secret or entity does not exist", t.name).Wrap(err)
	case errors.Is(err, connector.ErrConflict):
		return errf(http.StatusConflict, CodeConflict, "%s: the service refused the call as conflicting with the current state", t.name).Wrap(err)
	case errors.Is(err, connector.ErrForbidden):
		return errf(http.StatusForbidden, CodeForbidden, "%s: the gateway's identity may not do this (check its access to the vault or namespace)", t.name).Wrap(err)
	case errors.Is(err, connector.ErrInvalid):
		return errf(http.StatusBadRequest, CodeInvalidArguments, "%s: the service refused the arguments", t.name).Wrap(err)
	case errors.As(err, &coded):
		return errf(coded.Status, coded.Code, "%s: %s", t.name, coded.What).Wrap(err)
	case errors.Is(err, connector.ErrThrottled):
		e := errf(http.StatusTooManyRequests, CodeConnectorThrottled, "%s: the service is throttling the gateway", t.name).Wrap(err)
		if d, ok := retryAfter(err); ok {
			e.Msg += "; retry after " + strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + " s"
		}
		return e
	case callerErr != nil:
		return errf(StatusClientClosedRequest, CodeClientCancelled, "%s: the caller cancelled the call before it finished", t.name).Wrap(err)
	case errors.Is(err, connector.ErrUnreachable):
		return errf(http.StatusBadGateway, CodeConnectorUnreachable, "%s: the service could not be reached", t.name).Wrap(err)
	case deadlinePassed, errors.Is(err, context.DeadlineExceeded), errors.Is(err, connector.ErrTimeout):
		return errf(http.StatusGatewayTimeout, CodeConnectorTimeout, "%s did not finish in time", t.name).Wrap(err)
	}
	return errf(http.StatusBadGateway, CodeConnectorError, "%s failed", t.name).Wrap(err)
}

// deny records a refusal as a signed tool receipt (result_status error,
// the code and statements disclosed) and returns e with the receipt id.
func (g *Gateway) deny(ctx context.Context, j *Job, c *call, argsRec canon.Value, e *Error) *Error {
	result := map[string]any{"outcome": "denied", "code": e.Code, "statements": e.Statements}
	id, rerr := g.recordCall(ctx, j, c, argsRec, result, receipt.StatusError, "", false, g.opt.Now())
	if rerr != nil {
		g.opt.Log.ErrorContext(ctx, "denial not recorded", "job_id", j.Token.JobID, "code", rerr.Code)
	}
	e.ReceiptID = id
	return e
}

// Event types of the tool gateway in a job's chain.
const (
	EventToolCall          = "tool_call"
	EventApprovalRequested = "approval_requested"
	EventApprovalDecided   = "approval_decided"
	EventApprovalExpired   = "approval_expired"
	EventLockdown          = "lockdown"
)

type toolEvent struct {
	Tool       string `json:"tool"`
	Action     string `json:"action"`
	Resource   string `json:"resource"`
	ReceiptID  string `json:"receipt_id"`
	Status     string `json:"result_status"`
	ApprovalID string `json:"approval_id,omitempty"`
}

func newID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// toolReceipt builds a v2 tool receipt: salted commitments to the
// recorded arguments and the result, the arguments disclosed (secrets are
// already markers) and, for failures, the result's code.
//
// members are top-level result members a success also discloses
// (connector.Call.Disclose), when they are strings.
func (g *Gateway) toolReceipt(j *Job, toolName string, argsRec canon.Value, result any, status string, at time.Time, discloseResult bool, members ...string) (*receipt.ToolV2, error) {
	resVal, ok := result.(canon.Value)
	if !ok {
		var err error
		if resVal, err = canon.ValueOf(result); err != nil {
			return nil, err
		}
	}
	ac, err := receipt.Commit("args", argsRec, g.opt.CommitSecret, "")
	if err != nil {
		return nil, err
	}
	rc, err := receipt.Commit("result", resVal, g.opt.CommitSecret, "")
	if err != nil {
		return nil, err
	}
	r := &receipt.ToolV2{ReceiptID: newID("tool_"), ToolName: toolName, ArgsHash: ac.Root, ResultHash: rc.Root, ResultStatus: status,
		AgentDID: j.Token.Claims.Sub, Timestamp: envelope.FormatTime(at), ArgsSalt: ac.Salt, ResultSalt: rc.Salt}
	// Arguments are disclosed up to maxDisclosed bytes each; a larger one
	// (a message body) is committed to, not disclosed, so that a receipt,
	// and a bundle of a thousand of them, stays small.
	if open := ac.PathsUpTo(maxDisclosed); len(open) > 0 {
		if r.ArgsDisclosure, err = ac.Disclose(open...); err != nil {
			return nil, err
		}
	}
	if status != receipt.StatusSuccess || discloseResult || len(members) > 0 {
		var open []string
		for _, p := range rc.Paths() {
			if discloseResult || status != receipt.StatusSuccess && (p == "result.code" || p == "result.outcome" || p == "result.statements" || p == "result.error") ||
				status == receipt.StatusSuccess && discloseMember(resVal, p, members) {
				open = append(open, p)
			}
		}
		if len(open) > 0 {
			if r.ResultDisclosure, err = rc.Disclose(open...); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// discloseMember reports whether the result leaf path is one of the
// members a success discloses and holds a string of at most maxDisclosed
// bytes.
func discloseMember(res canon.Value, path string, members []string) bool {
	name, ok := strings.CutPrefix(path, "result.")
	if !ok || res.Kind != canon.Object || !slices.Contains(members, name) {
		return false
	}
	v := res.Get(name)
	return v != nil && v.Kind == canon.String && len(v.Str) <= maxDisclosed
}

// recordCall appends the call's tool_call event with its signed tool
// receipt and, for a write that succeeded, a side-effect record anchored to
// the segment's first model call.
func (g *Gateway) recordCall(ctx context.Context, j *Job, c *call, argsRec canon.Value, result any, status, approvalID string, write bool, start time.Time) (string, *Error) {
	at := g.opt.Now()
	var members []string
	if c.conn != nil && !c.withheld {
		members = c.conn.Disclose
	}
	r, err := g.toolReceipt(j, c.tool.name, argsRec, result, status, at, false, members...)
	if err != nil {
		return "", errf(http.StatusInternalServerError, CodeSigningFailed, "the receipt could not be built").Wrap(err)
	}
	r.LatencyMS = max(at.Sub(start).Milliseconds(), 0)
	resource := g.recordedResource(j.Token.JobID, c)
	ev := toolEvent{Tool: c.tool.name, Action: c.tool.action, Resource: resource, ReceiptID: r.ReceiptID, Status: status, ApprovalID: approvalID}
	eventType, payload := EventToolCall, any(ev)
	if c.event != nil {
		// A runtime decision names its own event type and payload (decide.go).
		eventType, payload = c.event(ev)
	}
	var signErr error
	_, err = g.opt.Chain.Record(context.WithoutCancel(ctx), j.Token.JobID, eventType, payload, func(a *evidence.Appended) ([]evidence.Item, string, error) {
		rr := *r
		rr.Binding = &receipt.Binding{RunID: a.Event.RunID, EventHash: a.Event.EventHash, Nonce: approvalID, PolicyHash: j.Policy.Doc.Hash(),
			TokenScopeHash: j.Token.ScopeHash}
		env, err := rr.Sign(g.opt.Key, at)
		if err != nil {
			signErr = err
			return nil, "", err
		}
		raw, err := env.JSON()
		if err != nil {
			signErr = err
			return nil, "", err
		}
		items := []evidence.Item{{Kind: evidence.KindToolReceipt, ItemID: rr.ReceiptID, JSON: raw}}
		if write {
			se := receipt.SideEffect{Version: "1", ReceiptID: newID("se_"), EffectClass: "external_api_write",
				TargetDigest: b64u.SHA256([]byte(resource)), RequestDigest: rr.ArgsHash, ResponseDigest: rr.ResultHash,
				HashAlgorithm: envelope.HashSHA256, AgentDID: j.Token.Claims.Sub, Timestamp: envelope.FormatTime(at),
				Binding: &receipt.Binding{RunID: a.Event.RunID, EventHash: a.Event.EventHash, ParentSpanID: a.Anchor}}
			seRaw, err := canon.Marshal(se)
			if err != nil {
				return nil, "", err
			}
			items = append(items, evidence.Item{Kind: evidence.KindSideEffect, ItemID: se.ReceiptID, JSON: seRaw})
		}
		return items, "", nil
	})
	if err != nil {
		g.opt.Log.ErrorContext(ctx, "tool receipt not recorded", "job_id", j.Token.JobID, "tool", c.tool.name, "err", err)
		if signErr != nil {
			return "", errf(http.StatusInternalServerError, CodeSigningFailed, "the receipt could not be signed")
		}
		if errors.Is(err, evidence.ErrJobNotOpen) {
			return "", errf(http.StatusConflict, "JOB_NOT_OPEN", "the job is closed; its calls are no longer recorded")
		}
		if errors.Is(err, evidence.ErrSecretRefused) {
			// The guard checks arguments as the gate does, so this is rare
			// (a secret registered by another call meanwhile); the call has
			// run, so it is still recorded, with arguments and result
			// withheld, rather than leave a side effect without a receipt.
			if withheld := (canon.Value{Kind: canon.Object}); !c.withheld {
				withheld.Set("withheld", canon.NewString(evidence.CodeSecretRefused))
				c.withheld = true
				id, _ := g.recordCall(ctx, j, c, withheld, map[string]any{"error": map[string]any{"code": evidence.CodeSecretRefused}}, receipt.StatusError, approvalID, write, start)
				e := errf(http.StatusUnprocessableEntity, evidence.CodeSecretRefused, "the receipt would hold a secret of the job; it was recorded with its arguments and result withheld, and the result is withheld")
				e.ReceiptID = id
				return "", e
			}
			return "", errf(http.StatusUnprocessableEntity, evidence.CodeSecretRefused, "the receipt would hold a secret of the job and was not stored; the result is withheld")
		}
		return "", errf(http.StatusServiceUnavailable, CodeStoreFailed, "the receipt could not be stored; the result is withheld")
	}
	return r.ReceiptID, nil
}

// lockdown reads the switch (cached for a quarter of a second so that a
// change reaches every instance that quickly).
func (g *Gateway) lockdown(ctx context.Context) (bool, error) {
	g.lockMu.Lock()
	if !g.lockAt.IsZero() && time.Since(g.lockAt) < g.lockTTL {
		on := g.lockOn
		g.lockMu.Unlock()
		return on, nil
	}
	g.lockMu.Unlock()
	l, err := g.opt.Store.GetLockdown(ctx)
	if err != nil {
		return false, err
	}
	g.lockMu.Lock()
	g.lockOn, g.lockAt = l.On, time.Now()
	g.lockMu.Unlock()
	return l.On, nil
}

// SetLockdown turns the lockdown on or off, records the change in the
// store's log, and takes effect here at once.
func (g *Gateway) SetLockdown(ctx context.Context, on bool, by, reason string) (store.Lockdown, error) {
	l, err := g.opt.Store.SetLockdown(ctx, store.Lockdown{On: on, By: by, Reason: reason, At: g.opt.Now()})
	if err != nil {
		return l, err
	}
	g.lockMu.Lock()
	g.lockOn, g.lockAt = on, time.Now()
	g.lockMu.Unlock()
	g.opt.Log.WarnContext(ctx, "lockdown changed", "on", on, "by", by, "reason", reason, "seq", l.Seq)
	return l, nil
}
