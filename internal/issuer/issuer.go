// Package issuer is the scoped token issuer (the reference's clawscope
// routes): it mints EdDSA job tokens, revokes them, introspects them, and
// publishes its keys, with rotation that keeps the previous key valid for
// an overlap. Revocations are stored so that every gateway sharing the
// store refuses a revoked token within a second.
package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
)

// Role is the key role name of the issuer.
const Role = "issuer"

// TTL limits (PROTOCOL.md §3.4).
const (
	DefaultTTL = 600 * time.Second
	MaxTTL     = 3600 * time.Second
)

// Store is what the issuer needs.
type Store interface {
	PutIssuerKey(ctx context.Context, k store.IssuerKey) error
	ListIssuerKeys(ctx context.Context) ([]store.IssuerKey, error)
	PutIssuedToken(ctx context.Context, t store.IssuedToken) error
	Revoke(ctx context.Context, r store.Revocation) (store.Revocation, bool, error)
	GetRevocation(ctx context.Context, tokenHash string) (store.Revocation, error)
	RevocationsSince(ctx context.Context, after int64, limit int) ([]store.Revocation, error)
}

// Issuer mints and revokes tokens.
type Issuer struct {
	st       Store
	dir      keystore.Dir
	state    token.State
	now      func() time.Time
	log      *slog.Logger
	defTTL   time.Duration
	maxTTL   time.Duration
	aud      []string
	onRevoke func(tokenHash, reason string)

	mu     sync.Mutex
	key    *signer.Key
	keyMod time.Time
}

// Options configure an Issuer.
type Options struct {
	DataDir keystore.Dir
	// State verifies tokens for introspection (a tokenstate.Mirror).
	State      token.State
	DefaultTTL time.Duration // default 600 s
	MaxTTL     time.Duration // default 3600 s
	// Audiences every job token names (default ["clawea"]).
	Audiences []string
	Now       func() time.Time
	Log       *slog.Logger
	// OnRevoke is told of revocations made here (to update a local mirror).
	OnRevoke func(tokenHash, reason string)
}

// DefaultAudiences is the aud of job tokens unless configured otherwise.
var DefaultAudiences = []string{"clawea"}

// New loads (or creates) the active signing key and publishes its public
// key to the store.
func New(ctx context.Context, st Store, opt Options) (*Issuer, error) {
	is := &Issuer{st: st, dir: opt.DataDir, state: opt.State, now: opt.Now, log: opt.Log,
		defTTL: opt.DefaultTTL, maxTTL: opt.MaxTTL, aud: opt.Audiences, onRevoke: opt.OnRevoke}
	if is.now == nil {
		is.now = time.Now
	}
	if is.log == nil {
		is.log = slog.Default()
	}
	if is.maxTTL == 0 {
		is.maxTTL = MaxTTL
	}
	if is.defTTL == 0 {
		is.defTTL = min(DefaultTTL, is.maxTTL)
	}
	if is.defTTL > is.maxTTL {
		return nil, fmt.Errorf("issuer: default TTL %s exceeds the maximum %s", is.defTTL, is.maxTTL)
	}
	if len(is.aud) == 0 {
		is.aud = DefaultAudiences
	}
	if _, err := is.activeKey(ctx); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != CodeKeyRetired {
			return nil, err
		}
		// Serve (verification, revocation) but issue nothing until a new
		// key is made.
		is.log.ErrorContext(ctx, "the issuer's key was retired or revoked; no token is issued until clawea keys rotate makes a new one")
	}
	return is, nil
}

// activeKey returns the signing key, reloading the key file after a
// rotation (clawea keys rotate) and publishing its public key.
func (is *Issuer) activeKey(ctx context.Context) (*signer.Key, error) {
	path := is.dir.KeyPath(Role)
	st, statErr := os.Stat(path)
	is.mu.Lock()
	if is.key != nil && statErr == nil && st.ModTime().Equal(is.keyMod) {
		k := is.key
		is.mu.Unlock()
		return k, nil
	}
	is.mu.Unlock()
	k, _, err := is.dir.Key(Role)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil {
		is.mu.Lock()
		is.key, is.keyMod = k, st.ModTime()
		is.mu.Unlock()
	}
	kid := signer.KID(k.Public())
	if err := is.st.PutIssuerKey(ctx, store.IssuerKey{Kid: kid, PublicKey: k.Public(), CreatedAt: is.now()}); err != nil {
		return nil, err
	}
	// Publishing never undoes a retirement: a key file whose key was
	// retired or revoked does not sign again.
	keys, err := is.st.ListIssuerKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, sk := range keys {
		if sk.Kid == kid && !sk.NotAfter.IsZero() {
			is.mu.Lock()
			is.key = nil
			is.mu.Unlock()
			return nil, apiErr(http.StatusServiceUnavailable, CodeKeyRetired, "the issuer's key %s was retired or revoked; make a new one with clawea keys rotate", kid)
		}
	}
	return k, nil
}

