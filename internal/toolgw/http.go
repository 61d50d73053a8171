package toolgw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/token"
)

// Register adds the gateway's routes: the plain JSON tool API, the
// decision API for runtime tools (decide.go), MCP at /mcp, approvals and
// the lockdown switch.
func (g *Gateway) Register(mux httpapi.Router) {
	admin := g.auth().Admin
	mux.HandleFunc("GET /v1/tools", g.listTools)
	mux.HandleFunc("POST /v1/tools/call", g.callTool)
	mux.HandleFunc("POST /v1/decide", g.decideHTTP)
	mux.HandleFunc("POST /v1/decide/{id}/result", g.decideResultHTTP)
	mux.Handle("/mcp", g.MCPHandler())
	mux.HandleFunc("GET /v1/approvals", admin(g.listApprovals))
	mux.HandleFunc("GET /v1/approvals/{id}", g.getApproval)
	mux.HandleFunc("POST /v1/approvals/{id}/decision", g.decide)
	mux.HandleFunc("GET /v1/lockdown", admin(g.getLockdown))
	mux.HandleFunc("POST /v1/lockdown", admin(g.setLockdown))
	mux.HandleFunc("GET /v1/connectors", admin(g.getConnectors))
	mux.HandleFunc("POST /v1/connectors/{name}/deny", admin(g.setConnector(true)))
	mux.HandleFunc("POST /v1/connectors/{name}/allow", admin(g.setConnector(false)))
}

func (g *Gateway) auth() *httpapi.Auth { return &httpapi.Auth{AdminToken: g.opt.AdminToken} }

// authorizeRequest admits a job token presented through httpapi's
// credential layer (conflicting credential headers are refused), then
// checks the job's token (Authorize) and refuses an X-Run-Id naming
// another job (TOKEN_JOB_MISMATCH) or an X-Policy-Hash other than the
// token's pin (POLICY_HASH_MISMATCH): the model gateway's codes.
func (g *Gateway) authorizeRequest(ctx context.Context, h http.Header) (*Job, *Error) {
	cred, e := httpapi.Credential(&http.Request{Header: h})
	if e != nil {
		return nil, e
	}
	j, e := g.Authorize(ctx, cred)
	if e != nil {
		return nil, e
	}
	if run := httpapi.RunJob(h.Get("X-Run-Id")); run != "" && run != j.Token.JobID {
		return nil, errf(http.StatusForbidden, token.CodeJobMismatch, "X-Run-Id names another job than the token's")
	}
	if e := httpapi.CheckPolicyHash(&http.Request{Header: h}, j.Policy.Doc.Hash()); e != nil {
		return nil, e
	}
	return j, nil
}

func (g *Gateway) listTools(w http.ResponseWriter, r *http.Request) {
	j, e := g.authorizeRequest(r.Context(), r.Header)
	if e != nil {
		writeError(w, r, e)
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
	j, e := g.authorizeRequest(r.Context(), r.Header)
	if e != nil {
		writeError(w, r, e)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "cannot read the body"))
		return
	}
	var req CallRequest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Tool == "" {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"tool\": NAME, \"arguments\": {...}}"))
		return
	}
	res, e := g.Call(r.Context(), j, req.Tool, req.Arguments)
	if e != nil {
		writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (g *Gateway) listApprovals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := g.opt.Store.ListApprovals(r.Context(), q.Get("status"), q.Get("after"), limit)
	if err != nil {
		writeError(w, r, httpapi.StoreUnavailable(err))
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
	admin, e := g.auth().IsAdmin(r)
	if e != nil {
		writeError(w, r, e)
		return
	}
	var j *Job
	if !admin {
		if j, e = g.authorizeRequest(r.Context(), r.Header); e != nil {
			writeError(w, r, e)
			return
		}
	}
	a, err := g.opt.Store.GetApproval(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || err == nil && j != nil && j.Token.JobID != a.JobID {
		writeError(w, r, errf(http.StatusNotFound, CodeApprovalNotFound, "no approval %s", r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, r, httpapi.StoreUnavailable(err))
		return
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
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"decision\", \"co_signature\", \"note\"}").Wrap(err))
		return
	}
	a, e := g.Decide(r.Context(), r.PathValue("id"), req.Decision, req.CoSignature, req.Note)
	if e != nil {
		writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, View(*a))
}

func (g *Gateway) getLockdown(w http.ResponseWriter, r *http.Request) {
	log, err := g.opt.Store.LockdownLog(r.Context(), 20)
	if err != nil {
		writeError(w, r, httpapi.StoreUnavailable(err))
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
		// By and Note are free text kept as a note beside the recorded
		// actor, which is the authenticated credential.
		By   string `json:"by"`
		Note string `json:"note"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.On == nil || strings.TrimSpace(req.Reason) == "" {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"on\": true|false, \"reason\": \"...\"}"))
		return
	}
	by := httpapi.Actor(r.Context())
	if by == "" {
		writeError(w, r, errf(http.StatusUnauthorized, CodeUnauthorized, "the admin token is required"))
		return
	}
	reason := strings.TrimSpace(req.Reason)
	if note := strings.TrimSpace(req.By + " " + req.Note); note != "" {
		if len(note) > 256 {
			note = strings.ToValidUTF8(note[:256], "")
		}
		reason += " [note: " + note + "]"
	}
	l, err := g.SetLockdown(context.WithoutCancel(r.Context()), *req.On, by, reason)
	if err != nil {
		writeError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"on": l.On, "current": lockdownView(l)})
}
