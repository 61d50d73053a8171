package modelgw

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/token"
)

// Model is one entry of GET /v1/models, in OpenAI's list shape.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Wire is the wire format clawea speaks for the provider on its
	// /v1/proxy/{provider} routes: "openai" (chat completions, responses)
	// or "anthropic" (messages). Not part of OpenAI's shape; SDKs ignore it.
	Wire string `json:"clawea_wire,omitempty"`
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
// model offered by two providers appears twice. The admin token may list
// a job's models with ?job_id=JOB (without the token-scope filter, which
// only a job token carries).
func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	g.serveModels(w, r, "")
}

// listProviderModels answers GET /v1/proxy/{provider}/models and
// /v1/proxy/{provider}/v1/models: the same list, for one provider, so an
// SDK whose base URL is a provider's proxy route discovers its models.
func (g *Gateway) listProviderModels(w http.ResponseWriter, r *http.Request) {
	anthropic := r.Header.Get("anthropic-version") != ""
	switch strings.Trim(r.PathValue("rest"), "/") {
	case "models", "v1/models":
	default:
		writeError(w, r, anthropic, errf(http.StatusNotFound, CodeUnknownRoute, "no route at GET %s (models or v1/models)", r.URL.Path), nil)
		return
	}
	name := r.PathValue("provider")
	if g.providers[name] == nil {
		writeError(w, r, anthropic, errf(http.StatusNotFound, CodeUnknownProvider, "no provider %q is configured here (configured: %s)", name, strings.Join(g.Providers(), ", ")), nil)
		return
	}
	g.serveModels(w, r, name)
}

// anthropicModel is an entry of Anthropic's model list.
type anthropicModel struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, provider string) {
	// Anthropic's SDK sends anthropic-version and reads its own shape.
	anthropic := r.Header.Get("anthropic-version") != ""
	list, e := g.allowedModels(r)
	if e != nil {
		writeError(w, r, anthropic, e, nil)
		return
	}
	if provider != "" {
		list.Data = slices.DeleteFunc(list.Data, func(m Model) bool { return m.OwnedBy != provider })
	}
	if !anthropic {
		httpapi.WriteJSON(w, http.StatusOK, list)
		return
	}
	out := struct {
		Data    []anthropicModel `json:"data"`
		HasMore bool             `json:"has_more"`
		FirstID *string          `json:"first_id"`
		LastID  *string          `json:"last_id"`
	}{Data: []anthropicModel{}}
	for _, m := range list.Data {
		out.Data = append(out.Data, anthropicModel{ID: m.ID, Type: "model", DisplayName: m.ID, CreatedAt: "1970-01-01T00:00:00Z"})
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (g *Gateway) allowedModels(r *http.Request) (*ModelList, *Error) {
	ctx := r.Context()
	var agent, jobID, pin string
	var scopes []string
	admin := false
	// The admin token lists for the job named by ?job_id= (clawea
	// openclaw config); anything else must be a job token.
	if cred, _ := httpapi.Credential(r); cred != "" && g.opt.AdminToken != "" {
		if p, e := (&httpapi.Auth{AdminToken: g.opt.AdminToken}).Authenticate(r, ""); e == nil && p.Kind == httpapi.KindAdmin {
			admin = true
		}
	}
	if admin {
		jobID = r.URL.Query().Get("job_id")
		if jobID == "" {
			return nil, errf(http.StatusBadRequest, CodeInvalidRequest, "the admin token lists a job's models: name the job with ?job_id=")
		}
		j, err := g.opt.Store.GetJob(ctx, jobID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(http.StatusNotFound, CodeJobNotFound, "no job %s", jobID)
		}
		if err != nil {
			return nil, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "cannot read job %s", jobID).Wrap(err)
		}
		agent, pin = j.AgentDID, j.PolicyHash
	} else {
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
		agent, jobID, pin, scopes = ver.Claims.Sub, ver.JobID, ver.Claims.PolicyHash, ver.Claims.Scope
	}
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
		// The admin view has no token: scopes are the token's to narrow.
		if !admin && !scopeAllows(scopes, p.Name) {
			continue
		}
		for _, m := range pol.candidates(p) {
			if pol.enforce(p, m, false, 0, agent, jobID, now) == nil {
				wire := "openai"
				if p.Kind == KindAnthropic {
					wire = "anthropic"
				}
				out.Data = append(out.Data, Model{ID: m, Object: "model", OwnedBy: p.Name, Wire: wire})
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
