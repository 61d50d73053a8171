package jobs

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/clawea/clawea/internal/httpapi"
)

// Verifier checks job tokens (a *token.Verifier).
type Verifier = httpapi.Verifier

// API serves the job routes. Opening and listing jobs and managing agents
// need the admin token; a job's own token (scope job:events) may read its
// job, append events and finish it.
type API struct {
	Service    *Service
	Tokens     Verifier
	AdminToken string
}

// Register adds the routes to mux.
func (a *API) Register(mux httpapi.Router) {
	auth := &httpapi.Auth{AdminToken: a.AdminToken, Tokens: a.Tokens}
	admin, jobAuth := auth.Admin, auth.AdminOrJob("id", ScopeJobEvents)
	// A finishing job's token may still read the job and post the
	// agent's signatures; nothing else (red team: a finish left pending
	// kept the token working for calls whose records then failed).
	finishingAuth := auth.AdminOrJobFinishing("id", ScopeJobEvents)
	mux.HandleFunc("POST /v1/jobs", admin(a.start))
	mux.HandleFunc("GET /v1/jobs", admin(a.list))
	mux.HandleFunc("GET /v1/jobs/{id}", finishingAuth(a.get))
	mux.HandleFunc("GET /v1/jobs/{id}/events", finishingAuth(a.events))
	mux.HandleFunc("POST /v1/jobs/{id}/events", jobAuth(a.appendEvent))
	mux.HandleFunc("POST /v1/jobs/{id}/finish", finishingAuth(a.finish))
	mux.HandleFunc("POST /v1/jobs/{id}/tokens", admin(a.issueWrite))
	mux.HandleFunc("GET /v1/jobs/{id}/bundles", admin(a.bundles))
	mux.HandleFunc("GET /v1/jobs/{id}/export", admin(a.export))
	mux.HandleFunc("POST /v1/agents", admin(a.createAgent))
	mux.HandleFunc("GET /v1/agents", admin(a.listAgents))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// WriteError writes err in the one error shape (httpapi.Write).
func WriteError(w http.ResponseWriter, r *http.Request, err error) { httpapi.Write(w, r, err) }

func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return jerr(400, "BODY_READ_FAILED", "cannot read the body").Wrap(err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jerr(400, "INVALID_JSON", "the body is not a valid JSON object for this request (malformed, an unknown field or a wrong type)").Wrap(err)
	}
	return nil
}

