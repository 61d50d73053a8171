package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/internal/issuer"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/token"
)

// EventJobStarted is a job's first event when its policy decided job:start
// or it has labels: the labels, the scopes and TTL granted, and the
// decision (effect, statements, policy id).
const EventJobStarted = "job_started"

// Codes of the job:start and token:issue decisions.
const (
	CodeJobStartDenied           = "JOB_START_DENIED"
	CodeJobStartApprovalRequired = "JOB_START_APPROVAL_REQUIRED"
	CodeJobScopeInvalid          = "JOB_SCOPE_INVALID"
	CodeTokenIssueDenied         = "TOKEN_ISSUE_DENIED"
	CodeApprovalRequired         = "APPROVAL_REQUIRED"
)

// parseLabels reads the labels of a start request: string values, names
// and values from closed alphabets (policy.CheckLabels).
func parseLabels(in map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		str, ok := v.(string)
		if !ok {
			return nil, jerr(http.StatusBadRequest, policy.CodeLabelInvalid, "label %.64q must have a string value", k)
		}
		out[k] = str
	}
	if msg := policy.LabelProblem(out); msg != "" {
		return nil, jerr(http.StatusBadRequest, policy.CodeLabelInvalid, "%s", msg)
	}
	return out, nil
}

// policy returns the job's compiled policy: through the policy cache
// (verified, inherits resolved) when the service has one, else compiled
// from the stored payload. A v1 policy compiles to one without statements.
func (s *Service) policy(ctx context.Context, w store.WPC) (*policy.Policy, error) {
	if s.pols != nil {
		e, perr := s.pols.Get(ctx, w.Hash)
		if perr != nil {
			return nil, perr
		}
		return e.Policy, nil
	}
	doc, err := policy.Parse(w.Payload)
	if err != nil {
		return nil, jerr(http.StatusInternalServerError, "POLICY_INVALID", "policy %s cannot be read", w.Hash).Wrap(err)
	}
	pol, err := policy.Compile(doc, s.parents(ctx))
	if err != nil {
		// An unresolvable parent fails closed.
		return nil, jerr(http.StatusInternalServerError, "POLICY_INVALID", "policy %s cannot be compiled", w.Hash).Wrap(err)
	}
	return pol, nil
}

// parents resolves inherits from the store's policies (the one published
// policy with that id; several are ambiguous), when the store lists them.
func (s *Service) parents(ctx context.Context) policy.Resolver {
	lister, ok := s.st.(interface {
		ListWPCs(ctx context.Context, after string, limit int) ([]store.WPC, error)
	})
	if !ok {
		return nil
	}
	return func(id string) (*policy.Document, error) {
		var found []store.WPC
		for after := ""; ; {
			page, err := lister.ListWPCs(ctx, after, 500)
			if err != nil {
				return nil, err
			}
			for _, w := range page {
				if w.PolicyID == id {
					found = append(found, w)
				}
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].Hash
		}
		switch len(found) {
		case 0:
			return nil, nil
		case 1:
			return policy.Parse(found[0].Payload)
		}
		return nil, errors.New("several policies have this policy_id")
	}
}

// startScopes returns the scopes of a new job's token (labels apart).
// Explicit scopes are taken as given (no label: entries); otherwise the
// defaults, with the write scope when asked (Write true), or, when the
// request does not say, unless the policy governs job:start (a policy
// written for job starts gets read-only jobs unless write is asked for).
func startScopes(req StartRequest, governs bool) ([]string, error) {
	if len(req.Scopes) > 0 {
		for _, sc := range req.Scopes {
			if strings.HasPrefix(sc, policy.LabelScopePrefix) {
				return nil, jerr(http.StatusBadRequest, CodeJobScopeInvalid, "scope %.64q: labels are given as labels, not scopes", sc)
			}
		}
		scopes := slices.Clone(req.Scopes)
		if req.Write != nil {
			has := slices.Contains(scopes, ScopeWrite)
			if *req.Write && !has {
				scopes = append(scopes, ScopeWrite)
			} else if !*req.Write && has {
				return nil, jerr(http.StatusBadRequest, CodeJobScopeInvalid, "write is false but the scopes include %s", ScopeWrite)
			}
		}
		return scopes, nil
	}
	scopes := slices.Clone(DefaultScopes)
	if req.Write != nil && *req.Write || req.Write == nil && !governs {
		scopes = append(scopes, ScopeWrite)
	}
	return scopes, nil
}

// startDecision is a job:start (or token:issue) decision that allowed.
type startDecision struct {
	Action     string   `json:"action"`
	Resource   string   `json:"resource"`
	Effect     string   `json:"effect"`
	PolicyID   string   `json:"policy_id,omitempty"`
	Statements []string `json:"statements,omitempty"`
}

