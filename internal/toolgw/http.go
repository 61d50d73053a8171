package toolgw

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/store"
)

// Register adds the gateway's routes: the plain JSON tool API, MCP at
// /mcp, approvals and the lockdown switch.
func (g *Gateway) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/tools", g.listTools)
	mux.HandleFunc("POST /v1/tools/call", g.callTool)
	mux.Handle("/mcp", g.MCPHandler())
	mux.HandleFunc("GET /v1/approvals", g.admin(g.listApprovals))
	mux.HandleFunc("GET /v1/approvals/{id}", g.getApproval)
	mux.HandleFunc("POST /v1/approvals/{id}/decision", g.decide)
	mux.HandleFunc("GET /v1/lockdown", g.admin(g.getLockdown))
	mux.HandleFunc("POST /v1/lockdown", g.admin(g.setLockdown))
}

// bearer reads the token from X-CST, X-Scoped-Token or Authorization.
func bearer(r *http.Request) string {
	for _, h := range []string{"X-CST", "X-Scoped-Token", "Authorization"} {
		v := strings.TrimSpace(r.Header.Get(h))
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			v = strings.TrimSpace(v[7:])
		}
		if v != "" {
			return v
		}
	}
	return ""
}

func (g *Gateway) isAdmin(r *http.Request) bool {
	t := bearer(r)
	return g.opt.AdminToken != "" && t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(g.opt.AdminToken)) == 1
}

func (g *Gateway) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !g.isAdmin(r) {
			writeError(w, errf(http.StatusUnauthorized, CodeUnauthorized, "the admin token is required"))
			return
		}
		h(w, r)
	}
}

func (g *Gateway) listTools(w http.ResponseWriter, r *http.Request) {
	j, e := g.Authorize(r.Context(), bearer(r))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tools": g.Tools(j), "policy_hash_b64u": j.Policy.Doc.Hash(), "job_id": j.Token.JobID})
}

// CallRequest is the body of POST /v1/tools/call.
type CallRequest struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
}

func (g *Gateway) callTool(w http.ResponseWriter, r *http.Request) {
	j, e := g.Authorize(r.Context(), bearer(r))
	if e != nil {
		writeError(w, e)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, CodeInvalidRequest, "cannot read the body"))
		return
	}
	var req CallRequest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Tool == "" {
		writeError(w, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"tool\": NAME, \"arguments\": {...}}"))
		return
	}
	res, e := g.Call(r.Context(), j, req.Tool, req.Arguments)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (g *Gateway) listApprovals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := g.opt.Store.ListApprovals(r.Context(), q.Get("status"), q.Get("after"), limit)
	if err != nil {
		writeError(w, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "%v", err))
		return
	}
	if q.Get("status") == "" || q.Get("status") == store.ApprovalPending {
		g.Sweep(r.Context())
	}
	out := make([]ApprovalView, 0, len(list))
	for _, a := range list {
		out = append(out, View(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

// getApproval shows an approval to the admin, or to its job's token.
func (g *Gateway) getApproval(w http.ResponseWriter, r *http.Request) {
	a, err := g.opt.Store.GetApproval(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, errf(http.StatusNotFound, CodeApprovalNotFound, "no approval %s", r.PathValue("id")))
		return
	}
	if !g.isAdmin(r) {
		j, e := g.Authorize(r.Context(), bearer(r))
		if e != nil {
			writeError(w, e)
			return
		}
		if j.Token.JobID != a.JobID {
			writeError(w, errf(http.StatusNotFound, CodeApprovalNotFound, "no approval %s", a.ID))
			return
		}
	}
	writeJSON(w, http.StatusOK, View(a))
}

// DecisionRequest is the body of POST /v1/approvals/{id}/decision: the
// approver's co-signature over the chosen decision's payload hash is the
// credential.
type DecisionRequest struct {
	Decision    string               `json:"decision"`
	CoSignature envelope.CoSignature `json:"co_signature"`
	Note        string               `json:"note,omitempty"`
}

func (g *Gateway) decide(w http.ResponseWriter, r *http.Request) {
	var req DecisionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"decision\", \"co_signature\", \"note\"}: %v", err))
		return
	}
	a, e := g.Decide(r.Context(), r.PathValue("id"), req.Decision, req.CoSignature, req.Note)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, View(*a))
}

func (g *Gateway) getLockdown(w http.ResponseWriter, r *http.Request) {
	log, err := g.opt.Store.LockdownLog(r.Context(), 20)
	if err != nil {
		writeError(w, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "%v", err))
		return
	}
	cur := store.Lockdown{}
	if len(log) > 0 {
		cur = log[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"on": cur.On, "current": lockdownView(cur), "log": lockdownViews(log)})
}

func lockdownView(l store.Lockdown) map[string]any {
	if l.Seq == 0 {
		return nil
	}
	return map[string]any{"seq": l.Seq, "on": l.On, "by": l.By, "reason": l.Reason, "at": envelope.FormatTime(l.At)}
}

func lockdownViews(ls []store.Lockdown) []any {
	out := make([]any, 0, len(ls))
	for _, l := range ls {
		out = append(out, lockdownView(l))
	}
	return out
}

func (g *Gateway) setLockdown(w http.ResponseWriter, r *http.Request) {
	var req struct {
		On     *bool  `json:"on"`
		Reason string `json:"reason"`
		By     string `json:"by"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.On == nil || strings.TrimSpace(req.Reason) == "" {
		writeError(w, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"on\": true|false, \"reason\": \"...\"}"))
		return
	}
	by := strings.TrimSpace(req.By)
	if by == "" {
		by = "admin"
	}
	l, err := g.SetLockdown(context.WithoutCancel(r.Context()), *req.On, by, req.Reason)
	if err != nil {
		writeError(w, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"on": l.On, "current": lockdownView(l)})
}
