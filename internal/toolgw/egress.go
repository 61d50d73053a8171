package toolgw

import (
	"errors"
	"net/http"
	"strings"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/policy"
)

// Codes of the egress guard and of the placeholder check.
const (
	// CodeEgressSecret refuses a call whose arguments carry a secret the
	// job has seen out through a connector (docs/security.md).
	CodeEgressSecret = "EGRESS_SECRET_REFUSED"
	// CodePlaceholder refuses a write whose value holds a redaction
	// marker ([REDACTED:<vault>/<name>]) instead of a secret.
	CodePlaceholder = "REDACTED_PLACEHOLDER_REFUSED"
)

// KeyCarriesSecret is the context key the egress guard sets: "true" when a
// call's arguments hold a secret the job has seen (any encoding the
// redaction registry knows), "false" otherwise. Such a call runs only when
// the policy allows it because of a condition on this key.
const KeyCarriesSecret = "Egress:CarriesSecret"

// placeholderMark opens every redaction marker.
const placeholderMark = "[REDACTED:"

// placeholder refuses a write whose secret value (a param marked secret:
// the value a Key Vault write stores) holds a redaction marker: an agent
// that "restores" what it was shown would store the marker as the secret.
func placeholder(t *tool, v *canon.Value) *Error {
	for _, p := range t.params() {
		if !p.Secret {
			continue
		}
		if m := v.Get(p.Name); m != nil && m.IsString() && strings.Contains(m.Str, placeholderMark) {
			return errf(http.StatusBadRequest, CodePlaceholder,
				"argument %q holds a redaction marker (%s...]), not a secret value; the write is refused", p.Name, placeholderMark)
		}
	}
	return nil
}

// egressSecret reports the label of a secret the job has seen that the
// call's arguments would carry out through the connector: every argument
// leaves through it (a message's body, subject, ids and application
// property keys and values, numbers included; a secret's name; a
// dead-letter reason). Each argument is checked exactly as the evidence
// gate will check the record of the call (evidence.Check over its compact
// JSON: the bytes, every decoded string and key, JSON held in strings,
// escapes inside strings), so a call the gate would refuse to record is
// refused here, before anything leaves. The value a Key Vault write stores
// may be the written secret's own value (writing it back), never another
// secret's, even overlapping it.
func (g *Gateway) egressSecret(jobID string, t *tool, c *call, v *canon.Value) (string, bool) {
	reg := g.opt.Secrets
	if !reg.Known(jobID) {
		return "", false
	}
	for _, m := range v.Members {
		if l, ok := evidence.FindString(reg, jobID, m.Key); ok {
			return l, true
		}
		if t.def != nil && t.def.SecretParam(m.Key) && m.Value.IsString() {
			if l, ok := reg.FindExcept(jobID, m.Value.Str, c.label); ok {
				return l, true
			}
			continue
		}
		if err := evidence.Check(reg, jobID, canon.AppendCompact(nil, &m.Value)); err != nil {
			var se *evidence.SecretError
			if errors.As(err, &se) {
				return se.Label, true
			}
			return "?", true
		}
	}
	return "", false
}

// egressAllowed reports whether the policy allows a call that carries a
// secret because of a condition on KeyCarriesSecret: the call must be
// allowed (or need approval) with the key "true" and denied with it
// "false". A policy that would allow the call anyway has not allowed the
// secret to leave.
func egressAllowed(j *Job, req policy.Request, ctx map[string]string) bool {
	var d policy.Decision
	ctx[KeyCarriesSecret] = "true"
	j.Policy.Policy.Evaluate(&req, &d)
	if d.Effect == policy.Deny {
		return false
	}
	ctx[KeyCarriesSecret] = "false"
	j.Policy.Policy.Evaluate(&req, &d)
	ctx[KeyCarriesSecret] = "true"
	return d.Effect == policy.Deny
}
