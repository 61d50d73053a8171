package modelgw

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/token"
)

// Model is one entry of GET /v1/models, in OpenAI's list shape.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// listModels answers GET /v1/models: the models of the configured
// providers that the job's token and pinned policy allow, as OpenAI's
// model list. Candidates are concrete names only: those a provider's
// configuration lists (Provider.Models) and those the policy itself names
// (v1 allowed_models entries without '*', v2 model://PROVIDER/MODEL
// resources without '*' or '?' in the model part). Each candidate is kept
// only if the same check a call makes (enforce) allows it for a
// non-streaming request of zero bytes now, and the token's scopes allow
// its provider. A policy that allows only a glob lists nothing for it
// unless the provider lists matching names. owned_by is the provider; a
// model offered by two providers appears twice.
func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	anthropic := r.Header.Get("anthropic-version") != ""
	list, e := g.allowedModels(r)
	if e != nil {
		writeError(w, r, anthropic, e, nil)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, list)
}

func (g *Gateway) allowedModels(r *http.Request) (*ModelList, *Error) {
	ctx := r.Context()
	tok, e := tokenFrom(r)
	if e != nil {
		return nil, e
	}
	ver, err := g.opt.Tokens.Verify(ctx, tok, token.Request{JobID: runJob(r.Header.Get("X-Run-Id")), ClientDID: r.Header.Get("X-Client-DID")})
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) {
			return nil, httpapi.FromToken(te)
		}
		return nil, errf(http.StatusServiceUnavailable, token.CodeStateUnavailable, "token verification is unavailable").Wrap(err)
	}
	pin := ver.Claims.PolicyHash
	if pin == "" {
		return nil, errf(http.StatusForbidden, CodePolicyRequired, "the token pins no policy; clawea gateways serve only jobs pinned to a policy")
	}
	pol, e := g.pols.get(ctx, pin)
	if e != nil {
		return nil, e
	}
	now := g.opt.Now()
	out := &ModelList{Object: "list", Data: []Model{}}
	for _, name := range g.Providers() {
		p := g.providers[name]
		if !scopeAllows(ver.Claims.Scope, p.Name) {
			continue
		}
		for _, m := range pol.candidates(p) {
			if pol.enforce(p, m, false, 0, ver.Claims.Sub, ver.JobID, now) == nil {
				out.Data = append(out.Data, Model{ID: m, Object: "model", OwnedBy: p.Name})
			}
		}
	}
	return out, nil
}

// candidates lists the concrete model names to check for a provider:
// the provider's own list, then the names the policy gives.
func (c *compiled) candidates(p *Provider) []string {
	out := slices.Clone(p.Models)
	add := func(m string) {
		if m != "" && !strings.ContainsAny(m, "*?") && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if v1 := c.doc.V1; v1 != nil {
		for _, m := range v1.AllowedModels {
			add(m)
		}
		return out
	}
	if v2 := c.doc.V2; v2 != nil {
		for _, s := range v2.Statements {
			for _, res := range s.Resources {
				rest, ok := strings.CutPrefix(res, "model://")
				if !ok {
					continue
				}
				prov, model, ok := strings.Cut(rest, "/")
				if !ok || (prov != p.Name && !strings.ContainsAny(prov, "*?")) {
					continue
				}
				add(model)
			}
		}
	}
	return out
}