// CodeKeyRetired: the issuer's own key was retired or revoked, so it
// issues nothing until a new key is made.
const CodeKeyRetired = "ISSUER_KEY_RETIRED"

// RevokeKey ends the issuer key kid at once, for a compromised key: every
// token it signed is refused at every instance within a poll interval,
// cached verifications included. When kid is the data directory's active
// key, a new active key is made first (a rotation without overlap), and
// its kid is returned.
func RevokeKey(ctx context.Context, dir keystore.Dir, st Store, kid string, now time.Time) (newKid string, err error) {
	keys, err := st.ListIssuerKeys(ctx)
	if err != nil {
		return "", err
	}
	var found *store.IssuerKey
	for i := range keys {
		if keys[i].Kid == kid {
			found = &keys[i]
		}
	}
	if found == nil {
		return "", fmt.Errorf("issuer: no issuer key %q is published", kid)
	}
	if active, err := signer.LoadFile(dir.KeyPath(Role)); err == nil && signer.KID(active.Public()) == kid {
		_, newKid, err := Rotate(ctx, dir, st, 0, now)
		return newKid, err
	}
	return "", st.PutIssuerKey(ctx, store.IssuerKey{Kid: kid, PublicKey: found.PublicKey, CreatedAt: found.CreatedAt, NotAfter: now})
}

// TTLs returns the default and the longest lifetime of issued tokens.
func (is *Issuer) TTLs() (def, max time.Duration) { return is.defTTL, is.maxTTL }

// DID returns the active key's did:key.
func (is *Issuer) DID(ctx context.Context) (string, error) {
	k, err := is.activeKey(ctx)
	if err != nil {
		return "", err
	}
	return k.DID(), nil
}

// Audiences returns the audiences job tokens name.
func (is *Issuer) Audiences() []string { return is.aud }

// IssueRequest asks for a token. TTL and Exp are alternatives.
type IssueRequest struct {
	Sub        string
	Aud        []string
	Scope      []string
	TTL        time.Duration
	Exp        int64
	MissionID  string
	PolicyHash string
	AgentDID   string
	OwnerDID   string
	OwnerRef   string
}

// Issued is a minted token.
type Issued struct {
	Token     string
	TokenHash string
	Claims    token.Claims
	Kid       string
}

// APIError is an issuer error: httpapi's one error type, written as
// {"error":{"code","message"}}.
type APIError = httpapi.Error

func apiErr(status int, code, format string, args ...any) *APIError {
	return httpapi.Errorf(status, code, format, args...)
}

