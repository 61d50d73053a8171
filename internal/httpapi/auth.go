package httpapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/clawea/clawea/token"
)

// Principal kinds.
const (
	KindAdmin = "admin"
	KindJob   = "job"
)

// ActorAdminToken is the recorded actor of an action taken with the
// node's admin token.
const ActorAdminToken = "admin-token"

// Principal is an authenticated caller.
type Principal struct {
	Kind string
	// Actor names the credential in records ("admin-token", or
	// "job:<id>" for a job token).
	Actor string
	// Job is the verified job token (Kind == KindJob).
	Job *token.Verified
}

// Verifier checks job tokens (a *token.Verifier).
type Verifier interface {
	Verify(ctx context.Context, tok string, req token.Request) (*token.Verified, error)
}

// credentialHeaders are read in this order; all that are present must
// carry the same credential.
var credentialHeaders = []string{"X-CST", "X-Scoped-Token", "Authorization"}

// bindingHeaders name what a request binds itself to besides its
// credential. Each is read once, so a repeated one would let the first
// copy pass a check while another means something else: refused.
var bindingHeaders = []string{"X-Run-Id", "X-Policy-Hash", "X-Client-DID", "X-Event-Hash", "X-Api-Key"}

// repeated refuses a request that repeats any of headers.
func repeated(r *http.Request, headers []string) *Error {
	for _, h := range headers {
		if len(r.Header.Values(h)) > 1 {
			return Errorf(http.StatusBadRequest, CodeStrictAuthHeaders, "%s is repeated", h)
		}
	}
	return nil
}

func stripBearer(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
		s = strings.TrimSpace(s[7:])
	}
	return s
}

// Credential returns the credential the request presents in X-CST,
// X-Scoped-Token or Authorization ("Bearer " optional), or "" when none.
// Two headers carrying different credentials are refused with 400
// STRICT_AUTH_HEADERS: the caller would otherwise act as one of two
// identities chosen by header order.
func Credential(r *http.Request) (string, *Error) {
	if e := repeated(r, bindingHeaders); e != nil {
		return "", e
	}
	got, from := "", ""
	for _, h := range credentialHeaders {
		vals := r.Header.Values(h)
		if len(vals) > 1 {
			return "", Errorf(http.StatusBadRequest, CodeStrictAuthHeaders, "%s is repeated", h)
		}
		if len(vals) == 0 {
			continue
		}
		v := stripBearer(vals[0])
		if v == "" {
			continue
		}
		if got != "" && subtle.ConstantTimeCompare([]byte(v), []byte(got)) != 1 {
			return "", Errorf(http.StatusBadRequest, CodeStrictAuthHeaders, "%s and %s carry different credentials", from, h)
		}
		if got == "" {
			got, from = v, h
		}
	}
	return got, nil
}

// CodeProviderKeyRefused: a model SDK's API key slot holds something that
// is not a clawea job token (a provider key: keys live in the gateway).
const CodeProviderKeyRefused = "PROVIDER_KEY_NOT_ACCEPTED"

// SDKCredential is Credential for model API routes, where official SDKs
// send their API key in Authorization or X-Api-Key: X-CST and
// X-Scoped-Token must agree; an API key slot holding a token must carry
// the same one; a non-token there (an SDK's placeholder) is ignored next
// to X-CST and refused alone (PROVIDER_KEY_NOT_ACCEPTED). None at all is
// 401 TOKEN_REQUIRED.
func SDKCredential(r *http.Request) (string, *Error) {
	if e := repeated(r, credentialHeaders); e != nil {
		return "", e
	}
	if e := repeated(r, bindingHeaders); e != nil {
		return "", e
	}
	cst, scoped := stripBearer(r.Header.Get("X-CST")), stripBearer(r.Header.Get("X-Scoped-Token"))
	if cst != "" && scoped != "" && cst != scoped {
		return "", New(http.StatusBadRequest, CodeStrictAuthHeaders, "X-CST and X-Scoped-Token carry different tokens")
	}
	if cst == "" {
		cst = scoped
	}
	for _, h := range []string{"Authorization", "X-Api-Key"} {
		v := stripBearer(r.Header.Get(h))
		if v == "" {
			continue
		}
		if strings.Count(v, ".") != 2 {
			if cst != "" {
				continue // an SDK's placeholder key next to X-CST is ignored
			}
			return "", Errorf(http.StatusUnauthorized, CodeProviderKeyRefused,
				"%s does not hold a clawea job token; provider keys are not accepted here (the gateway holds them)", h)
		}
		if cst != "" && v != cst {
			return "", Errorf(http.StatusBadRequest, CodeStrictAuthHeaders, "%s and X-CST carry different tokens", h)
		}
		cst = v
	}
	if cst == "" {
		return "", New(http.StatusUnauthorized, token.CodeRequired, "a job token is required (X-CST, or as the API key)")
	}
	return cst, nil
}

// RunJob reads an X-Run-Id value: a job id or a segment's run id
// (<job>.s<digits>). Anything else is returned as it is, so that it names
// no job and a check against the token's job refuses it.
func RunJob(runID string) string {
	runID = strings.TrimSpace(runID)
	if i := strings.LastIndex(runID, ".s"); i > 0 && i+2 < len(runID) && strings.Trim(runID[i+2:], "0123456789") == "" {
		return runID[:i]
	}
	return runID
}

// CheckPolicyHash refuses a request whose X-Policy-Hash differs from the
// policy the job's token is pinned to (403 POLICY_HASH_MISMATCH).
func CheckPolicyHash(r *http.Request, pinned string) *Error {
	if h := strings.TrimSpace(r.Header.Get("X-Policy-Hash")); h != "" && h != pinned {
		return New(http.StatusForbidden, CodePolicyHashMismatch, "X-Policy-Hash differs from the policy the job's token is pinned to")
	}
	return nil
}

