package toolgw

import (
	"encoding/json"
	"strings"

	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/receipt"
)

// A value registered as a job's secret is redacted from everything the job
// produces and refused from every record (internal/evidence). A value that
// also occurs in clawea's own record text — a field name, an event type, a
// status, the job's id, the agent's DID, the policy hash, a tool or vault
// name — could therefore never be recorded around: an agent that stores
// "tool_call" or its job id as a secret and reads it back would stop its
// own job's evidence (every later record refused, the job unable to
// finish, its earlier denials never bundled). Such a value cannot be
// protected by exact-value redaction anyway, since it is ordinary record
// text, so it is not registered, and the log says so (by label).

// protocolText is the fixed vocabulary of clawea's records: the JSON of
// empty receipts, events and envelopes, and the words they hold.
var protocolText = func() string {
	var b strings.Builder
	for _, v := range []any{
		receipt.ToolV2{}, receipt.SideEffect{}, receipt.HumanApproval{}, receipt.Binding{},
		bundle.Event{}, envelope.Envelope{}, envelope.CoSignature{}, toolEvent{}, runtimeEvent{}, resultEvent{},
	} {
		raw, _ := json.Marshal(v)
		b.Write(raw)
		b.WriteByte('\n')
	}
	b.WriteString(strings.Join([]string{
		EventToolCall, EventRuntimeDecision, DecisionNeedsApproval, ActionToolExecute, EventApprovalRequested, EventApprovalDecided, EventApprovalExpired, EventLockdown,
		"llm_call", "llm_call_refused", receipt.StatusSuccess, receipt.StatusError, receipt.StatusTimeout,
		"external_api_write", "explicit_approve", "explicit_deny", "timeout_deny", "clawea:timeout", "approver",
		envelope.HashSHA256, envelope.AlgEd25519, "tool_receipt", "gateway_receipt", "proof_bundle", "aggregate_bundle",
		"vir_v2_typed_lexicographical", "did:key:z6Mk", "[REDACTED:", "[SECRET]", "denied", "outcome", "statements",
		"result.code", "result.error", "args", "result", "true", "false", "null", "write", "unknown",
		"runtime_results_missing", "decision_ids", "count", "tools", "truncated",
	}, "\n"))
	return b.String()
}()

// weakSecret reports whether value cannot be told apart from the text of
// the job's own records: one of its redacted forms occurs in the fixed
// vocabulary or in the job's identifiers, or it is a short run of digits
// (timestamps, counts and latencies hold those).
func (g *Gateway) weakSecret(j *Job, value string) bool {
	if len(value) < 8 && strings.Trim(value, "0123456789") == "" {
		return true
	}
	idents := []string{protocolText, j.Token.JobID, j.Token.Claims.Sub, j.Token.ScopeHash, j.Policy.Doc.Hash(), g.did}
	idents = append(idents, g.connectorNames()...)
	for _, t := range g.tools {
		idents = append(idents, t.name, t.action)
	}
	for _, f := range redact.Forms(value) {
		for _, id := range idents {
			if id != "" && strings.Contains(id, f) {
				return true
			}
		}
	}
	return false
}

// register adds the secret value a call saw to the job's redaction set,
// unless it is weak (see above).
func (g *Gateway) register(j *Job, c *call) {
	secret := c.secretOut()
	if secret == "" {
		return
	}
	if g.weakSecret(j, secret) {
		g.opt.Log.Warn("a secret's value occurs in clawea's own record text; it is not redacted (exact-value redaction cannot tell it apart)",
			"job_id", j.Token.JobID, "label", c.label)
		return
	}
	g.opt.Secrets.Add(j.Token.JobID, secret, c.label)
}