// Issue validates a request the way the reference issuer does and mints a
// token (legacy lane, fresh jti and nonce).
func (is *Issuer) Issue(ctx context.Context, r IssueRequest) (*Issued, error) {
	if strings.TrimSpace(r.Sub) == "" {
		return nil, apiErr(400, "INVALID_REQUEST", "sub is required")
	}
	if len(r.Aud) == 0 {
		r.Aud = is.aud
	}
	for _, a := range r.Aud {
		if strings.TrimSpace(a) == "" {
			return nil, apiErr(400, "INVALID_REQUEST", "aud entries must be non-empty")
		}
	}
	if len(r.Scope) == 0 {
		return nil, apiErr(400, "INVALID_REQUEST", "scope must list at least one scope")
	}
	if len(r.Scope) > 64 {
		return nil, apiErr(400, "SCOPE_TOO_LARGE", "at most 64 scopes")
	}
	for _, s := range r.Scope {
		if strings.TrimSpace(s) == "" || len(s) > 128 {
			return nil, apiErr(400, "SCOPE_ITEM_TOO_LONG", "scopes must be 1 to 128 characters")
		}
		if strings.Contains(s, "*") {
			return nil, apiErr(400, "SCOPE_WILDCARD_NOT_ALLOWED", "scope %q has a wildcard", s)
		}
	}
	for _, d := range []struct{ code, v string }{{"AGENT_DID_INVALID", r.AgentDID}, {"OWNER_DID_INVALID", r.OwnerDID}} {
		if d.v != "" && !strings.HasPrefix(d.v, "did:") {
			return nil, apiErr(400, d.code, "%q is not a DID", d.v)
		}
	}
	if r.PolicyHash != "" && !policy.IsPolicyHash(r.PolicyHash) {
		return nil, apiErr(400, "POLICY_HASH_INVALID", "policy_hash_b64u must be 43 base64url characters")
	}
	now := is.now()
	exp := r.Exp
	if exp == 0 {
		ttl := r.TTL
		if ttl == 0 {
			ttl = is.defTTL
		}
		if ttl < time.Second {
			return nil, apiErr(400, "TTL_EXPIRED", "ttl must be at least one second")
		}
		exp = now.Add(ttl).Unix()
	}
	if exp-now.Unix() <= 0 {
		return nil, apiErr(400, "TTL_EXPIRED", "exp must be in the future")
	}
	if time.Duration(exp-now.Unix())*time.Second > is.maxTTL {
		return nil, apiErr(400, "TTL_TOO_LONG", "tokens live at most %s", is.maxTTL)
	}
	k, err := is.activeKey(ctx)
	var ae *APIError
	if errors.As(err, &ae) {
		return nil, ae
	}
	if err != nil {
		return nil, httpapi.New(503, "SIGNING_NOT_CONFIGURED", "no active signing key").Wrap(err)
	}
	if is.state != nil {
		// A key revoked elsewhere reaches this node's mirror within a poll.
		if sk, ok := is.state.IssuerKey(signer.KID(k.Public())); ok && !sk.NotAfter.IsZero() {
			return nil, apiErr(http.StatusServiceUnavailable, CodeKeyRetired, "the issuer's key %s was retired or revoked; make a new one with clawea keys rotate", sk.Kid)
		}
	}
	c := token.Claims{TokenVersion: "1", Sub: r.Sub, Aud: token.Aud(r.Aud...), Scope: r.Scope, Iat: now.Unix(), Exp: exp,
		OwnerRef: r.OwnerRef, OwnerDID: r.OwnerDID, AgentDID: r.AgentDID, PolicyHash: r.PolicyHash, MissionID: r.MissionID,
		TokenLane: "legacy", JTI: token.NewID(), Nonce: token.NewID()}
	c.TokenScopeHash = c.ScopeHash()
	tok, err := token.Sign(&c, k)
	if err != nil {
		return nil, httpapi.New(500, "ISSUE_FAILED", "the token could not be signed").Wrap(err)
	}
	claimsJSON, _ := canon.Marshal(c)
	out := &Issued{Token: tok, TokenHash: token.Hash(tok), Claims: c, Kid: signer.KID(k.Public())}
	if err := is.st.PutIssuedToken(ctx, store.IssuedToken{TokenHash: out.TokenHash, JTI: c.JTI, Sub: c.Sub, JobID: c.MissionID,
		ScopeHash: c.TokenScopeHash, PolicyHash: c.PolicyHash, Kid: out.Kid, IssuedAt: now, ExpiresAt: time.Unix(exp, 0),
		Claims: claimsJSON}); err != nil {
		return nil, httpapi.New(503, "ISSUE_FAILED", "cannot record the token").Wrap(err)
	}
	return out, nil
}

// Revoke revokes a token by hash.
func (is *Issuer) Revoke(ctx context.Context, tokenHash, reason, by, jobID string, expires time.Time) (store.Revocation, bool, error) {
	if expires.IsZero() {
		expires = is.now().Add(is.maxTTL)
	}
	rec, existed, err := is.st.Revoke(ctx, store.Revocation{TokenHash: tokenHash, Reason: reason, RevokedBy: by, JobID: jobID,
		RevokedAt: is.now(), ExpiresAt: expires})
	if err == nil && is.onRevoke != nil {
		is.onRevoke(tokenHash, rec.Reason)
	}
	return rec, existed, err
}

