package toolgw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
)

// How approvals work. A call the policy gates on a human
// (Request:HasHumanApproval) creates a pending approval bound to the job,
// the tool, an HMAC of its arguments and the pinned policy, and records an
// approval_requested event. Two tool receipts are prepared for it at once,
// one for each decision, bound to that event: their payloads are fixed, so
// an approver can sign the chosen one's payload hash with their own key
// (clawea approve allow|deny --key). The gateway checks that signature (the
// approver must be allowlisted), adds its own as the primary signature, and
// stores the receipt — a tool receipt envelope v2 whose approver
// co-signature verifies offline — with a human-approval record. The agent's
// retry with the same arguments then runs once (an approval is used up by
// the call it allows); other arguments, another job or another policy need
// their own approval. A request nobody decides expires: recorded as a
// timeout denial, and the next retry asks again.

// Decisions.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// prepared is one decision's receipt payload, fixed when the approval is
// requested.
type prepared struct {
	Payload     json.RawMessage `json:"payload"`
	PayloadHash string          `json:"payload_hash_b64u"`
}

// approvalRequest is what an approval keeps about its request.
type approvalRequest struct {
	Event     store.JobEvent `json:"event"`
	AgentDID  string         `json:"agent_did"`
	ScopeHash string         `json:"token_scope_hash_b64u"`
	Allow     prepared       `json:"allow"`
	Deny      prepared       `json:"deny"`
}

// approvalSummary is what approvers see: no secret argument values.
type approvalSummary struct {
	JobID      string      `json:"job_id"`
	AgentDID   string      `json:"agent_did"`
	Tool       string      `json:"tool"`
	Action     string      `json:"action"`
	Resource   string      `json:"resource"`
	Arguments  canon.Value `json:"arguments"`
	Statements []string    `json:"statements"`
	// Runtime, for a runtime tool, is the call's kind, agent, session and
	// claimed facts: the approval is bound to them too.
	Runtime *runtimeBinding `json:"runtime,omitempty"`
}

// approvalDecision is what an approval keeps about its decision.
type approvalDecision struct {
	Decision        string          `json:"decision"`
	Approver        string          `json:"approver_did"`
	Note            string          `json:"note,omitempty"`
	Receipt         json.RawMessage `json:"receipt,omitempty"`
	HumanApprovalID string          `json:"human_approval_id"`
}

// approval returns the approval that lets this call run now, or the error
// to answer: pending, denied, expired, or newly requested.
func (g *Gateway) approval(ctx context.Context, j *Job, c *call, argsRec canon.Value, argsKey string, statements []string) (*store.Approval, *Error) {
	now := g.opt.Now()
	job := j.Token
	latest, err := g.opt.Store.FindApproval(ctx, job.JobID, c.tool.name, argsKey, j.Policy.Doc.Hash())
	switch {
	case err == nil:
		switch latest.Status {
		case store.ApprovalAllowed:
			if now.Sub(latest.DecidedAt) > g.opt.ApprovalTTL {
				e := errf(http.StatusForbidden, CodeApprovalExpired, "approval %s was given more than %s ago and has lapsed; ask again", latest.ID, g.opt.ApprovalTTL)
				e.ApprovalID = latest.ID
				g.opt.Store.SetApprovalStatus(ctx, latest.ID, store.ApprovalAllowed, store.ApprovalExpired, "", nil, time.Time{})
				return nil, e
			}
			if err := g.opt.Store.SetApprovalStatus(ctx, latest.ID, store.ApprovalAllowed, store.ApprovalUsed, "", nil, time.Time{}); err == nil {
				return &latest, nil
			}
			// Another call used it first: this one needs its own.
		case store.ApprovalPending:
			if now.After(latest.ExpiresAt) {
				g.expire(ctx, latest)
				e := errf(http.StatusForbidden, CodeApprovalExpired, "approval %s was not decided in time (timeout denial recorded); call again to ask again", latest.ID)
				e.ApprovalID = latest.ID
				return nil, e
			}
			e := errf(http.StatusForbidden, CodeApprovalPending, "approval %s is waiting for a human: clawea approve allow %s --key APPROVER.key.json", latest.ID, latest.ID)
			e.ApprovalID, e.Statements = latest.ID, slices.Clone(statements)
			return nil, e
		case store.ApprovalDenied:
			e := errf(http.StatusForbidden, CodeApprovalDenied, "approval %s was denied by %s", latest.ID, latest.Approver)
			e.ApprovalID, e.Statements = latest.ID, slices.Clone(statements)
			return nil, e
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "approvals are unavailable").Wrap(err)
	}
	return nil, g.requestApproval(ctx, j, c, argsRec, argsKey, statements)
}

