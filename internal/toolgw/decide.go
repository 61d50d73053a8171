package toolgw

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/connector/runtimetools"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/metrics"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/token"
)

// The decision API. A tool the agent runtime runs itself (OpenClaw's exec,
// file and web tools) is decided here and recorded here; clawea never runs
// it. POST /v1/decide checks the job's token, evaluates tool:execute on
// tool://<runtime>/<name> against the pinned policy (the facts the
// request states are claims, under Claim: keys), applies the egress guard and the lockdown, and answers:
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

// Context keys of runtime tools (docs/policy.md). The facts below are
// proven keys, which only a host credential (not built yet) may set; what
// a request states is set under policy.ClaimPrefix + key. A key left unset
// is absent, so every condition on it is false.
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

// Bounds of the decisions an instance keeps. An open decision keeps only
// what closing it needs: its tool and resource, the compact JSON of its
// recorded arguments (parsed again at close), the event it closes, its
// correlation ids. A closed or denied decision keeps a tombstone (ids,
// state, expiry) so that a late result gets the right code.
const (
	// maxOpenPerJob bounds one job's open decisions: past it the job's
	// new decisions are refused (DECISIONS_AT_CAPACITY, 429), other
	// jobs' are not.
	maxOpenPerJob = 256
	// maxOpenBytesPerJob bounds what one job's open decisions keep.
	maxOpenBytesPerJob = 32 << 20
	// maxOpenBytes and maxOpenDecisions bound every job's open decisions
	// together (DECISIONS_AT_CAPACITY, 503).
	maxOpenBytes     = 512 << 20
	maxOpenDecisions = 100_000
	// maxTombstones bounds the tombstones kept; past it the oldest is
	// dropped (a late result for it gets DECISION_NOT_FOUND).
	maxTombstones = 100_000
	// decidedOverhead is the fixed cost counted for a kept decision (the
	// struct, its map slot and strings' headers).
	decidedOverhead = 512
	// closingGrace is how long past its expiry a decision whose close
	// never returned (a store that hung) is kept before it is dropped.
	closingGrace = 10 * time.Minute
)

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
	// Claims are the facts the request claimed, unproven (set in the
	// policy context under Claim: keys only).
	Claims *Facts `json:"claims,omitempty"`
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

// decided is a decision kept until its TTL passes: open (or closing)
// with what closing needs, or a tombstone (closed, denied).
type decided struct {
	id, jobID, tokenHash string
	state                decisionState
	// What closing needs; nil and empty once closed.
	tool, action, resource string
	args                   []byte // compact JSON of the recorded arguments
	approvalID, eventHash  string
	corr                   *Correlation
	at, expires            time.Time
	size                   int // bytes counted against the budgets while open
}

// jobOpen counts one job's open decisions.
type jobOpen struct{ n, bytes int }

// decisions are the runtime decisions of this gateway instance: a result
// must reach the instance that decided (after a restart an open decision
// cannot be closed: DECISION_NOT_FOUND).
type decisions struct {
	mu        sync.Mutex
	m         map[string]*decided
	jobs      map[string]*jobOpen // open (and closing) decisions per job
	open      int                 // open and closing decisions, every job
	bytes     int                 // their sizes, every job
	tombs     []string            // tombstone ids, oldest first
	ntomb     int                 // live tombstones
	adds      int
	lastSweep time.Time
	// Limits (the constants above; tests of this package may lower them).
	perJob, perJobBytes, maxOpen, maxBytes, maxTombs int
	metric                                           *metrics.CounterVec
}

func newDecisions(reg *metrics.Registry) *decisions {
	return &decisions{m: map[string]*decided{}, jobs: map[string]*jobOpen{},
		perJob: maxOpenPerJob, perJobBytes: maxOpenBytesPerJob, maxOpen: maxOpenDecisions, maxBytes: maxOpenBytes, maxTombs: maxTombstones,
		metric: reg.Counter("clawea_runtime_decisions_total", "Runtime tool decisions by answer and code.", "decision", "code")}
}