// Register adds the issuer routes. adminToken guards issue, revoke and the
// revocation feeds.
func (is *Issuer) Register(mux httpapi.Router, adminToken string) {
	admin := (&httpapi.Auth{AdminToken: adminToken}).Admin
	mux.HandleFunc("POST /v1/tokens/issue", admin(is.handleIssue))
	mux.HandleFunc("POST /v1/tokens/revoke", admin(is.handleRevoke))
	mux.HandleFunc("POST /v1/tokens/introspect", is.handleIntrospect)
	mux.HandleFunc("GET /v1/jwks", is.handleJWKS)
	mux.HandleFunc("GET /v1/revocations/events", admin(is.handleEvents(false)))
	mux.HandleFunc("GET /v1/revocations/stream", admin(is.handleEvents(true)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, r *http.Request, e *APIError) { httpapi.Write(w, r, e) }

func readBody(w http.ResponseWriter, r *http.Request, v any) *APIError {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return apiErr(400, "INVALID_JSON", "cannot read the body")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(400, "INVALID_JSON", "the body is not a valid JSON object for this request (malformed, an unknown field or a wrong type)").Wrap(err)
	}
	return nil
}

type issueBody struct {
	Sub        string          `json:"sub"`
	Aud        json.RawMessage `json:"aud"`
	Scope      []string        `json:"scope"`
	TTLSec     *float64        `json:"ttl_sec"`
	Exp        *float64        `json:"exp"`
	MissionID  string          `json:"mission_id"`
	PolicyHash string          `json:"policy_hash_b64u"`
	AgentDID   string          `json:"agent_did"`
	OwnerDID   string          `json:"owner_did"`
	OwnerRef   string          `json:"owner_ref"`
}

func (is *Issuer) handleIssue(w http.ResponseWriter, r *http.Request) {
	var b issueBody
	if e := readBody(w, r, &b); e != nil {
		writeErr(w, r, e)
		return
	}
	req := IssueRequest{Sub: b.Sub, Scope: b.Scope, MissionID: b.MissionID, PolicyHash: b.PolicyHash, AgentDID: b.AgentDID,
		OwnerDID: b.OwnerDID, OwnerRef: b.OwnerRef}
	if len(b.Aud) > 0 {
		var a token.Audience
		if err := json.Unmarshal(b.Aud, &a); err != nil {
			writeErr(w, r, apiErr(400, "INVALID_REQUEST", "aud must be a string or a list of strings"))
			return
		}
		req.Aud = a.Values
	}
	if b.TTLSec != nil {
		if *b.TTLSec <= 0 {
			writeErr(w, r, apiErr(400, "INVALID_TTL", "ttl_sec must be a positive number"))
			return
		}
		req.TTL = time.Duration(*b.TTLSec) * time.Second
	}
	if b.Exp != nil {
		if *b.Exp <= 0 {
			writeErr(w, r, apiErr(400, "INVALID_EXP", "exp must be a positive number"))
			return
		}
		req.Exp = int64(*b.Exp)
	}
	out, err := is.Issue(r.Context(), req)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			writeErr(w, r, ae)
			return
		}
		writeErr(w, r, httpapi.New(500, "ISSUE_FAILED", "the token could not be issued").Wrap(err))
		return
	}
	c := out.Claims
	writeJSON(w, 200, map[string]any{
		"token": out.Token, "token_hash": out.TokenHash, "token_lane": c.TokenLane, "policy_hash_b64u": c.PolicyHash,
		"token_scope_hash_b64u": c.TokenScopeHash, "mission_id": c.MissionID, "kid": out.Kid, "iat": c.Iat, "exp": c.Exp, "claims": c,
	})
}