// requestApproval creates a pending approval and answers APPROVAL_REQUIRED.
func (g *Gateway) requestApproval(ctx context.Context, j *Job, c *call, argsRec canon.Value, argsKey string, statements []string) *Error {
	now := g.opt.Now()
	job := j.Token
	id := newID("apv_")
	expires := now.Add(g.opt.ApprovalTTL)
	resource := g.recordedResource(job.JobID, c)
	payload := map[string]any{"approval_id": id, "tool": c.tool.name,
		"action": c.tool.action, "resource": resource, "arguments_key": argsKey, "policy_hash_b64u": j.Policy.Doc.Hash(),
		"statements": statements, "expires_at": envelope.FormatTime(expires)}
	if c.runtime != nil {
		payload["runtime"] = c.runtime
	}
	ev, err := g.opt.Chain.AppendEvent(ctx, job.JobID, EventApprovalRequested, payload)
	if err != nil {
		return errf(http.StatusServiceUnavailable, CodeStoreFailed, "the approval request could not be recorded").Wrap(err)
	}
	req := approvalRequest{Event: ev, AgentDID: job.Claims.Sub, ScopeHash: job.ScopeHash}
	req.Event.Event, req.Event.Payload = nil, nil
	for _, dec := range []string{DecisionAllow, DecisionDeny} {
		status := receipt.StatusSuccess
		if dec == DecisionDeny {
			status = receipt.StatusError
		}
		r, err := g.toolReceipt(j, c.tool.name, argsRec, map[string]any{"approval_id": id, "decision": dec, "resource": resource}, status, now, true)
		if err != nil {
			return errf(http.StatusInternalServerError, CodeSigningFailed, "the approval receipts could not be prepared").Wrap(err)
		}
		r.Version, r.HashAlgorithm = "2", envelope.HashSHA256
		r.Binding = &receipt.Binding{RunID: evidence.RunID(ev.JobID, ev.Segment), EventHash: ev.EventHash, Nonce: id, PolicyHash: j.Policy.Doc.Hash(), TokenScopeHash: job.ScopeHash}
		val, err := canon.ValueOf(r)
		if err != nil {
			return errf(http.StatusInternalServerError, CodeSigningFailed, "the receipt could not be signed").Wrap(err)
		}
		p := prepared{Payload: canon.AppendCompact(nil, &val), PayloadHash: envelope.PayloadHash(&val, false)}
		if dec == DecisionAllow {
			req.Allow = p
		} else {
			req.Deny = p
		}
	}
	reqRaw, _ := json.Marshal(req)
	sumRaw, _ := json.Marshal(approvalSummary{JobID: job.JobID, AgentDID: job.Claims.Sub, Tool: c.tool.name, Action: c.tool.action,
		Resource: resource, Arguments: argsRec, Statements: statements, Runtime: c.runtime})
	if err := evidence.Check(g.opt.Secrets, job.JobID, sumRaw, reqRaw, []byte(resource)); err != nil {
		return errf(http.StatusUnprocessableEntity, evidence.CodeSecretRefused, "the approval request would hold a secret of the job; it is not stored")
	}
	a, existed, err := g.opt.Store.CreateApproval(ctx, store.Approval{ID: id, JobID: job.JobID, Tool: c.tool.name, Action: c.tool.action,
		Resource: resource, ArgsHash: argsKey, PolicyHash: j.Policy.Doc.Hash(), Summary: sumRaw, Request: reqRaw, CreatedAt: now, ExpiresAt: expires})
	if err != nil {
		return errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "approvals are unavailable").Wrap(err)
	}
	code, msg := CodeApprovalRequired, "this call needs a human's approval: approval %s was requested (clawea approve allow %s --key APPROVER.key.json); call again with the same arguments once it is allowed"
	if existed {
		code, msg = CodeApprovalPending, "approval %s is waiting for a human (clawea approve allow %s --key APPROVER.key.json)"
	}
	e := errf(http.StatusForbidden, code, msg, a.ID, a.ID)
	e.ApprovalID, e.Statements = a.ID, slices.Clone(statements)
	g.opt.Log.InfoContext(ctx, "approval requested", "approval_id", a.ID, "job_id", job.JobID, "tool", c.tool.name, "resource", resource)
	return e
}

