// Package registry is the Work Policy Contract registry (the reference's
// clawcontrols routes): policies are published once, signed by the
// registry key, and served by their hash, which is re-checked on every
// read. It also holds the client gateways use to fetch and verify a pinned
// policy.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
)

// Store is what the registry needs from storage.
type Store interface {
	PutWPC(ctx context.Context, w store.WPC) (store.WPC, bool, error)
	GetWPC(ctx context.Context, hash string) (store.WPC, error)
	ListWPCs(ctx context.Context, after string, limit int) ([]store.WPC, error)
}

var _ Store = store.Store(nil)

// Authorizer decides whether a request may publish. It returns a non-nil
// *APIError to refuse.
type Authorizer func(r *http.Request) *APIError

// Server serves the registry routes.
type Server struct {
	Store  Store
	Signer signer.Signer
	// Authorize guards POST /v1/wpc; AdminToken builds one for a static
	// bearer token.
	Authorize Authorizer
	Now       func() time.Time
	Log       *slog.Logger
	// Lifecycle enables the policy lifecycle routes (approve, retire,
	// freeze, unfreeze; status and the log); nil answers them with 503.
	Lifecycle *Lifecycle
}

// Error codes of the registry, with the reference's names.
const (
	CodeUnauthorized      = "UNAUTHORIZED"
	CodeBodyReadFailed    = "BODY_READ_FAILED"
	CodePayloadTooLarge   = "PAYLOAD_TOO_LARGE"
	CodeInvalidJSON       = "INVALID_JSON"
	CodeInvalidRequest    = "INVALID_REQUEST"
	CodeInvalidWPC        = "INVALID_WPC"
	CodeSigningNotConfig  = "SIGNING_NOT_CONFIGURED"
	CodeInvalidPolicyHash = "INVALID_POLICY_HASH"
	CodeWPCNotFound       = "WPC_NOT_FOUND"
	CodeWPCCorrupted      = "WPC_CORRUPTED"
	CodeNotFound          = "NOT_FOUND"
	CodeStoreUnavailable  = "STORE_UNAVAILABLE"
)

// APIError is a registry error: httpapi's one error type, written as
// {"error":{"code","message","details"?}}.
type APIError = httpapi.Error

func apiErr(status int, code, format string, args ...any) *APIError {
	return httpapi.Errorf(status, code, format, args...)
}

// AdminToken returns an Authorizer that admits the admin token only
// (through httpapi's credential layer). An empty token refuses everyone.
func AdminToken(token string) Authorizer {
	auth := &httpapi.Auth{AdminToken: token}
	return func(r *http.Request) *APIError {
		admin, e := auth.IsAdmin(r)
		if e != nil {
			return e
		}
		if !admin {
			return apiErr(http.StatusUnauthorized, CodeUnauthorized, "admin token required (Authorization: Bearer <token>)")
		}
		return nil
	}
}

