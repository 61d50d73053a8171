package jobs

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
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
	if err := policy.CheckLabels(out); err != nil {
		return nil, jerr(http.StatusBadRequest, policy.CodeLabelInvalid, "%s", err.Error())
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
	pol, err := policy.Compile(doc, nil)
	if err != nil {
		if doc.Inherits() != "" {
			// Without the registry the parent cannot be found: fail closed.
			return nil, jerr(http.StatusInternalServerError, "POLICY_INVALID", "policy %s inherits from %s, which the job service cannot resolve", w.Hash, doc.Inherits()).Wrap(err)
		}
		return nil, jerr(http.StatusInternalServerError, "POLICY_INVALID", "policy %s cannot be compiled", w.Hash).Wrap(err)
	}
	return pol, nil
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