// ApprovalView is an approval as the API shows it.
type ApprovalView struct {
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	Summary   json.RawMessage `json:"request"`
	AllowHash string          `json:"allow_payload_hash_b64u"`
	DenyHash  string          `json:"deny_payload_hash_b64u"`
	Approver  string          `json:"approver_did,omitempty"`
	Decision  json.RawMessage `json:"decision,omitempty"`
	CreatedAt string          `json:"created_at"`
	ExpiresAt string          `json:"expires_at"`
	DecidedAt string          `json:"decided_at,omitempty"`
}

// View renders an approval for the API.
func View(a store.Approval) ApprovalView {
	var req approvalRequest
	json.Unmarshal(a.Request, &req)
	v := ApprovalView{ID: a.ID, Status: a.Status, Summary: a.Summary, AllowHash: req.Allow.PayloadHash, DenyHash: req.Deny.PayloadHash,
		Approver: a.Approver, CreatedAt: envelope.FormatTime(a.CreatedAt), ExpiresAt: envelope.FormatTime(a.ExpiresAt)}
	if len(a.Decision) > 0 {
		v.Decision = a.Decision
	}
	if !a.DecidedAt.IsZero() {
		v.DecidedAt = envelope.FormatTime(a.DecidedAt)
	}
	return v
}