type revokeBody struct {
	Token     string `json:"token"`
	TokenHash string `json:"token_hash"`
	Reason    string `json:"reason"`
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < 64; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (is *Issuer) handleRevoke(w http.ResponseWriter, r *http.Request) {
	var b revokeBody
	if e := readBody(w, r, &b); e != nil {
		writeErr(w, r, e)
		return
	}
	hash := strings.ToLower(strings.TrimSpace(b.TokenHash))
	var jobID string
	expires := time.Time{}
	if b.Token != "" {
		hash = token.Hash(b.Token)
		if p, err := token.Parse(b.Token); err == nil {
			jobID = p.Claims.MissionID
			expires = time.Unix(p.Claims.Exp, 0)
		}
	}
	if hash == "" {
		writeErr(w, r, apiErr(400, "INVALID_REQUEST", "token or token_hash is required"))
		return
	}
	if !isHex64(hash) {
		writeErr(w, r, apiErr(400, "INVALID_TOKEN_HASH", "token_hash must be 64 lowercase hex characters"))
		return
	}
	reason := strings.TrimSpace(b.Reason)
	if len(reason) > 256 {
		reason = reason[:256]
	}
	if reason == "" {
		reason = "revoked"
	}
	rec, existed, err := is.Revoke(r.Context(), hash, reason, httpapi.Actor(r.Context()), jobID, expires)
	if err != nil {
		writeErr(w, r, apiErr(503, "REVOCATION_NOT_CONFIGURED", "revocation storage is unavailable"))
		return
	}
	status := "revoked"
	if existed {
		status = "already_revoked"
	}
	is.log.InfoContext(r.Context(), "token revoked", slog.String("token_hash", hash), slog.String("status", status))
	writeJSON(w, 200, map[string]any{"status": status, "token_hash": hash, "revoked_at": rec.RevokedAt.Unix(),
		"revoked_at_iso": rec.RevokedAt.UTC().Format(time.RFC3339), "reason": rec.Reason})
}

func (is *Issuer) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Token string `json:"token"`
	}
	if e := readBody(w, r, &b); e != nil {
		writeErr(w, r, e)
		return
	}
	if b.Token == "" {
		writeErr(w, r, apiErr(400, "INVALID_REQUEST", "token is required"))
		return
	}
	out, err := is.Introspect(r.Context(), b.Token)
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) {
			writeErr(w, r, apiErr(te.Status, te.Code, "%s", te.Msg))
			return
		}
		writeErr(w, r, httpapi.New(500, "INTROSPECTION_FAILED", "the token could not be introspected").Wrap(err))
		return
	}
	writeJSON(w, 200, out)
}

// Introspect checks a token's structure, expiry, key and signature (no
// audience, scope or job checks) and reports whether it is active.
func (is *Issuer) Introspect(ctx context.Context, tok string) (map[string]any, error) {
	v := token.NewVerifier(is.state, token.Options{Now: is.now, CacheSize: -1})
	ver, err := v.Verify(ctx, tok, token.Request{})
	hash := token.Hash(tok)
	var te *token.Error
	if err != nil && !(errors.As(err, &te) && (te.Code == token.CodeRevoked || te.Code == token.CodeJobClosed || te.Code == token.CodeJobMismatch)) {
		return nil, err
	}
	p, perr := token.Parse(tok)
	if perr != nil {
		return nil, perr
	}
	out := map[string]any{}
	raw, _ := canon.Marshal(p.Claims)
	json.Unmarshal(raw, &out)
	delete(out, "jti")
	delete(out, "nonce")
	out["token_hash"] = hash
	out["kid"] = p.Header.Kid
	out["kid_source"] = "header"
	switch {
	case err == nil:
		out["active"] = true
		out["job_id"] = ver.JobID
	default:
		out["active"] = false
		if rev, gerr := is.st.GetRevocation(ctx, hash); gerr == nil {
			out["revoked"] = true
			out["revoked_at"] = rev.RevokedAt.Unix()
			out["revoked_at_iso"] = rev.RevokedAt.UTC().Format(time.RFC3339)
			out["revocation_reason"] = rev.Reason
		}
		out["error"] = te.Code
		out["message"] = te.Msg
	}
	return out, nil
}

// JWK is one key of GET /v1/jwks.
type JWK struct {
	Kty      string `json:"kty"`
	Crv      string `json:"crv"`
	X        string `json:"x"`
	Kid      string `json:"kid"`
	Alg      string `json:"alg"`
	Use      string `json:"use"`
	Ext      bool   `json:"ext"`
	NotAfter int64  `json:"not_after_unix,omitempty"`
}