// decisionSize is what an open decision is counted for.
func decisionSize(args []byte, corr *Correlation, strs ...string) int {
	n := decidedOverhead + len(args)
	for _, s := range strs {
		n += len(s)
	}
	if corr != nil {
		n += len(corr.RunID) + len(corr.ToolCallID) + len(corr.SessionKey) + len(corr.AgentID)
		if corr.Trace != nil {
			n += len(corr.Trace.Traceparent) + len(corr.Trace.Tracestate)
		}
	}
	return n
}

// reserve counts an open decision of size bytes for the job before it is
// made, or refuses: the job's own bounds first (429), then every job's
// (503). A reservation is either kept by open or given back by unreserve.
func (d *decisions) reserve(jobID string, size int, now time.Time) *Error {
	d.mu.Lock()
	defer d.mu.Unlock()
	full := func() *Error {
		jo := d.jobs[jobID]
		if jo != nil && (jo.n >= d.perJob || jo.bytes+size > d.perJobBytes) {
			return errf(http.StatusTooManyRequests, CodeDecisionsFull,
				"this job has %d runtime decisions waiting for their result (at most %d, %d bytes); close them or let them expire", jo.n, d.perJob, d.perJobBytes)
		}
		if size > d.perJobBytes {
			return errf(http.StatusTooManyRequests, CodeDecisionsFull, "the decision would keep %d bytes, more than a job may (%d)", size, d.perJobBytes)
		}
		if d.open >= d.maxOpen || d.bytes+size > d.maxBytes {
			return errf(http.StatusServiceUnavailable, CodeDecisionsFull, "too many runtime decisions are waiting for their result; try again later")
		}
		return nil
	}
	if e := full(); e != nil {
		// Expired decisions may be what fills it; sweep at most once a
		// second, so that a job at its bound cannot make every call O(n).
		if !now.After(d.lastSweep) || now.Sub(d.lastSweep) < time.Second {
			return e
		}
		d.sweepLocked(now)
		if e := full(); e != nil {
			return e
		}
	}
	jo := d.jobs[jobID]
	if jo == nil {
		jo = &jobOpen{}
		d.jobs[jobID] = jo
	}
	jo.n++
	jo.bytes += size
	d.open++
	d.bytes += size
	return nil
}

// unreserve gives back a reservation that did not become an open decision.
func (d *decisions) unreserve(jobID string, size int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uncountLocked(jobID, size)
}

func (d *decisions) uncountLocked(jobID string, size int) {
	if jo := d.jobs[jobID]; jo != nil {
		jo.n--
		jo.bytes -= size
		if jo.n <= 0 {
			delete(d.jobs, jobID)
		}
	}
	d.open--
	d.bytes -= size
}

// putOpen keeps an allowed decision, whose size was reserved.
func (d *decisions) putOpen(x *decided, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.adds++; d.adds%1024 == 0 {
		d.sweepLocked(now)
	}
	d.m[x.id] = x
}

// putTomb keeps a tombstone: a denied decision.
func (d *decisions) putTomb(x *decided, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.adds++; d.adds%1024 == 0 {
		d.sweepLocked(now)
	}
	d.m[x.id] = x
	d.addTombLocked(x.id)
}

func (d *decisions) addTombLocked(id string) {
	d.tombs = append(d.tombs, id)
	d.ntomb++
	for d.ntomb > d.maxTombs && len(d.tombs) > 0 {
		old := d.tombs[0]
		d.tombs = d.tombs[1:]
		if x := d.m[old]; x != nil && (x.state == decisionClosed || x.state == decisionDenied) {
			delete(d.m, old)
			d.ntomb--
		}
	}
}

