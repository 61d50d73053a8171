package toolgw

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/metrics"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/receipt"
)

// The decision API. A tool the agent runtime runs itself (OpenClaw's exec,
// file and web tools) is decided here and recorded here; clawea never runs
// it. POST /v1/decide checks the job's token, evaluates tool:execute on
// tool://<runtime>/<name> against the pinned policy with the facts the
// host proves, applies the egress guard and the lockdown, and answers:
//
//   - allow: a runtime_decision event is recorded (no receipt: nothing ran
//     yet) and the decision waits, for DecisionTTL, for its result;
//   - deny: a runtime_decision event with a signed denial tool receipt
//     bound to it (code and deciding statements disclosed);
//   - needs_approval: a pending approval exactly as for the gateway's own
//     tools (bound to job, tool, argument HMAC and policy hash); once a
//     human allows it, the same request is allowed once.
//
// POST /v1/decide/{id}/result then closes an allowed call, once, with the
// same job token: a tool_call event with a v2 tool receipt bound to it,
// whose salted commitments cover the redacted arguments and the redacted
// result. A decision allowed but never closed leaves only its
// runtime_decision event, which needs no receipt, so the job's bundle
// still passes strict verification.

// Event type of a runtime decision in a job's chain.
const EventRuntimeDecision = "runtime_decision"

// ActionToolExecute is the action of every runtime tool.
const ActionToolExecute = "tool:execute"

// DecisionNeedsApproval is the third answer of POST /v1/decide.
const DecisionNeedsApproval = "needs_approval"

// Codes of the decision API.
const (
	CodeDecisionNotFound      = "DECISION_NOT_FOUND"
	CodeDecisionClosed        = "DECISION_ALREADY_CLOSED"
	CodeDecisionNotAllowed    = "DECISION_NOT_ALLOWED"
	CodeDecisionExpired       = "DECISION_EXPIRED"
	CodeDecisionTokenMismatch = "DECISION_TOKEN_MISMATCH"
	CodeDecisionsFull         = "DECISIONS_AT_CAPACITY"
	CodeRuntimeToolFailed     = "RUNTIME_TOOL_FAILED"
	CodeRuntimeToolTimeout    = "RUNTIME_TOOL_TIMEOUT"
)

// Context keys of runtime tools (docs/policy.md). A key whose fact the
// request leaves out is absent, so every condition on it is false.
const (
	KeyToolRuntime        = "Tool:Runtime"
	KeyToolKind           = "Tool:Kind"
	KeyRuntimeAgentID     = "Runtime:AgentID"
	KeyRuntimeSandboxed   = "Runtime:Sandboxed"
	KeyRuntimeElevated    = "Runtime:Elevated"
	KeyRequesterChannel   = "Requester:Channel"
	KeyRequesterAccountID = "Requester:AccountID"
	KeyRequesterSenderID  = "Requester:SenderID"
	KeyRequesterIsOwner   = "Requester:IsOwner"
)

// maxOpenDecisions bounds the decisions kept (open, closed or denied)
// until their TTL passes; past it, new decisions are refused.
const maxOpenDecisions = 100_000

// runtimeTools are the tools clawea knows per runtime (OpenClaw's core
// tools, in lower case). A policy may allow a known tool through a glob
// (tool://openclaw/*); any other tool only through an Allow statement that
// names its resource exactly.
var runtimeTools = map[string]map[string]bool{
	"openclaw": setOf("exec", "process", "code_execution", "read", "write", "edit", "apply_patch",
		"web_search", "x_search", "web_fetch", "memory_search", "memory_get", "browser", "canvas",
		"message", "image", "pdf", "view_image", "tts", "session_status", "sessions_list",
		"sessions_history", "sessions_send", "sessions_spawn", "subagents", "agents_list", "cron",
		"gateway", "nodes", "ask_user"),
}