func (is *Issuer) handleJWKS(w http.ResponseWriter, r *http.Request) {
	keys, err := is.st.ListIssuerKeys(r.Context())
	if err != nil {
		writeErr(w, r, apiErr(503, "SIGNING_CONFIG_INVALID", "keys unavailable"))
		return
	}
	now := is.now()
	out := []JWK{}
	for _, k := range keys {
		if !k.NotAfter.IsZero() && now.After(k.NotAfter) {
			continue
		}
		j := JWK{Kty: "OKP", Crv: "Ed25519", X: b64u.Encode(k.PublicKey), Kid: k.Kid, Alg: "EdDSA", Use: "sig", Ext: true}
		if !k.NotAfter.IsZero() {
			j.NotAfter = k.NotAfter.Unix()
		}
		out = append(out, j)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"keys": out})
}

// DIDInfo is the issuer's part of GET /v1/did.
func (is *Issuer) DIDInfo(ctx context.Context) (map[string]any, error) {
	k, err := is.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]any{"did": k.DID(), "kid": signer.KID(k.Public()), "public_key_b64u": b64u.Encode(k.Public())}, nil
}

func (is *Issuer) handleEvents(stream bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				writeErr(w, r, apiErr(400, "INVALID_REQUEST", "limit must be a number"))
				return
			}
			limit = max(1, min(n, 200))
		}
		var after int64
		if c := r.URL.Query().Get("cursor"); c != "" {
			n, err := strconv.ParseInt(c, 10, 64)
			if err != nil || n < 0 {
				writeErr(w, r, apiErr(400, "INVALID_REQUEST", "cursor must be a number from a previous page"))
				return
			}
			after = n
		}
		revs, err := is.st.RevocationsSince(r.Context(), after, limit+1)
		if err != nil {
			writeErr(w, r, apiErr(503, "REVOCATION_NOT_CONFIGURED", "revocation storage is unavailable"))
			return
		}
		complete := len(revs) <= limit
		if !complete {
			revs = revs[:limit]
		}
		events := []map[string]any{}
		cursor := strconv.FormatInt(after, 10)
		for i, rv := range revs {
			rec := map[string]any{"token_hash": rv.TokenHash, "revoked_at": rv.RevokedAt.Unix(), "revoked_at_iso": rv.RevokedAt.UTC().Format(time.RFC3339),
				"reason": rv.Reason, "revoked_by": rv.RevokedBy}
			if rv.JobID != "" {
				rec["job_id"] = rv.JobID
			}
			ev := map[string]any{"key": "revocation:" + strconv.FormatInt(rv.Seq, 10) + ":" + rv.TokenHash, "record": rec}
			if stream {
				ev["sequence"] = i + 1
			}
			events = append(events, ev)
			cursor = strconv.FormatInt(rv.Seq, 10)
		}
		body := map[string]any{"events": events, "cursor": cursor, "list_complete": complete}
		if stream {
			body["stream_version"] = "1"
		}
		writeJSON(w, 200, body)
	}
}

// Rotate makes a new active issuer key. The previous key stays valid for
// verification until now+overlap (published with that end in the store and
// in JWKS); its file is kept as keys/issuer.<kid>.retired.key.json. A
// running issuer picks the new key up on its next issue.
func Rotate(ctx context.Context, dir keystore.Dir, st Store, overlap time.Duration, now time.Time) (oldKid, newKid string, err error) {
	if overlap < 0 {
		return "", "", errors.New("issuer: overlap must not be negative")
	}
	old, _, err := dir.Key(Role)
	if err != nil {
		return "", "", err
	}
	oldKid = signer.KID(old.Public())
	next, err := signer.Generate()
	if err != nil {
		return "", "", err
	}
	newKid = signer.KID(next.Public())
	retired := strings.TrimSuffix(dir.KeyPath(Role), ".key.json") + "." + oldKid + ".retired.key.json"
	if err := signer.WriteFile(retired, old, false); err != nil && !errors.Is(err, signer.ErrExist) {
		return "", "", err
	}
	// Publish first, so that verifiers know the new key before it signs.
	if err := st.PutIssuerKey(ctx, store.IssuerKey{Kid: newKid, PublicKey: next.Public(), CreatedAt: now}); err != nil {
		return "", "", err
	}
	if err := st.PutIssuerKey(ctx, store.IssuerKey{Kid: oldKid, PublicKey: old.Public(), CreatedAt: now, NotAfter: now.Add(overlap)}); err != nil {
		return "", "", err
	}
	if err := signer.WriteFile(dir.KeyPath(Role), next, true); err != nil {
		return "", "", err
	}
	return oldKid, newKid, nil
}