// Decide records an approver's signed decision. sig is the approver's
// co-signature (role approver) over the chosen decision's payload hash.
func (g *Gateway) Decide(ctx context.Context, id, decision string, sig envelope.CoSignature, note string) (*store.Approval, *Error) {
	if decision != DecisionAllow && decision != DecisionDeny {
		return nil, errf(http.StatusBadRequest, CodeInvalidRequest, "decision must be allow or deny")
	}
	if len(note) > 1024 {
		return nil, errf(http.StatusBadRequest, CodeInvalidRequest, "the note is limited to 1024 bytes")
	}
	a, err := g.opt.Store.GetApproval(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf(http.StatusNotFound, CodeApprovalNotFound, "no approval %s", id)
	}
	if err != nil {
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the store is unavailable").Wrap(err)
	}
	if a.Status != store.ApprovalPending {
		return nil, errf(http.StatusConflict, CodeApprovalDecided, "approval %s is %s", id, a.Status)
	}
	now := g.opt.Now()
	if now.After(a.ExpiresAt) {
		g.expire(ctx, a)
		return nil, errf(http.StatusConflict, CodeApprovalExpired, "approval %s expired at %s", id, envelope.FormatTime(a.ExpiresAt))
	}
	if !slices.Contains(g.opt.Approvers, sig.SignerDID) {
		return nil, errf(http.StatusForbidden, CodeApproverUnknown, "%s is not an approver here", sig.SignerDID)
	}
	var req approvalRequest
	if err := json.Unmarshal(a.Request, &req); err != nil {
		return nil, errf(http.StatusInternalServerError, CodeStoreUnavailable, "approval %s is unreadable", id)
	}
	chosen := req.Allow
	if decision == DecisionDeny {
		chosen = req.Deny
	}
	if sig.Role != "approver" || sig.Algorithm != envelope.AlgEd25519 {
		return nil, errf(http.StatusBadRequest, CodeApprovalSignature, "the co-signature must be Ed25519 with role approver")
	}
	if _, err := time.Parse(time.RFC3339Nano, sig.IssuedAt); err != nil {
		return nil, errf(http.StatusBadRequest, CodeApprovalSignature, "the co-signature's issued_at is not a date-time")
	}
	pub, err := didkey.PublicKey(sig.SignerDID)
	sigBytes, serr := b64u.Decode(sig.Signature)
	if err != nil || serr != nil || !didkey.NewKey(pub).Verify([]byte(chosen.PayloadHash), sigBytes) {
		return nil, errf(http.StatusForbidden, CodeApprovalSignature, "the signature does not verify over the %s decision's payload hash %s", decision, chosen.PayloadHash)
	}
	val, err := canon.Parse(chosen.Payload)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, CodeStoreUnavailable, "approval %s is unreadable", id)
	}
	env, err := envelope.Sign(g.opt.Key, envelope.TypeTool, &val, envelope.Options{Version: envelope.Version2, IssuedAt: now})
	if err != nil {
		return nil, errf(http.StatusInternalServerError, CodeSigningFailed, "the receipt could not be signed").Wrap(err)
	}
	env.CoSignatures = append(env.CoSignatures, sig)
	envRaw, _ := env.JSON()
	haID := newID("ha_")
	to := store.ApprovalAllowed
	if decision == DecisionDeny {
		to = store.ApprovalDenied
	}
	decRaw, _ := json.Marshal(approvalDecision{Decision: decision, Approver: sig.SignerDID, Note: note, Receipt: envRaw, HumanApprovalID: haID})
	if err := evidence.Check(g.opt.Secrets, a.JobID, decRaw); err != nil {
		return nil, errf(http.StatusUnprocessableEntity, evidence.CodeSecretRefused, "the decision would hold a secret of the job (in its note?); it is not stored")
	}
	if err := g.opt.Store.SetApprovalStatus(ctx, id, store.ApprovalPending, to, sig.SignerDID, decRaw, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errf(http.StatusConflict, CodeApprovalDecided, "approval %s was decided meanwhile", id)
		}
		return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the store is unavailable").Wrap(err)
	}
	kind := "explicit_approve"
	if decision == DecisionDeny {
		kind = "explicit_deny"
	}
	var receiptPayload struct {
		ReceiptID string `json:"receipt_id"`
		ArgsHash  string `json:"args_hash_b64u"`
	}
	json.Unmarshal(chosen.Payload, &receiptPayload)
	g.recordDecision(ctx, a, req, kind, sig.SignerDID, haID, receiptPayload.ArgsHash, &evidence.Item{Kind: evidence.KindToolReceipt, ItemID: receiptPayload.ReceiptID, JSON: envRaw, BoundTo: &req.Event}, map[string]any{
		"approval_id": id, "decision": decision, "approver_did": sig.SignerDID, "receipt_id": receiptPayload.ReceiptID})
	g.opt.Log.InfoContext(ctx, "approval decided", "approval_id", id, "decision", decision, "approver", sig.SignerDID)
	out, _ := g.opt.Store.GetApproval(ctx, id)
	return &out, nil
}