// Auth is the credential layer: it resolves the presented credential to
// a principal (the admin token, or a verified job token). Operator roles
// will be a third kind.
type Auth struct {
	AdminToken string
	Tokens     Verifier // nil: job tokens are refused
}

func (a *Auth) isAdmin(cred string) bool {
	return a != nil && a.AdminToken != "" && cred != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(a.AdminToken)) == 1
}

// IsAdmin reports whether the request presents the admin token; an error
// only for conflicting credential headers.
func (a *Auth) IsAdmin(r *http.Request) (bool, *Error) {
	cred, e := Credential(r)
	if e != nil {
		return false, e
	}
	return a.isAdmin(cred), nil
}

// Authenticate resolves the request's credential. jobID, when not empty,
// is the job the route acts on: a job token must be that job's, and so
// must X-Run-Id when present (else 403 TOKEN_JOB_MISMATCH).
func (a *Auth) Authenticate(r *http.Request, jobID string) (*Principal, *Error) {
	return a.authenticate(r, jobID, false)
}

func (a *Auth) authenticate(r *http.Request, jobID string, allowFinishing bool) (*Principal, *Error) {
	cred, e := Credential(r)
	if e != nil {
		return nil, e
	}
	if cred == "" {
		return nil, New(http.StatusUnauthorized, token.CodeRequired, "a credential is required (the admin token or a job token)")
	}
	if a.isAdmin(cred) {
		return &Principal{Kind: KindAdmin, Actor: ActorAdminToken}, nil
	}
	if a == nil || a.Tokens == nil {
		return nil, New(http.StatusUnauthorized, CodeUnauthorized, "the credential is not accepted here")
	}
	run := RunJob(r.Header.Get("X-Run-Id"))
	if jobID != "" && run != "" && run != jobID {
		return nil, New(http.StatusForbidden, token.CodeJobMismatch, "X-Run-Id names another job")
	}
	if jobID == "" {
		jobID = run
	}
	ver, err := a.Tokens.Verify(r.Context(), cred, token.Request{JobID: jobID, ClientDID: r.Header.Get("X-Client-DID"), AllowFinishing: allowFinishing})
	if err != nil {
		if e := From(err); e.Code != CodeInternal {
			return nil, e
		}
		return nil, New(http.StatusServiceUnavailable, token.CodeStateUnavailable, "token state is unavailable").Wrap(err)
	}
	return &Principal{Kind: KindJob, Actor: "job:" + ver.JobID, Job: ver}, nil
}

// HasScope reports whether v holds one of scopes.
func HasScope(v *token.Verified, scopes ...string) bool {
	for _, s := range scopes {
		if slices.Contains(v.Claims.Scope, s) {
			return true
		}
	}
	return false
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, keyPrincipal, p)
}

// PrincipalFrom returns the principal the credential layer admitted (nil
// outside its handlers).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(keyPrincipal).(*Principal)
	return p
}

// Actor names ctx's principal for records ("" when none).
func Actor(ctx context.Context) string {
	if p := PrincipalFrom(ctx); p != nil {
		return p.Actor
	}
	return ""
}

// Admin admits the admin token only (else 401 UNAUTHORIZED).
func (a *Auth) Admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred, e := Credential(r)
		if e != nil {
			Write(w, r, e)
			return
		}
		if !a.isAdmin(cred) {
			Write(w, r, New(http.StatusUnauthorized, CodeUnauthorized, "the admin token is required"))
			return
		}
		h(w, r.WithContext(WithPrincipal(r.Context(), &Principal{Kind: KindAdmin, Actor: ActorAdminToken})))
	}
}

// Job admits a job token holding one of scopes (the admin token is not a
// job token and is refused).
func (a *Auth) Job(scopes ...string) func(http.HandlerFunc) http.HandlerFunc {
	return a.guard("", false, scopes, false)
}

// AdminOrJob admits the admin token, or the token of the job named by the
// path value param holding one of scopes.
func (a *Auth) AdminOrJob(param string, scopes ...string) func(http.HandlerFunc) http.HandlerFunc {
	return a.guard(param, true, scopes, false)
}

// AdminOrJobFinishing is AdminOrJob that also admits the token of a job
// that is finishing: only for the job's own finish and read routes (an
// agent-signed job's token posts its signatures after the job stopped
// taking events). Every other route refuses it (TOKEN_JOB_CLOSED).
func (a *Auth) AdminOrJobFinishing(param string, scopes ...string) func(http.HandlerFunc) http.HandlerFunc {
	return a.guard(param, true, scopes, true)
}

func (a *Auth) guard(param string, admin bool, scopes []string, allowFinishing bool) func(http.HandlerFunc) http.HandlerFunc {
	return func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			jobID := ""
			if param != "" {
				jobID = r.PathValue(param)
			}
			p, e := a.authenticate(r, jobID, allowFinishing)
			if e != nil {
				Write(w, r, e)
				return
			}
			if p.Kind == KindAdmin && !admin {
				Write(w, r, New(http.StatusUnauthorized, token.CodeRequired, "a job token is required"))
				return
			}
			if p.Kind == KindJob && len(scopes) > 0 && !HasScope(p.Job, scopes...) {
				Write(w, r, Errorf(http.StatusForbidden, token.CodeInsufficientScope, "the token lacks scope %s", strings.Join(scopes, " or ")))
				return
			}
			h(w, r.WithContext(WithPrincipal(r.Context(), p)))
		}
	}
}