// jobContext is the context of a job:start or token:issue decision.
func jobContext(agent string, ttl time.Duration, scopes []string, labels map[string]string) policy.MapContext {
	sorted := slices.Clone(scopes)
	slices.Sort(sorted)
	ctx := policy.MapContext{"Agent:DID": agent, "Job:TTL": strconv.FormatInt(int64(ttl/time.Second), 10),
		"Job:Scope": strings.Join(sorted, " "), "Job:WriteScope": strconv.FormatBool(slices.Contains(scopes, ScopeWrite))}
	for k, v := range labels {
		ctx[policy.LabelKeyPrefix+k] = v
	}
	return ctx
}

// decideStart evaluates action on job://<agent>: deny refuses with the
// deciding statements, needs_approval refuses (no approval flow for job
// starts: an operator approves by starting the job under a policy that
// allows it).
func decideStart(pol *policy.Policy, action, agent string, ttl time.Duration, scopes []string, labels map[string]string) (*startDecision, error) {
	req := policy.Request{Action: action, Resource: policy.JobResource(agent), Context: jobContext(agent, ttl, scopes, labels)}
	var d policy.Decision
	pol.Evaluate(&req, &d)
	denied, approval := CodeJobStartDenied, CodeJobStartApprovalRequired
	if action == policy.ActionTokenIssue {
		denied, approval = CodeTokenIssueDenied, CodeApprovalRequired
	}
	switch d.Effect {
	case policy.Allow:
		return &startDecision{Action: action, Resource: req.Resource, Effect: d.Effect.String(), PolicyID: d.PolicyID, Statements: slices.Clone(d.Statements())}, nil
	case policy.NeedsApproval:
		e := jerr(http.StatusForbidden, approval, "the job's policy allows %s only with human approval (%s)", action, strings.Join(d.Statements(), ", "))
		e.Statements = slices.Clone(d.Statements())
		return nil, e
	default:
		e := jerr(http.StatusForbidden, denied, "the job's policy denies %s on %s: %s (%s)", action, req.Resource, d.Reason, strings.Join(d.Statements(), ", "))
		e.Statements = slices.Clone(d.Statements())
		return nil, e
	}
}

// startedPayload is the payload of the job_started event.
func startedPayload(scopes []string, labels map[string]string, d *startDecision, ttlSec int64) map[string]any {
	p := map[string]any{"labels": labels, "scopes": scopes, "ttl_sec": ttlSec, "write": slices.Contains(scopes, ScopeWrite)}
	if d != nil {
		p["decision"] = d
	} else {
		p["decision"] = map[string]any{"action": policy.ActionJobStart, "effect": "not_governed"}
	}
	return p
}