func (a *API) start(w http.ResponseWriter, r *http.Request) {
	var req StartRequest
	if err := decode(r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	out, err := a.Service.Start(r.Context(), req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// issueWrite mints a job's write token (IssueWrite); body {"scope":
// "write", "ttl_sec": N, "approved_by": NAME, "reason": TEXT}.
func (a *API) issueWrite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		WriteRequest
		Scope string `json:"scope"`
	}
	if err := decode(r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	if req.Scope != "write" {
		WriteError(w, r, jerr(http.StatusBadRequest, CodeJobScopeInvalid, "scope must be \"write\": a job's other tokens come from clawea job start"))
		return
	}
	out, err := a.Service.IssueWrite(r.Context(), r.PathValue("id"), req.WriteRequest)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	jobs, err := a.Service.List(r.Context(), r.URL.Query().Get("after"), r.URL.Query().Get("status"), limit)
	if err != nil {
		WriteError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	out := []map[string]any{}
	for _, j := range jobs {
		out = append(out, map[string]any{"id": j.ID, "status": j.Status, "agent_did": j.AgentDID, "policy_hash_b64u": j.PolicyHash,
			"created_at": ts(j.CreatedAt), "expires_at": ts(j.ExpiresAt), "labels": json.RawMessage(j.Labels)})
	}
	writeJSON(w, 200, map[string]any{"jobs": out})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	v, err := a.Service.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, 200, v)
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.Service.Get(r.Context(), id); err != nil {
		WriteError(w, r, err)
		return
	}
	evs, err := a.Service.st.ListEvents(r.Context(), id)
	if err != nil {
		WriteError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	out := []json.RawMessage{}
	for _, ev := range evs {
		out = append(out, ev.Event)
	}
	writeJSON(w, 200, map[string]any{"job_id": id, "events": out})
}

type appendBody struct {
	EventType string          `json:"event_type"`
	Payload   json.RawMessage `json:"payload"`
}

func (a *API) appendEvent(w http.ResponseWriter, r *http.Request) {
	var b appendBody
	if err := decode(r, &b); err != nil {
		WriteError(w, r, err)
		return
	}
	// Agents' event types are lower-case words: a look-alike of a reserved
	// type (Tool_Call, "operator_revoke " or with an invisible character)
	// would mislead a reader of the chain.
	if !apiEventType(b.EventType) {
		WriteError(w, r, jerr(400, "EVENT_TYPE_INVALID", "event_type must be 1 to 64 characters of a-z 0-9 _ . - starting with a letter or digit"))
		return
	}
	if ReservedEventType(b.EventType) {
		WriteError(w, r, jerr(403, "EVENT_TYPE_RESERVED", "events of type %s are written only by clawea's gateways, with their receipts; choose another type", b.EventType))
		return
	}
	// An operator's record (clawea job revoke) is posted with the admin
	// credential; the job's own token cannot forge one.
	if OperatorEventType(b.EventType) {
		if p := httpapi.PrincipalFrom(r.Context()); p == nil || p.Kind != httpapi.KindAdmin {
			WriteError(w, r, jerr(403, "EVENT_TYPE_RESERVED", "events of type %s are an operator's record: only the admin credential may post them", b.EventType))
			return
		}
	}
	var payload any = map[string]any{}
	if len(b.Payload) > 0 {
		if err := json.Unmarshal(b.Payload, &payload); err != nil {
			WriteError(w, r, jerr(400, "EVENT_PAYLOAD_INVALID", "payload is not valid JSON").Wrap(err))
			return
		}
	}
	ev, err := a.Service.AppendEvent(r.Context(), r.PathValue("id"), b.EventType, payload)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"event": json.RawMessage(ev.Event), "seq": ev.Seq, "segment": ev.Segment})
}

type finishBody struct {
	Signed []json.RawMessage `json:"signed"`
}

func (a *API) finish(w http.ResponseWriter, r *http.Request) {
	var b finishBody
	if err := decode(r, &b); err != nil {
		WriteError(w, r, err)
		return
	}
	out, err := a.Service.Finish(r.Context(), r.PathValue("id"), b.Signed)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	status := 200
	if out.Status == "awaiting_signature" {
		status = http.StatusAccepted
	}
	writeJSON(w, status, out)
}

func (a *API) bundles(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	bs, err := a.Service.Bundles(r.Context(), id)
	if err != nil {
		WriteError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	if len(bs) == 0 {
		WriteError(w, r, ErrBundlesNotFound)
		return
	}
	out := []FinishedBundle{}
	for _, b := range bs {
		kind := "proof_bundle"
		if b.Part < 0 {
			kind = "aggregate_bundle"
		}
		fb := FinishedBundle{Part: b.Part, BundleID: b.BundleID, Kind: kind, Envelope: b.Envelope}
		if b.Part >= 0 {
			fb.URM, fb.TrustPulse = b.URM, b.TrustPulse
		}
		out = append(out, fb)
	}
	writeJSON(w, 200, map[string]any{"job_id": id, "bundles": out, "signer_did": a.Service.Key().DID()})
}

func (a *API) createAgent(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name string `json:"name"`
	}
	if err := decode(r, &b); err != nil {
		WriteError(w, r, err)
		return
	}
	ag, err := a.Service.CreateAgent(r.Context(), b.Name)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"did": ag.DID, "name": ag.Name, "created_at": ts(ag.CreatedAt), "custodial": true})
}

func (a *API) listAgents(w http.ResponseWriter, r *http.Request) {
	list, err := a.Service.ListAgents(r.Context())
	if err != nil {
		WriteError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	out := []map[string]any{}
	for _, ag := range list {
		out = append(out, map[string]any{"did": ag.DID, "name": ag.Name, "created_at": ts(ag.CreatedAt)})
	}
	writeJSON(w, 200, map[string]any{"agents": out})
}

func (a *API) export(w http.ResponseWriter, r *http.Request) {
	x, err := a.Service.Export(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, 200, x)
}

// apiEventType reports whether t is an event type the job API takes:
// 1-64 characters of a-z 0-9 _ . -, the first a letter or digit.
func apiEventType(t string) bool {
	if len(t) == 0 || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