// Register adds the registry routes to mux.
func (s *Server) Register(mux httpapi.Router) {
	mux.HandleFunc("POST /v1/wpc", s.publish)
	mux.HandleFunc("GET /v1/wpc", s.list)
	mux.HandleFunc("GET /v1/wpc/{hash...}", s.get)
	s.registerLifecycle(mux)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
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

// published is the success body of POST and GET.
type published struct {
	OK         bool        `json:"ok"`
	Existed    *bool       `json:"existed,omitempty"`
	PolicyHash string      `json:"policy_hash_b64u"`
	Envelope   canon.Value `json:"envelope"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	if s.Authorize == nil {
		WriteError(w, r, apiErr(http.StatusUnauthorized, CodeUnauthorized, "publishing is not enabled on this registry"))
		return
	}
	if e := s.Authorize(r); e != nil {
		WriteError(w, r, e)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, policy.MaxDocumentBytes+1))
	if err != nil {
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeBodyReadFailed, "cannot read the request body"))
		return
	}
	if len(body) > policy.MaxDocumentBytes {
		WriteError(w, r, apiErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "WPC body exceeds %d bytes", policy.MaxDocumentBytes))
		return
	}
	v, err := canon.Parse(body)
	if err != nil {
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidJSON, "the body is not valid JSON").Wrap(err))
		return
	}
	if !v.IsObject() || v.Get("wpc") == nil {
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidRequest, `body must be {"wpc": {...}}`))
		return
	}
	doc, err := policy.FromValue(v.Get("wpc").Clone())
	if err != nil {
		e := apiErr(http.StatusBadRequest, CodeInvalidWPC, "the policy is not a valid WPC").Wrap(err)
		var pe *policy.Error
		if errors.As(err, &pe) {
			e.Msg = pe.Msg
			e.Details = map[string]any{"reason_code": pe.Code, "path": pe.Path}
		}
		WriteError(w, r, e)
		return
	}
	hash := doc.Hash()
	ctx := r.Context()
	supersedes := ""
	if sv := v.Get("supersedes"); sv != nil {
		old, ok := v.StringOf("supersedes")
		if !ok || !policy.IsPolicyHash(old) || old == hash {
			WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidRequest, "supersedes must be the hash of another published policy"))
			return
		}
		if s.Lifecycle == nil || s.Lifecycle.Store == nil {
			WriteError(w, r, apiErr(http.StatusServiceUnavailable, CodeStoreUnavailable, "the policy lifecycle is not configured on this registry"))
			return
		}
		if _, err := s.Store.GetWPC(ctx, old); errors.Is(err, store.ErrNotFound) {
			WriteError(w, r, apiErr(http.StatusNotFound, CodeWPCNotFound, "the superseded policy %s is not in the registry", old))
			return
		} else if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		supersedes = old
	}
	if existing, err := s.Store.GetWPC(ctx, hash); err == nil {
		s.respondPublished(w, r, existing, http.StatusOK, true, supersedes)
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		s.storeFailed(w, r, err)
		return
	}
	if s.Signer == nil {
		WriteError(w, r, apiErr(http.StatusServiceUnavailable, CodeSigningNotConfig, "the registry has no signing key"))
		return
	}
	env, err := policy.SignEnvelope(s.Signer, doc, s.now())
	if err != nil {
		WriteError(w, r, apiErr(http.StatusServiceUnavailable, CodeSigningNotConfig, "signing failed").Wrap(err))
		return
	}
	envJSON, err := env.JSON()
	if err != nil {
		WriteError(w, r, apiErr(http.StatusInternalServerError, CodeSigningNotConfig, "envelope encoding failed"))
		return
	}
	rec := store.WPC{Hash: hash, PolicyID: doc.PolicyID(), PolicyVersion: doc.Version, IssuerDID: doc.IssuerDID(),
		Payload: canon.AppendCompact(nil, &doc.Value), Envelope: envJSON, CreatedAt: s.now()}
	stored, existed, err := s.Store.PutWPC(ctx, rec)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	s.log().InfoContext(ctx, "policy published", slog.String("policy_hash", hash), slog.String("policy_id", doc.PolicyID()), slog.Bool("existed", existed))
	s.respondPublished(w, r, stored, status, existed, supersedes)
}

func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, apiErr(http.StatusServiceUnavailable, CodeStoreUnavailable, "policy storage is unavailable").Wrap(err))
}

// checkStored re-hashes a stored policy and its envelope payload.
func checkStored(rec store.WPC) (canon.Value, *APIError) {
	payload, err := canon.Parse(rec.Payload)
	if err != nil || b64u.SHA256(canon.AppendJCS(nil, &payload)) != rec.Hash {
		return canon.Value{}, apiErr(http.StatusInternalServerError, CodeWPCCorrupted, "Stored WPC hash mismatch")
	}
	env, err := canon.Parse(rec.Envelope)
	if err != nil || !env.IsObject() {
		return canon.Value{}, apiErr(http.StatusInternalServerError, CodeWPCCorrupted, "Stored WPC envelope is unreadable")
	}
	ep := env.Get("payload")
	if ep == nil || b64u.SHA256(canon.AppendJCS(nil, ep)) != rec.Hash {
		return canon.Value{}, apiErr(http.StatusInternalServerError, CodeWPCCorrupted, "Stored WPC envelope hash mismatch")
	}
	return env, nil
}

func (s *Server) respondStored(w http.ResponseWriter, r *http.Request, rec store.WPC, status int, existed bool) {
	env, e := checkStored(rec)
	if e != nil {
		s.log().Error("stored policy is corrupted", slog.String("policy_hash", rec.Hash))
		WriteError(w, r, e)
		return
	}
	writeJSON(w, status, published{OK: true, Existed: &existed, PolicyHash: rec.Hash, Envelope: env})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	hash := strings.TrimSpace(r.PathValue("hash"))
	switch {
	case hash == "":
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidPolicyHash, "policy_hash_b64u must be non-empty"))
		return
	case !b64u.IsValid(hash):
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidPolicyHash, "policy_hash_b64u must be base64url (no padding)"))
		return
	case len(hash) != 43:
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidPolicyHash, "policy_hash_b64u must have length 43"))
		return
	}
	rec, err := s.Store.GetWPC(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, r, apiErr(http.StatusNotFound, CodeWPCNotFound, "WPC not found"))
		return
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	env, e := checkStored(rec)
	if e != nil {
		s.log().Error("stored policy is corrupted", slog.String("policy_hash", hash))
		WriteError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, published{OK: true, PolicyHash: hash, Envelope: env})
}

// ListEntry summarises one policy in GET /v1/wpc.
type ListEntry struct {
	PolicyHash    string `json:"policy_hash_b64u"`
	PolicyID      string `json:"policy_id"`
	PolicyVersion string `json:"policy_version"`
	IssuerDID     string `json:"issuer_did"`
	CreatedAt     string `json:"created_at"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	after := r.URL.Query().Get("after")
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidRequest, "limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	recs, err := s.Store.ListWPCs(r.Context(), after, limit+1)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	next := ""
	if len(recs) > limit {
		recs = recs[:limit]
		next = recs[limit-1].Hash
	}
	out := make([]ListEntry, 0, len(recs))
	for _, rec := range recs {
		out = append(out, ListEntry{rec.Hash, rec.PolicyID, rec.PolicyVersion, rec.IssuerDID, rec.CreatedAt.UTC().Format(time.RFC3339Nano)})
	}
	body := map[string]any{"ok": true, "policies": out}
	if next != "" {
		body["next_after"] = next
	}
	if s.Signer != nil {
		body["signer_did"] = s.Signer.DID()
	}
	writeJSON(w, http.StatusOK, body)
}

// respondPublished answers a publish; with supersedes set it first logs
// that the published policy supersedes that one (by the publishing
// credential), which retires it, and adds the change to the answer.
func (s *Server) respondPublished(w http.ResponseWriter, r *http.Request, rec store.WPC, status int, existed bool, supersedes string) {
	if supersedes == "" {
		s.respondStored(w, r, rec, status, existed)
		return
	}
	env, e := checkStored(rec)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	// Superseding a hash already retired logs nothing new (a repeated
	// publish stays idempotent): the answer shows the retirement.
	if view, e := s.statusOf(r.Context(), supersedes); e != nil {
		WriteError(w, r, e)
		return
	} else if view.Status == store.PolicyRetired {
		writeJSON(w, status, map[string]any{"ok": true, "existed": existed, "policy_hash_b64u": rec.Hash, "envelope": env,
			"lifecycle": map[string]any{"change": view.Retirement, "status": view}})
		return
	}
	actor := httpapi.Actor(r.Context())
	if actor == "" {
		actor = httpapi.ActorAdminToken
	}
	c := store.PolicyChange{Action: store.PolicySupersede, PolicyHash: supersedes, Hashes: []string{rec.Hash}, Actor: actor,
		Reason: "published " + rec.Hash + " declaring it supersedes this policy", At: s.now()}
	c, view, e := s.logChange(r.Context(), c)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	writeJSON(w, status, map[string]any{"ok": true, "existed": existed, "policy_hash_b64u": rec.Hash, "envelope": env,
		"lifecycle": map[string]any{"change": ViewChange(c), "status": view}})
}