// sweepLocked drops expired decisions and tombstones, and decisions whose
// close has been stuck past their expiry by closingGrace.
func (d *decisions) sweepLocked(now time.Time) {
	d.lastSweep = now
	for id, x := range d.m {
		switch x.state {
		case decisionOpen:
			if now.After(x.expires) {
				delete(d.m, id)
				d.uncountLocked(x.jobID, x.size)
			}
		case decisionClosing:
			if now.After(x.expires.Add(closingGrace)) {
				delete(d.m, id)
				d.uncountLocked(x.jobID, x.size)
			}
		default:
			if now.After(x.expires) {
				delete(d.m, id)
				d.ntomb--
			}
		}
	}
	live := make([]string, 0, d.ntomb)
	for _, id := range d.tombs {
		if x := d.m[id]; x != nil && (x.state == decisionClosed || x.state == decisionDenied) {
			live = append(live, id)
		}
	}
	d.tombs = live
}

// claim moves an open decision of this job, decided for this token and
// not expired, to closing, and returns a copy of what closing needs.
func (d *decisions) claim(id string, j *Job, now time.Time) (decided, *Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.m[id]
	if x == nil || x.jobID != j.Token.JobID {
		return decided{}, errf(http.StatusNotFound, CodeDecisionNotFound, "no decision %s for this job (decisions are kept by the instance that made them, for their TTL)", clip(id))
	}
	if x.tokenHash != j.Token.TokenHash {
		return decided{}, errf(http.StatusForbidden, CodeDecisionTokenMismatch, "decision %s was made for another token of this job", id)
	}
	switch x.state {
	case decisionDenied:
		return decided{}, errf(http.StatusConflict, CodeDecisionNotAllowed, "decision %s denied the call; it has no result to record", id)
	case decisionClosing, decisionClosed:
		return decided{}, errf(http.StatusConflict, CodeDecisionClosed, "decision %s already has its result", id)
	}
	if now.After(x.expires) {
		return decided{}, errf(http.StatusGone, CodeDecisionExpired, "decision %s could be closed until %s", id, envelope.FormatTime(x.expires))
	}
	x.state = decisionClosing
	return *x, nil
}

