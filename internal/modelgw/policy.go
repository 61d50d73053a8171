package modelgw

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/policycache"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/receipt"
)

// PolicySource fetches a verified policy by hash (registry.Client for a
// remote registry, registry.Local for a shared store).
type PolicySource = policycache.Source

// compiled is a policy ready for requests, with its redaction rules parsed.
type compiled struct {
	doc        *policy.Document
	pol        *policy.Policy
	redactions []redaction
}

type redaction struct {
	steps  []policy.PathStep
	action string
}

type policies struct{ c *policycache.Cache }

func newPolicies(src PolicySource) policies {
	c := policycache.New(src)
	c.Prepare = func(e *policycache.Entry) error {
		cp := &compiled{doc: e.Doc, pol: e.Policy}
		if e.Doc.V1 != nil {
			for _, r := range e.Doc.V1.RedactionRules {
				steps, err := policy.ParseRedactionPath(r.Path)
				if err != nil {
					return fmt.Errorf("redaction rule %q: %v", r.Path, err)
				}
				cp.redactions = append(cp.redactions, redaction{steps: steps, action: r.Action})
			}
		}
		e.Extra = cp
		return nil
	}
	return policies{c: c}
}

func (ps policies) get(ctx context.Context, hash string) (*compiled, *Error) {
	e, err := ps.c.Get(ctx, hash)
	if err != nil {
		return nil, err
	}
	return e.Extra.(*compiled), nil
}

// callContext is the context of a model:invoke decision. Lookups do not
// allocate.
type callContext struct {
	provider, model, stream, bytes, agent, job, hour string
}

func (c *callContext) Lookup(key string) (string, bool) {
	switch key {
	case "Model:Provider":
		return c.provider, true
	case "Model:Name":
		return c.model, true
	case "Request:Stream":
		return c.stream, true
	case "Request:Bytes":
		return c.bytes, true
	case "Request:ViaGateway":
		return "true", true
	case "Agent:DID":
		return c.agent, true
	case "Job:ID":
		return c.job, true
	case "Context:Hour":
		return c.hour, true
	}
	return "", false
}

// enforce applies the policy to a call: v1 rules (providers, models,
// identity tier, egress) or v2 model:invoke statements.
func (c *compiled) enforce(p *Provider, model string, stream bool, size int, agent, job string, now time.Time) *Error {
	if v1 := c.doc.V1; v1 != nil {
		if !v1.AllowsProvider(p.Name) {
			return errf(http.StatusForbidden, CodeProviderNotAllowed, "the job's policy does not allow provider %s", p.Name)
		}
		if len(v1.AllowedModels) > 0 && model == "" {
			return errf(http.StatusBadRequest, CodeModelRequired, "the job's policy limits models, and the request names none")
		}
		if !v1.AllowsModel(model) {
			return errf(http.StatusForbidden, CodeModelNotAllowed, "the job's policy does not allow model %s", model)
		}
		if t := v1.MinimumModelIdentityTier; t != "" && t != receipt.TierClosedOpaque {
			return errf(http.StatusForbidden, CodeTierTooLow, "the job's policy requires model identity tier %s; hosted models are %s", t, receipt.TierClosedOpaque)
		}
		if !v1.AllowsEgress(p.Host()) {
			return errf(http.StatusForbidden, CodeEgressNotAllowed, "the job's policy does not allow egress to %s", p.Host())
		}
		return nil
	}
	cc := callContext{provider: p.Name, model: model, stream: strconv.FormatBool(stream), bytes: strconv.Itoa(size),
		agent: agent, job: job, hour: strconv.Itoa(now.UTC().Hour())}
	var d policy.Decision
	c.pol.Evaluate(&policy.Request{Action: "model:invoke", Resource: "model://" + p.Name + "/" + model, Context: &cc}, &d)
	switch d.Effect {
	case policy.Allow:
		return nil
	case policy.NeedsApproval:
		e := errf(http.StatusForbidden, CodeApprovalRequired, "model %s/%s needs a human's approval under the job's policy; model calls cannot wait for one", p.Name, model)
		e.Statements = append([]string(nil), d.Statements()...)
		return e
	}
	e := errf(http.StatusForbidden, CodePolicyDenied, "the job's policy denies model:invoke on model://%s/%s (%s)", p.Name, model, d.Reason)
	e.Statements = append([]string(nil), d.Statements()...)
	return e
}

// redact applies v1 redaction rules to the request body in place and
// returns how many values changed. remove deletes, mask writes
// "[REDACTED]", and hash writes "[HASH:SHA-256:<b64u of the SHA-256 of the
// value's JCS form>]" (the reference writes a fixed placeholder; clawea
// really hashes, so equal values stay comparable without being revealed).
func (c *compiled) redact(body *canon.Value) int {
	n := 0
	for _, r := range c.redactions {
		n += applyRedaction(body, r.steps, r.action)
	}
	return n
}

func applyRedaction(v *canon.Value, steps []policy.PathStep, action string) int {
	if len(steps) == 0 || v == nil {
		return 0
	}
	st := steps[0]
	last := len(steps) == 1
	if st.IsArr {
		if !v.IsArray() {
			return 0
		}
		n := 0
		for i := range v.Items {
			if st.Index >= 0 && i != st.Index {
				continue
			}
			if last {
				if action == "remove" {
					continue // items are not removed: indexes would shift
				}
				v.Items[i] = replacement(&v.Items[i], action)
				n++
			} else {
				n += applyRedaction(&v.Items[i], steps[1:], action)
			}
		}
		return n
	}
	if !v.IsObject() {
		return 0
	}
	m := v.Get(st.Name)
	if m == nil {
		return 0
	}
	if !last {
		return applyRedaction(m, steps[1:], action)
	}
	if action == "remove" {
		v.Delete(st.Name)
		return 1
	}
	*m = replacement(m, action)
	return 1
}

func replacement(v *canon.Value, action string) canon.Value {
	if action == "hash" {
		return canon.NewString("[HASH:SHA-256:" + b64u.SHA256(canon.AppendJCS(nil, v)) + "]")
	}
	return canon.NewString("[REDACTED]")
}