// WriteRequest asks for a job's write token.
type WriteRequest struct {
	TTLSec int64 `json:"ttl_sec,omitempty"`
	// ApprovedBy names the operator who approves the token, when the
	// policy requires approval for token:issue (the admin route's caller
	// vouches for the name; it is recorded in the job's evidence).
	ApprovedBy string `json:"approved_by,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// EventWriteTokenIssued records a write token issued to a job: its hash,
// scopes, expiry and the token:issue decision (with the approver).
const EventWriteTokenIssued = "write_token_issued"

// DefaultWriteTTL is a write token's lifetime when none is asked for.
const DefaultWriteTTL = 5 * time.Minute

// IssueWrite mints a separate, shorter-lived write token for an open job:
// same agent, job and pinned policy, scopes tool:call and tool:write (and
// the job's labels), expiring no later than the job. When the policy
// governs token:issue it decides (Job:TTL, Job:Scope, Job:WriteScope,
// Job:Label.*); needs_approval is granted only with ApprovedBy
// (Request:HasHumanApproval=true), else APPROVAL_REQUIRED; deny is
// TOKEN_ISSUE_DENIED. The issuance is recorded as a write_token_issued
// event.
func (s *Service) IssueWrite(ctx context.Context, jobID string, req WriteRequest) (*Started, error) {
	j, err := s.st.GetJob(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jerr(http.StatusNotFound, "JOB_NOT_FOUND", "no job %s", jobID)
	} else if err != nil {
		return nil, jerr(http.StatusServiceUnavailable, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	if j.Status != store.JobOpen {
		return nil, jerr(http.StatusConflict, "JOB_NOT_OPEN", "job %s is %s", jobID, j.Status)
	}
	if len(req.ApprovedBy) > 128 || len(req.Reason) > 256 {
		return nil, jerr(http.StatusBadRequest, "INVALID_REQUEST", "approved_by is at most 128 bytes, reason at most 256")
	}
	if s.admit != nil {
		if err := s.admit(ctx, j.PolicyHash); err != nil {
			var te *token.Error
			if errors.As(err, &te) {
				return nil, jerr(te.Status, te.Code, "%s", te.Msg)
			}
			return nil, jerr(http.StatusServiceUnavailable, token.CodePolicyStateUnavailable, "the policy lifecycle state cannot be read").Wrap(err)
		}
	}
	now := s.now()
	left := j.ExpiresAt.Sub(now).Truncate(time.Second)
	if left < time.Second {
		return nil, jerr(http.StatusConflict, "JOB_EXPIRED", "job %s's token has expired", jobID)
	}
	ttl := time.Duration(req.TTLSec) * time.Second
	switch {
	case req.TTLSec < 0:
		return nil, jerr(http.StatusBadRequest, "TTL_EXPIRED", "ttl_sec must be positive")
	case ttl == 0:
		ttl = min(DefaultWriteTTL, left)
	case ttl > left:
		return nil, jerr(http.StatusBadRequest, "TTL_TOO_LONG", "a write token lives at most as long as its job's token (%s left)", left)
	}
	// The job's labels (a job started before labels were checked keeps
	// only those that are valid).
	var raw map[string]any
	json.Unmarshal(j.Labels, &raw)
	labels := map[string]string{}
	for k, v := range raw {
		if str, ok := v.(string); ok && policy.ValidLabelName(k) && policy.ValidLabelValue(str) && k != policy.ReservedLabel && len(labels) < policy.MaxLabels {
			labels[k] = str
		}
	}
	scopes := []string{"tool:call", ScopeWrite}
	w, err := s.st.GetWPC(ctx, j.PolicyHash)
	if err != nil {
		return nil, jerr(http.StatusServiceUnavailable, "STORE_UNAVAILABLE", "the job's policy cannot be read").Wrap(err)
	}
	pol, err := s.policy(ctx, w)
	if err != nil {
		return nil, err
	}
	var decision *startDecision
	if pol != nil && pol.Governs(policy.ActionTokenIssue) {
		decision, err = decideIssue(pol, j.AgentDID, ttl, scopes, labels, req.ApprovedBy)
		if err != nil {
			return nil, err
		}
	}
	iss, err := s.issuer.Issue(ctx, issuer.IssueRequest{Sub: j.AgentDID, Scope: append(slices.Clone(scopes), policy.LabelScopes(labels)...),
		TTL: ttl, MissionID: j.ID, PolicyHash: j.PolicyHash, AgentDID: j.AgentDID})
	if err != nil {
		var ae *issuer.APIError
		if errors.As(err, &ae) {
			return nil, jerr(ae.Status, ae.Code, "%s", ae.Msg)
		}
		return nil, err
	}
	p := map[string]any{"token_hash": iss.TokenHash, "token_scope_hash_b64u": iss.Claims.TokenScopeHash, "scopes": scopes,
		"expires_at": time.Unix(iss.Claims.Exp, 0).UTC().Format(time.RFC3339)}
	if decision != nil {
		p["decision"] = decision
	} else {
		p["decision"] = map[string]any{"action": policy.ActionTokenIssue, "effect": "not_governed"}
	}
	if req.ApprovedBy != "" {
		p["approved_by"], p["reason"] = req.ApprovedBy, req.Reason
	}
	if _, err := s.AppendEvent(ctx, j.ID, EventWriteTokenIssued, p); err != nil {
		s.issuer.Revoke(context.WithoutCancel(ctx), iss.TokenHash, "write_token_unrecorded", "jobs", j.ID, time.Unix(iss.Claims.Exp, 0))
		return nil, err
	}
	v, err := s.Get(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	return &Started{Job: v, Token: iss.Token, TokenHash: iss.TokenHash, ExpiresAt: time.Unix(iss.Claims.Exp, 0).UTC().Format(time.RFC3339)}, nil
}

// decideIssue evaluates token:issue; an approver turns needs_approval into
// a decision made with Request:HasHumanApproval=true.
func decideIssue(pol *policy.Policy, agent string, ttl time.Duration, scopes []string, labels map[string]string, approver string) (*startDecision, error) {
	d, err := decideStart(pol, policy.ActionTokenIssue, agent, ttl, scopes, labels)
	var he *Error
	if err == nil || approver == "" || !errors.As(err, &he) || he.Code != CodeApprovalRequired {
		return d, err
	}
	ctx := jobContext(agent, ttl, scopes, labels)
	ctx[policy.ApprovalKey] = "true"
	req := policy.Request{Action: policy.ActionTokenIssue, Resource: policy.JobResource(agent), Context: ctx}
	var pd policy.Decision
	pol.Evaluate(&req, &pd)
	if pd.Effect != policy.Allow {
		e := jerr(http.StatusForbidden, CodeTokenIssueDenied, "the job's policy denies %s even with approval: %s", policy.ActionTokenIssue, pd.Reason)
		e.Statements = slices.Clone(pd.Statements())
		return nil, e
	}
	return &startDecision{Action: policy.ActionTokenIssue, Resource: req.Resource, Effect: "allow_with_approval", PolicyID: pd.PolicyID,
		Statements: slices.Clone(pd.Statements())}, nil
}