// runtimeAliases map a runtime's other names of a tool to the one the
// policy sees, so that a Deny of tool://openclaw/exec holds for "bash".
var runtimeAliases = map[string]map[string]string{
	"openclaw": {"bash": "exec"},
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// DecideAnswer is the answer of POST /v1/decide.
type DecideAnswer struct {
	Decision   string   `json:"decision"` // allow, deny or needs_approval
	DecisionID string   `json:"decision_id,omitempty"`
	Tool       string   `json:"tool"`
	Action     string   `json:"action"`
	Resource   string   `json:"resource"`
	Code       string   `json:"code,omitempty"`
	Message    string   `json:"message,omitempty"`
	Statements []string `json:"statements,omitempty"`
	ReceiptID  string   `json:"receipt_id,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	PolicyHash string   `json:"policy_hash_b64u"`
	// ExpiresAt is when an allowed decision can no longer be closed.
	ExpiresAt string `json:"result_expires_at,omitempty"`
}

// ResultAnswer is the answer of POST /v1/decide/{id}/result.
type ResultAnswer struct {
	DecisionID string `json:"decision_id"`
	ReceiptID  string `json:"receipt_id"`
	Status     string `json:"status"`
	Redactions int    `json:"redactions,omitempty"`
}

// runtimeEvent is the payload of a runtime_decision event.
type runtimeEvent struct {
	DecisionID  string       `json:"decision_id"`
	Decision    string       `json:"decision"`
	Tool        string       `json:"tool"`
	Kind        string       `json:"kind,omitempty"`
	Action      string       `json:"action"`
	Resource    string       `json:"resource"`
	Code        string       `json:"code,omitempty"`
	Statements  []string     `json:"statements,omitempty"`
	ReceiptID   string       `json:"receipt_id,omitempty"`
	Status      string       `json:"result_status,omitempty"`
	ApprovalID  string       `json:"approval_id,omitempty"`
	ArgsKey     string       `json:"arguments_key"`
	PolicyHash  string       `json:"policy_hash_b64u"`
	Correlation *Correlation `json:"correlation,omitempty"`
	Facts       *Facts       `json:"facts,omitempty"`
}

// resultEvent is the payload of the tool_call event that closes a
// decision.
type resultEvent struct {
	toolEvent
	DecisionID    string       `json:"decision_id"`
	DecisionEvent string       `json:"decision_event_hash_b64u"`
	Correlation   *Correlation `json:"correlation,omitempty"`
}

type decisionState uint8

const (
	decisionOpen decisionState = iota
	decisionClosing
	decisionClosed
	decisionDenied
)

// decided is a decision kept until its TTL passes.
type decided struct {
	id, jobID, tokenHash string
	state                decisionState
	c                    *call
	argsRec              canon.Value
	approvalID           string
	eventHash            string
	corr                 *Correlation
	at, expires          time.Time
}

// decisions are the runtime decisions of this gateway instance: a result
// must reach the instance that decided (after a restart an open decision
// cannot be closed: DECISION_NOT_FOUND).
type decisions struct {
	mu     sync.Mutex
	m      map[string]*decided
	max    int
	adds   int
	metric *metrics.CounterVec
}

func newDecisions(reg *metrics.Registry) *decisions {
	return &decisions{m: map[string]*decided{}, max: maxOpenDecisions,
		metric: reg.Counter("clawea_runtime_decisions_total", "Runtime tool decisions by answer and code.", "decision", "code")}
}

// room reports whether a new decision may be kept.
func (d *decisions) room(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.m) < d.max {
		return true
	}
	d.sweepLocked(now)
	return len(d.m) < d.max
}

func (d *decisions) sweepLocked(now time.Time) {
	for id, x := range d.m {
		if now.After(x.expires) && x.state != decisionClosing {
			delete(d.m, id)
		}
	}
}

func (d *decisions) put(x *decided, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.adds++; d.adds%1024 == 0 {
		d.sweepLocked(now)
	}
	d.m[x.id] = x
}

// claim moves an open decision of this job, decided for this token and
// not expired, to closing.
func (d *decisions) claim(id string, j *Job, now time.Time) (*decided, *Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.m[id]
	if x == nil || x.jobID != j.Token.JobID {
		return nil, errf(http.StatusNotFound, CodeDecisionNotFound, "no decision %s for this job (decisions are kept by the instance that made them, for their TTL)", clip(id))
	}
	if x.tokenHash != j.Token.TokenHash {
		return nil, errf(http.StatusForbidden, CodeDecisionTokenMismatch, "decision %s was made for another token of this job", id)
	}
	switch x.state {
	case decisionDenied:
		return nil, errf(http.StatusConflict, CodeDecisionNotAllowed, "decision %s denied the call; it has no result to record", id)
	case decisionClosing, decisionClosed:
		return nil, errf(http.StatusConflict, CodeDecisionClosed, "decision %s already has its result", id)
	}
	if now.After(x.expires) {
		return nil, errf(http.StatusGone, CodeDecisionExpired, "decision %s could be closed until %s", id, envelope.FormatTime(x.expires))
	}
	x.state = decisionClosing
	return x, nil
}

// release ends a claim: closed when a receipt was recorded, open again
// (the runtime may retry) when nothing was.
func (d *decisions) release(x *decided, recorded bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if recorded {
		x.state = decisionClosed
	} else {
		x.state = decisionOpen
	}
}

// namesResource reports whether one of the deciding statements of the
// job's own policy is an Allow that names resource exactly (not through
// a glob). Statements of an inherited policy (qualified ids) do not count.
func namesResource(doc *policy.Document, sids []string, resource string) bool {
	if doc == nil || doc.V2 == nil {
		return false
	}
	for _, sid := range sids {
		for i := range doc.V2.Statements {
			s := &doc.V2.Statements[i]
			if s.SID == sid && s.Effect == "Allow" && slices.Contains(s.Resources, resource) {
				return true
			}
		}
	}
	return false
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// DecideTool decides one runtime tool call for a verified job.
func (g *Gateway) DecideTool(ctx context.Context, j *Job, req *DecideRequest) (ans *DecideAnswer, e *Error) {
	start := g.opt.Now()
	job := j.Token
	defer func() {
		// A message may quote what the runtime sent; none may carry a secret.
		if e != nil {
			e.Msg, _ = g.opt.Secrets.String(job.JobID, e.Msg)
			g.dec.metric.Inc("error", e.Code)
			return
		}
		ans.Message, _ = g.opt.Secrets.String(job.JobID, ans.Message)
		code := ans.Code
		if code == "" {
			code = "OK"
		}
		g.dec.metric.Inc(ans.Decision, code)
	}()
	if !g.dec.room(start) {
		return nil, errf(http.StatusServiceUnavailable, CodeDecisionsFull, "too many runtime decisions are waiting for their result; try again later")
	}
	runtime := req.Tool.Runtime
	name := strings.ToLower(req.Tool.Name)
	if a, ok := runtimeAliases[runtime][name]; ok {
		name = a
	}
	known := runtimeTools[runtime][name]
	t := &tool{name: runtime + "/" + name, action: ActionToolExecute, mutating: true}
	c := &call{tool: t, resource: "tool://" + runtime + "/" + name, ctx: map[string]string{
		"Agent:DID": job.Claims.Sub, "Job:ID": job.JobID, "Tool:Name": name, KeyToolRuntime: runtime,
		"Context:Hour": strconv.Itoa(start.UTC().Hour()),
	}}
	if req.Tool.Kind != "" {
		c.ctx[KeyToolKind] = req.Tool.Kind
	}
	if req.Correlation != nil && req.Correlation.AgentID != "" {
		c.ctx[KeyRuntimeAgentID] = req.Correlation.AgentID
	}
	if f := req.Facts; f != nil {
		if f.Sandboxed != nil {
			c.ctx[KeyRuntimeSandboxed] = boolString(*f.Sandboxed)
		}
		if f.Elevated != nil {
			c.ctx[KeyRuntimeElevated] = boolString(*f.Elevated)
		}
		if r := f.Requester; r != nil {
			if r.Channel != "" {
				c.ctx[KeyRequesterChannel] = r.Channel
			}
			if r.AccountID != "" {
				c.ctx[KeyRequesterAccountID] = r.AccountID
			}
			if r.SenderID != "" {
				c.ctx[KeyRequesterSenderID] = r.SenderID
			}
			if r.SenderIsOwner != nil {
				c.ctx[KeyRequesterIsOwner] = boolString(*r.SenderIsOwner)
			}
		}
	}
	argsRec := g.recordedArgs(job.JobID, t, &req.Params)
	argsKey := g.argsKey(t.name, &req.Params)
	id := newID("dec_")
	base := DecideAnswer{DecisionID: id, Tool: t.name, Action: t.action, Resource: c.resource, PolicyHash: j.Policy.Doc.Hash()}
	event := func(decision, code string, statements []string, approvalID string) runtimeEvent {
		return runtimeEvent{DecisionID: id, Decision: decision, Tool: t.name, Kind: req.Tool.Kind, Action: t.action,
			Resource: g.recordedResource(job.JobID, c), Code: code, Statements: statements, ApprovalID: approvalID,
			ArgsKey: argsKey, PolicyHash: j.Policy.Doc.Hash(), Correlation: req.Correlation, Facts: req.Facts}
	}
	// deny records the refusal (runtime_decision with a signed denial
	// receipt) and answers deny.
	deny := func(de *Error) (*DecideAnswer, *Error) {
		ev := event(DecisionDeny, de.Code, de.Statements, de.ApprovalID)
		c.event = func(te toolEvent) (string, any) {
			ev.ReceiptID, ev.Status = te.ReceiptID, te.Status
			return EventRuntimeDecision, ev
		}
		de = g.deny(ctx, j, c, argsRec, de)
		g.dec.put(&decided{id: id, jobID: job.JobID, tokenHash: job.TokenHash, state: decisionDenied, at: start,
			expires: start.Add(g.opt.DecisionTTL)}, start)
		a := base
		a.Decision, a.Code, a.Message, a.Statements, a.ReceiptID, a.ApprovalID = DecisionDeny, de.Code, de.Msg, de.Statements, de.ReceiptID, de.ApprovalID
		return &a, nil
	}

	// The egress guard: arguments that would carry a secret the job has
	// seen out through the tool are refused unless the policy allows
	// exactly that (Egress:CarriesSecret).
	c.ctx[KeyCarriesSecret] = "false"
	if label, carries := g.egressSecret(job.JobID, t, c, &req.Params); carries {
		c.ctx[KeyCarriesSecret] = "true"
		preq := policy.Request{Action: t.action, Resource: c.resource, Context: policy.MapContext(c.ctx)}
		if !egressAllowed(j, preq, c.ctx) {
			g.opt.Log.WarnContext(ctx, "egress of a secret refused", "job_id", job.JobID, "tool", t.name, "secret", label)
			return deny(errf(http.StatusForbidden, CodeEgressSecret,
				"the arguments of %s carry secret %s, read earlier in this job, out through the tool; the policy does not allow it (%s)", t.name, label, KeyCarriesSecret))
		}
	}
	// What a runtime tool does is unknown to clawea: the lockdown refuses
	// every one.
	if on, err := g.lockdown(ctx); err != nil {
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the lockdown state is unavailable").Wrap(err)
	} else if on {
		return deny(errf(http.StatusForbidden, CodeLockdown, "a lockdown is in force: every runtime tool is refused"))
	}

	preq := policy.Request{Action: t.action, Resource: c.resource, Context: policy.MapContext(c.ctx)}
	var d policy.Decision
	j.Policy.Policy.Evaluate(&preq, &d)
	if d.Effect != policy.Deny && !known && !namesResource(j.Policy.Doc, d.Statements(), c.resource) {
		de := errf(http.StatusForbidden, CodeUnknownTool,
			"%s is not a tool clawea knows for %s: only an Allow statement of the job's policy naming %s exactly allows it", name, runtime, c.resource)
		de.Statements = slices.Clone(d.Statements())
		return deny(de)
	}
	approvalID := ""
	switch d.Effect {
	case policy.Deny:
		de := errf(http.StatusForbidden, CodePolicyDenied, "the job's policy denies %s on %s (%s)", t.action, c.resource, d.Reason)
		de.Statements = slices.Clone(d.Statements())
		return deny(de)
	case policy.NeedsApproval:
		ap, ae := g.approval(ctx, j, c, argsRec, argsKey, d.Statements())
		if ae != nil {
			switch ae.Code {
			case CodeApprovalRequired, CodeApprovalPending:
				a := base
				a.DecisionID = ""
				a.Decision, a.Code, a.Message, a.Statements, a.ApprovalID = DecisionNeedsApproval, ae.Code, ae.Msg, ae.Statements, ae.ApprovalID
				return &a, nil
			case CodeApprovalDenied, CodeApprovalExpired:
				return deny(ae)
			}
			return nil, ae
		}
		c.ctx[policy.ApprovalKey] = "true"
		j.Policy.Policy.Evaluate(&preq, &d)
		if d.Effect != policy.Allow {
			de := errf(http.StatusForbidden, CodePolicyDenied, "the job's policy denies %s on %s even with approval (%s)", t.action, c.resource, d.Reason)
			de.Statements = slices.Clone(d.Statements())
			de.ApprovalID = ap.ID
			return deny(de)
		}
		approvalID = ap.ID
	}

	// Allowed: recorded before the runtime may run the tool; a decision
	// that cannot be recorded is not given.
	statements := slices.Clone(d.Statements())
	ev, err := g.opt.Chain.AppendEvent(context.WithoutCancel(ctx), job.JobID, EventRuntimeDecision, event(DecisionAllow, "", statements, approvalID))
	if err != nil {
		var he *Error
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, errf(http.StatusServiceUnavailable, CodeStoreFailed, "the decision could not be recorded").Wrap(err)
	}
	expires := start.Add(g.opt.DecisionTTL)
	g.dec.put(&decided{id: id, jobID: job.JobID, tokenHash: job.TokenHash, c: c, argsRec: argsRec, approvalID: approvalID,
		eventHash: ev.EventHash, corr: req.Correlation, at: start, expires: expires}, start)
	a := base
	a.Decision, a.Statements, a.ApprovalID, a.ExpiresAt = DecisionAllow, statements, approvalID, envelope.FormatTime(expires)
	return &a, nil
}

// CloseDecision records the result of an allowed runtime call: a tool_call
// event with a v2 tool receipt bound to it (arguments and result redacted,
// then committed to with salts; a failure's error code disclosed).
func (g *Gateway) CloseDecision(ctx context.Context, j *Job, id string, req *ResultRequest) (*ResultAnswer, *Error) {
	job := j.Token
	x, e := g.dec.claim(id, j, g.opt.Now())
	if e != nil {
		return nil, e
	}
	result := canon.Value{Kind: canon.Object}
	result.Set("output", req.Result)
	status := receipt.StatusSuccess
	if req.Status != ResultSuccess {
		code := CodeRuntimeToolFailed
		status = receipt.StatusError
		if req.Status == ResultTimeout {
			status, code = receipt.StatusTimeout, CodeRuntimeToolTimeout
		}
		if req.ErrorCode != "" {
			code = req.ErrorCode
		}
		errObj := canon.Value{Kind: canon.Object}
		errObj.Set("code", canon.NewString(code))
		result.Set("error", errObj)
		if req.ErrorMessage != "" {
			result.Set("error_message", canon.NewString(req.ErrorMessage))
		}
	}
	// Every secret the job has seen is redacted before the commitment.
	result, n := evidence.RedactValue(g.opt.Secrets, job.JobID, &result)
	c := *x.c
	c.event = func(te toolEvent) (string, any) {
		return EventToolCall, resultEvent{toolEvent: te, DecisionID: x.id, DecisionEvent: x.eventHash, Correlation: x.corr}
	}
	rid, re := g.recordCall(ctx, j, &c, x.argsRec, result, status, x.approvalID, false, x.at)
	if re != nil {
		g.dec.release(x, re.ReceiptID != "")
		re.Msg, _ = g.opt.Secrets.String(job.JobID, re.Msg)
		return nil, re
	}
	g.dec.release(x, true)
	return &ResultAnswer{DecisionID: x.id, ReceiptID: rid, Status: req.Status, Redactions: n}, nil
}

// decideHTTP serves POST /v1/decide.
func (g *Gateway) decideHTTP(w http.ResponseWriter, r *http.Request) {
	j, e := g.authorizeRequest(r.Context(), r.Header)
	if e != nil {
		writeError(w, r, e)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxDecideBody+1))
	if err != nil {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "cannot read the body"))
		return
	}
	req, e := ParseDecideRequest(raw)
	if e != nil {
		writeError(w, r, e)
		return
	}
	ans, e := g.DecideTool(r.Context(), j, req)
	if e != nil {
		writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// decideResultHTTP serves POST /v1/decide/{id}/result.
func (g *Gateway) decideResultHTTP(w http.ResponseWriter, r *http.Request) {
	j, e := g.authorizeRequest(r.Context(), r.Header)
	if e != nil {
		writeError(w, r, e)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxDecideBody+1))
	if err != nil {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "cannot read the body"))
		return
	}
	req, e := ParseResultRequest(raw)
	if e != nil {
		writeError(w, r, e)
		return
	}
	ans, e := g.CloseDecision(r.Context(), j, r.PathValue("id"), req)
	if e != nil {
		writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}