// recordDecision appends the decision's event with a human-approval record
// (anchored to the segment's first model call, when there is one) and, for
// signed decisions, the co-signed tool receipt bound to the request event.
func (g *Gateway) recordDecision(ctx context.Context, a store.Approval, req approvalRequest, kind, approver, haID, argsHash string, rcpt *evidence.Item, payload map[string]any) {
	eventType := EventApprovalDecided
	if kind == "timeout_deny" {
		eventType = EventApprovalExpired
	}
	minted := kind == "explicit_approve"
	_, err := g.opt.Chain.Record(context.WithoutCancel(ctx), a.JobID, eventType, payload, func(ap *evidence.Appended) ([]evidence.Item, string, error) {
		ha := receipt.HumanApproval{Version: "1", ReceiptID: haID, ApprovalType: kind, ScopeHash: argsHash, ApproverSubject: approver,
			CapabilityMinted: &minted, PolicyHash: a.PolicyHash, HashAlgorithm: envelope.HashSHA256, AgentDID: req.AgentDID,
			Timestamp: envelope.FormatTime(g.opt.Now()), Binding: &receipt.Binding{RunID: ap.Event.RunID, EventHash: ap.Event.EventHash, ParentSpanID: ap.Anchor}}
		raw, err := canon.Marshal(ha)
		if err != nil {
			return nil, "", err
		}
		items := []evidence.Item{{Kind: evidence.KindHumanApproval, ItemID: haID, JSON: raw}}
		if rcpt != nil {
			items = append(items, *rcpt)
		}
		return items, "", nil
	})
	if err != nil {
		g.opt.Log.ErrorContext(ctx, "approval decision not recorded in the job's chain", "approval_id", a.ID, "job_id", a.JobID, "err", err)
	}
}

// expire turns an undecided approval into a recorded timeout denial.
func (g *Gateway) expire(ctx context.Context, a store.Approval) {
	if err := g.opt.Store.SetApprovalStatus(ctx, a.ID, store.ApprovalPending, store.ApprovalExpired, "", nil, g.opt.Now()); err != nil {
		return // decided or expired meanwhile
	}
	var req approvalRequest
	json.Unmarshal(a.Request, &req)
	g.recordDecision(ctx, a, req, "timeout_deny", "clawea:timeout", newID("ha_"), "", nil, map[string]any{"approval_id": a.ID, "decision": "timeout_deny"})
	g.opt.Log.InfoContext(ctx, "approval expired", "approval_id", a.ID, "job_id", a.JobID)
}

// Sweep expires every pending approval past its deadline; the server runs
// it periodically.
func (g *Gateway) Sweep(ctx context.Context) int {
	n := 0
	after := ""
	for {
		list, err := g.opt.Store.ListApprovals(ctx, store.ApprovalPending, after, 500)
		if err != nil || len(list) == 0 {
			return n
		}
		for _, a := range list {
			if g.opt.Now().After(a.ExpiresAt) {
				g.expire(ctx, a)
				n++
			}
		}
		after = list[len(list)-1].ID
	}
}

// SignDecision makes an approver's co-signature for a decision on an
// approval as the API shows it: the approver signs the chosen decision's
// payload hash (clawea approve allow|deny does this with the approver's key
// file, so the key never leaves the approver).
func SignDecision(k signer.Signer, v ApprovalView, decision string, at time.Time) (envelope.CoSignature, error) {
	hash := v.AllowHash
	switch decision {
	case DecisionAllow:
	case DecisionDeny:
		hash = v.DenyHash
	default:
		return envelope.CoSignature{}, errors.New("decision must be allow or deny")
	}
	if hash == "" {
		return envelope.CoSignature{}, errors.New("the approval names no payload to sign")
	}
	sig, err := k.Sign([]byte(hash))
	if err != nil {
		return envelope.CoSignature{}, err
	}
	return envelope.CoSignature{Signature: b64u.Encode(sig), Algorithm: envelope.AlgEd25519, SignerDID: k.DID(),
		IssuedAt: envelope.FormatTime(at), Role: "approver"}, nil
}