// release ends a claim: closed when a receipt was recorded (the decision
// becomes a tombstone and its bytes are given back), open again (the
// runtime may retry) when nothing was. A decision swept meanwhile stays
// gone.
func (d *decisions) release(id string, recorded bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.m[id]
	if x == nil || x.state != decisionClosing {
		return
	}
	if !recorded {
		x.state = decisionOpen
		return
	}
	d.uncountLocked(x.jobID, x.size)
	*x = decided{id: x.id, jobID: x.jobID, tokenHash: x.tokenHash, state: decisionClosed, expires: x.expires}
	d.addTombLocked(x.id)
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
	runtime := req.Tool.Runtime
	// The runtime's tool catalogue (internal/connector/runtimetools).
	name, known := runtimetools.Resolve(runtime, req.Tool.Name)
	t := &tool{name: runtime + "/" + name, action: ActionToolExecute, mutating: true}
	c := &call{tool: t, resource: "tool://" + runtime + "/" + name, ctx: map[string]string{
		"Agent:DID": job.Claims.Sub, "Job:ID": job.JobID, "Tool:Name": name, KeyToolRuntime: runtime,
		"Context:Hour": strconv.Itoa(start.UTC().Hour()),
	}}
	// What the request says about the call (kind, agent, sandbox,
	// requester) is claimed by whoever holds the job token, the agent
	// included: it is set under Claim: keys only, so that a Deny may rely
	// on it while an Allow on a proven key (Runtime:Sandboxed, ...) never
	// applies through it. Proven keys need a host credential clawea does
	// not have yet (docs/decide.md).
	for k, v := range job.Labels() {
		c.ctx[policy.LabelKeyPrefix+k] = v
	}
	for k, v := range claimedFacts(req) {
		c.ctx[policy.ClaimPrefix+k] = v
	}
	argsRec := g.recordedArgs(job.JobID, t, &req.Params)
	bind := runtimeBindingOf(req)
	c.runtime = bind
	argsKey := g.runtimeArgsKey(t.name, &req.Params, bind)
	// Only the compact form of the recorded arguments is kept for the
	// close (parsed again there); the parsed tree goes with the request.
	// (cloned to its length: an appended buffer may have twice the room).
	argsJSON := bytes.Clone(canon.AppendCompact(nil, &argsRec))
	id := newID("dec_")
	size := decisionSize(argsJSON, req.Correlation, id, job.JobID, job.TokenHash, t.name, t.action, c.resource)
	if e := g.dec.reserve(job.JobID, size, start); e != nil {
		return nil, e
	}
	reserved := true
	defer func() {
		if reserved {
			g.dec.unreserve(job.JobID, size)
		}
	}()
	base := DecideAnswer{DecisionID: id, Tool: t.name, Action: t.action, Resource: c.resource, PolicyHash: j.Policy.Doc.Hash()}
	event := func(decision, code string, statements []string, approvalID string) runtimeEvent {
		return runtimeEvent{DecisionID: id, Decision: decision, Tool: t.name, Kind: req.Tool.Kind, Action: t.action,
			Resource: g.recordedResource(job.JobID, c), Code: code, Statements: statements, ApprovalID: approvalID,
			ArgsKey: argsKey, PolicyHash: j.Policy.Doc.Hash(), Correlation: req.Correlation, Claims: req.Facts}
	}
	// deny records the refusal (runtime_decision with a signed denial
	// receipt) and answers deny; only a tombstone of the decision is kept.
	deny := func(de *Error) (*DecideAnswer, *Error) {
		ev := event(DecisionDeny, de.Code, de.Statements, de.ApprovalID)
		c.event = func(te toolEvent) (string, any) {
			ev.ReceiptID, ev.Status = te.ReceiptID, te.Status
			return EventRuntimeDecision, ev
		}
		de = g.deny(ctx, j, c, argsRec, de)
		g.dec.putTomb(&decided{id: id, jobID: job.JobID, tokenHash: job.TokenHash, state: decisionDenied,
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
	// What a runtime tool does is unknown to clawea: it is treated as
	// mutating, so it needs a token with the write scope (before the
	// policy), and the lockdown refuses every one.
	if !job.Claims.CanWrite() {
		return deny(errf(http.StatusForbidden, token.CodeWriteScopeRequired,
			"runtime tools are treated as mutating and the token has no %s scope: obtain a write token (clawea token issue --job JOB --scope write)", token.ScopeWrite))
	}
	if on, err := g.lockdown(ctx); err != nil {
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the lockdown state is unavailable").Wrap(err)
	} else if on {
		return deny(errf(http.StatusForbidden, CodeLockdown, "a lockdown is in force: every runtime tool is refused"))
	}

	// An operator's connector switch: the runtime as a whole, or the MCP
	// server a <server>__<tool> name belongs to.
	if sw, err := g.switchDenied(ctx, runtimeConnectors(runtime, name)...); err != nil {
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the connector switches are unavailable").Wrap(err)
	} else if sw != nil {
		return deny(errf(http.StatusForbidden, CodeConnectorDenied, "connector %s is denied by an operator (%s, at %s): every call of its tools is refused", sw.Name, sw.Reason, sw.At.UTC().Format(time.RFC3339)))
	}

	preq := policy.Request{Action: t.action, Resource: c.resource, Context: policy.MapContext(c.ctx)}
	var d policy.Decision
	j.Policy.Policy.Evaluate(&preq, &d)
	if d.Effect != policy.Deny && !known && !namesResource(j.Policy.Doc, d.Statements(), c.resource) {
		de := errf(http.StatusForbidden, CodeUnknownTool,
			"%s is not a tool clawea knows for %s: only an Allow statement of the job's policy naming %s exactly allows it", name, runtime, c.resource)
		if runtimetools.ExactOnly(runtime, name) {
			de = errf(http.StatusForbidden, CodeExactAllowRequired,
				"%s can run what clawea does not see (commands, code, other runtimes): only an Allow statement of the job's policy naming %s exactly allows it, never a glob", name, c.resource)
		}
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
	g.dec.putOpen(&decided{id: id, jobID: job.JobID, tokenHash: job.TokenHash, tool: t.name, action: t.action, resource: c.resource,
		args: argsJSON, approvalID: approvalID, eventHash: ev.EventHash, corr: cloneCorrelation(req.Correlation), at: start, expires: expires, size: size}, start)
	reserved = false
	a := base
	a.Decision, a.Statements, a.ApprovalID, a.ExpiresAt = DecisionAllow, statements, approvalID, envelope.FormatTime(expires)
	return &a, nil
}

// disclosableCode reports whether a runtime's error code may be disclosed
// in a receipt: ^[A-Z][A-Z0-9_]{0,31}$ (ENOENT, EXIT_1). Any other code is
// committed to with the result, not disclosed.
func disclosableCode(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// CloseDecision records the result of an allowed runtime call: a tool_call
// event with a v2 tool receipt bound to it (arguments and result redacted,
// then committed to with salts; a failure's error code disclosed when it
// is a plain code, committed to otherwise).
func (g *Gateway) CloseDecision(ctx context.Context, j *Job, id string, req *ResultRequest) (*ResultAnswer, *Error) {
	job := j.Token
	x, e := g.dec.claim(id, j, g.opt.Now())
	if e != nil {
		return nil, e
	}
	argsRec, err := canon.Parse(x.args)
	if err != nil {
		// Cannot happen (the bytes are canon's own compact form): nothing
		// is recorded and the decision stays open.
		g.dec.release(x.id, false)
		return nil, errf(http.StatusInternalServerError, CodeStoreFailed, "the decision's arguments are unreadable").Wrap(err)
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
			if disclosableCode(req.ErrorCode) {
				code = req.ErrorCode
			} else {
				// Free text (it could carry anything) is committed to,
				// beside the message, never disclosed.
				result.Set("error_code_given", canon.NewString(req.ErrorCode))
			}
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
	c := call{tool: &tool{name: x.tool, action: x.action, mutating: true}, resource: x.resource}
	c.event = func(te toolEvent) (string, any) {
		return EventToolCall, resultEvent{toolEvent: te, DecisionID: x.id, DecisionEvent: x.eventHash, Correlation: x.corr}
	}
	rid, re := g.recordCall(ctx, j, &c, argsRec, result, status, x.approvalID, false, x.at)
	if re != nil {
		g.dec.release(x.id, re.ReceiptID != "")
		re.Msg, _ = g.opt.Secrets.String(job.JobID, re.Msg)
		return nil, re
	}
	g.dec.release(x.id, true)
	return &ResultAnswer{DecisionID: x.id, ReceiptID: rid, Status: req.Status, Redactions: n}, nil
}

// decideHTTP serves POST /v1/decide.
func (g *Gateway) decideHTTP(w http.ResponseWriter, r *http.Request) {
	serveDecision(g, w, r, ParseDecideRequest, func(j *Job, req *DecideRequest) (any, *Error) {
		return g.DecideTool(r.Context(), j, req)
	})
}

// decideResultHTTP serves POST /v1/decide/{id}/result.
func (g *Gateway) decideResultHTTP(w http.ResponseWriter, r *http.Request) {
	serveDecision(g, w, r, ParseResultRequest, func(j *Job, req *ResultRequest) (any, *Error) {
		return g.CloseDecision(r.Context(), j, r.PathValue("id"), req)
	})
}

// serveDecision authorizes the job token, reads and parses the body (at
// most MaxDecideBody bytes) and answers what run returns.
func serveDecision[T any](g *Gateway, w http.ResponseWriter, r *http.Request, parse func([]byte) (T, *Error), run func(*Job, T) (any, *Error)) {
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
	req, e := parse(raw)
	if e != nil {
		writeError(w, r, e)
		return
	}
	ans, e := run(j, req)
	if e != nil {
		writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// claimedFacts are the request's statements about the call, by the key a
// proof of them would set (Runtime:Sandboxed, ...); DecideTool puts them in
// the policy context under Claim: keys only.
func claimedFacts(req *DecideRequest) map[string]string {
	m := map[string]string{}
	if req.Tool.Kind != "" {
		m[KeyToolKind] = req.Tool.Kind
	}
	if req.Correlation != nil && req.Correlation.AgentID != "" {
		m[KeyRuntimeAgentID] = req.Correlation.AgentID
	}
	if f := req.Facts; f != nil {
		if f.Sandboxed != nil {
			m[KeyRuntimeSandboxed] = boolString(*f.Sandboxed)
		}
		if f.Elevated != nil {
			m[KeyRuntimeElevated] = boolString(*f.Elevated)
		}
		if r := f.Requester; r != nil {
			if r.Channel != "" {
				m[KeyRequesterChannel] = r.Channel
			}
			if r.AccountID != "" {
				m[KeyRequesterAccountID] = r.AccountID
			}
			if r.SenderID != "" {
				m[KeyRequesterSenderID] = r.SenderID
			}
			if r.SenderIsOwner != nil {
				m[KeyRequesterIsOwner] = boolString(*r.SenderIsOwner)
			}
		}
	}
	return m
}

// runtimeBinding is what, besides the tool and its arguments, a runtime
// call's approval is bound to and shows its approver: the call's kind,
// the runtime's agent and session, and the facts the request claimed.
// Another requester, kind, agent or session needs its own approval.
type runtimeBinding struct {
	Kind       string `json:"kind,omitempty"`
	AgentID    string `json:"agent_id,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
	Claims     *Facts `json:"claims,omitempty"`
}

func runtimeBindingOf(req *DecideRequest) *runtimeBinding {
	b := &runtimeBinding{Kind: req.Tool.Kind, Claims: normalFacts(req.Facts)}
	if req.Correlation != nil {
		b.AgentID, b.SessionKey = req.Correlation.AgentID, req.Correlation.SessionKey
	}
	return b
}

// runtimeArgsKey binds a runtime call's approval: an HMAC, under the
// commitment secret, of the tool, the JCS form of its arguments and the
// JCS form of its binding (kind, agent, session, claimed facts).
func (g *Gateway) runtimeArgsKey(tool string, params *canon.Value, b *runtimeBinding) string {
	bv, err := canon.ValueOf(b)
	if err != nil {
		// Strings and booleans only: cannot fail. Bind to a fresh random
		// value rather than to nothing, so no approval ever matches.
		bv = canon.NewString(newID("unbound_"))
	}
	mac := hmac.New(sha256.New, g.opt.CommitSecret)
	mac.Write([]byte("clawea runtime tool call\x00" + tool + "\x00"))
	mac.Write(canon.AppendJCS(nil, params))
	mac.Write([]byte{0})
	mac.Write(canon.AppendJCS(nil, &bv))
	return b64u.Encode(mac.Sum(nil))
}

// cloneCorrelation copies the ids a kept decision needs: a parsed string
// may share the memory of the whole request body, which must not be kept
// alive by a run id.
func cloneCorrelation(c *Correlation) *Correlation {
	if c == nil {
		return nil
	}
	out := &Correlation{RunID: strings.Clone(c.RunID), ToolCallID: strings.Clone(c.ToolCallID),
		SessionKey: strings.Clone(c.SessionKey), AgentID: strings.Clone(c.AgentID)}
	if c.Trace != nil {
		out.Trace = &Trace{Traceparent: strings.Clone(c.Trace.Traceparent), Tracestate: strings.Clone(c.Trace.Tracestate)}
	}
	return out
}

// normalFacts drops empty objects, so that "facts": {} binds as no facts.
func normalFacts(f *Facts) *Facts {
	if f == nil {
		return nil
	}
	out := *f
	if r := f.Requester; r != nil && *r == (Requester{}) {
		out.Requester = nil
	}
	if out.Sandboxed == nil && out.Elevated == nil && out.Requester == nil {
		return nil
	}
	return &out
}
